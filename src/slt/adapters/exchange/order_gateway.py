"""The order gateway (issue 14 item 3): the engine's ``PlaceOrder``/``CancelOrder`` commands
as Binance requests, sent so that no outcome is ever guessed.

- ``execute`` is synchronous, as the engine's ``ExecutionClient`` is: it checks the filters
  (``order_filters``), answers ``OrderSubmitted`` (or ``OrderRejected`` naming the broken
  rule) at once, and queues the request. Each symbol's requests go out in the order the engine
  gave them (a stop's replacement after its cancel); symbols do not wait for each other.
- Entries set isolated margin and the leverage first, once per symbol. Stops go to
  ``POST /fapi/v1/algoOrder`` under ``clientAlgoId`` = the engine's id; market and limit
  orders (targets are reduce-only limits, as the engine models them) to ``/fapi/v1/order``.
- A submission whose outcome is unknown (timeout, 5xx, ``-1007``) is never resent: it is
  queried by client id, a ``-4116`` duplicate means it exists, and an order the exchange
  cannot find is asked for again a bounded number of times (Binance forgets fresh orders for
  a while) before it is declared lost (``OrderRejected``). A lost order is still watched: if it
  turns up open it is cancelled, if it filled the exchange's state is read again and handed to
  the engine as ``Reconciled``; its stream events never reach the engine (``screen``).
- After an entry fills, a protective stop must be on the exchange within ``protect_within_s``;
  if none is, the gateway asks the engine to close the position (``CloseRequested``) and
  tells the user.

Later answers (exchange refusals, lost orders, requested closes) go to ``on_events``; the
user-data stream reports acceptances and fills.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slt.adapters.exchange.account_state import AccountState
from slt.adapters.exchange.binance_rest import BinanceRest, OutcomeUnknown
from slt.adapters.exchange.exchange_snapshot import read_exchange
from slt.adapters.exchange.order_filters import Refused, SymbolFilters, check
from slt.engine.messages import (
    CancelOrder,
    CloseRequested,
    Command,
    Event,
    ExchangeOrder,
    Notify,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    PlaceOrder,
    Reconciled,
)
from slt.errors import ExchangeError, ExchangeRejected

log = logging.getLogger(__name__)

NOT_FOUND = (-2013, -2011)  # "Order does not exist." / "Unknown order sent."
DUPLICATE_ID = -4116
NO_MARGIN_CHANGE = -4046  # "No need to change margin type."
MAX_QUERY_WAIT_S = 5.0
RISK_PURPOSES = ("close", "stop", "emergency_stop", "take_profit", "partial_take_profit")


@dataclass
class Tracked:
    """One order the gateway sent: where it stands as far as the gateway knows."""

    order: PlaceOrder
    algo: bool
    fields: dict[str, Any]  # the Binance fields the filters checked (price, quantity, flags)
    phase: str = "queued"  # queued | sending | live | done | lost | rejected
    not_found: int = 0
    heard: bool = False  # the user-data stream has reported it: it exists


def _final(event: Event) -> bool:
    if isinstance(event, OrderFilled):
        return event.status == "filled"
    return isinstance(event, OrderCanceled | OrderExpired | OrderRejected)


@dataclass
class GatewayCounts:
    sent: int = 0
    refused_before_sending: int = 0
    rejected_by_exchange: int = 0
    unknown_outcomes: int = 0
    found_after_unknown: int = 0
    not_found_answers: int = 0
    unanswered_queries: int = 0  # queries about an unknown outcome that got no answer
    lost: int = 0
    lost_found_later: int = 0
    cancels: int = 0
    protective_closes: int = 0
    caught_up: int = 0  # cancels and expiries missed by the stream, told after its resync


class OrderGateway:
    """One account's order path; ``execute`` must be called on the running event loop."""

    def __init__(
        self,
        rest: BinanceRest,
        state: AccountState,
        filters: Mapping[str, SymbolFilters],
        on_events: Callable[[list[Event]], None],
        *,
        notify: Callable[[Notify], None] | None = None,
        mark_price: Callable[[str], float | None] | None = None,
        not_found_limit: int = 3,
        not_found_delay_s: float = 0.5,
        lost_poll_s: float = 5.0,
        lost_watch_s: float = 900.0,
        protect_within_s: float = 1.0,
    ) -> None:
        self.rest, self.state, self.filters = rest, state, dict(filters)
        self.on_events = on_events
        self.notify = notify or (lambda n: log.warning("%s", n.text))
        self.mark_price = mark_price or (lambda _symbol: None)
        self.not_found_limit, self.not_found_delay_s = not_found_limit, not_found_delay_s
        self.lost_poll_s, self.lost_watch_s = lost_poll_s, lost_watch_s
        self.protect_within_s = protect_within_s
        self.orders: dict[str, Tracked] = {}
        self.counts = GatewayCounts()
        self._queues: dict[str, asyncio.Queue[Command]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._margin_set: set[str] = set()
        self._protecting: set[str] = set()
        self._leverage: dict[str, int] = {}
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # -- the engine's side -------------------------------------------------------------

    def execute(self, commands: Sequence[Command]) -> list[Event]:
        """Check and queue the orders and cancels (other commands are not the exchange's):
        ``OrderSubmitted`` for each order queued, ``OrderRejected`` for one a filter refuses."""
        now: list[Event] = []
        for command in commands:
            if isinstance(command, PlaceOrder):
                try:
                    fields = self._checked(command)
                except Refused as exc:
                    self.counts.refused_before_sending += 1
                    now.append(OrderRejected(command.client_order_id, command.symbol, str(exc)))
                    continue
                self.orders[command.client_order_id] = Tracked(
                    command, command.kind == "stop_market", fields
                )
                now.append(OrderSubmitted(command.client_order_id, command.symbol))
                self._enqueue(command)
            elif isinstance(command, CancelOrder):
                self._enqueue(command)
        return now

    def screen(self, events: Sequence[Event]) -> list[Event]:
        """Events from the user-data stream on their way to the engine: those of orders
        declared lost are held back (the engine has them as rejected) and a fill among them
        makes the gateway reconcile; an entry's fill starts its protection deadline."""
        passed: list[Event] = []
        for event in events:
            client = getattr(event, "client_order_id", None)
            tracked = self.orders.get(client) if client else None
            if (
                tracked is not None
                and tracked.phase == "done"
                and isinstance(event, OrderAccepted | OrderCanceled | OrderExpired)
            ):
                continue  # a late word on an order a resync already saw finish
            if tracked is not None and tracked.phase != "lost":
                tracked.heard = True
            if tracked is not None and tracked.phase == "lost":
                if isinstance(event, OrderFilled):
                    self._spawn(self._late_fill(tracked))
                continue
            if isinstance(event, OrderFilled) and tracked is not None:
                self._entry_filled(tracked, event)
            if tracked is not None and _final(event):
                tracked.phase = "done"
            passed.append(event)
        return passed

    def _entry_filled(self, tracked: Tracked, fill: OrderFilled) -> None:
        """Start the protection deadline, once for all the partial fills of a burst."""
        if tracked.order.purpose == "entry" and fill.symbol not in self._protecting:
            self._protecting.add(fill.symbol)
            self._spawn(self._protect(fill.symbol, fill.time_ms))

    async def catch_up(self) -> None:
        """After the user-data stream was down: an order the exchange accepted and no longer
        lists ended while nobody listened. Each is asked how; a cancel or an expiry is told to
        the engine here (fills come with the resync's missed fills), so no order lingers open
        in the engine's books. An order asked about that is still open, or that gets no
        answer, is left for the stream or the next resync."""
        for client, tracked in list(self.orders.items()):
            if (tracked.phase != "live" or client in self.state.orders
                    or client in self.state.algos):  # fmt: skip
                continue
            try:
                found = await self._query(tracked)
            except ExchangeError:
                continue
            if found is None or tracked.phase != "live":
                continue
            status = str(found.get("algoStatus") or found.get("status") or "")
            symbol = tracked.order.symbol
            ended: Event
            if status == "CANCELED":
                ended = OrderCanceled(client, symbol)
            elif status in ("EXPIRED", "EXPIRED_IN_MATCH", "REJECTED"):
                ended = OrderExpired(client, symbol, f"{status.lower()} while the stream was down")
            else:
                continue
            self.counts.caught_up += 1
            log.warning("order %s ended (%s) while the user-data stream was down", client, status)
            tracked.phase = "done"
            self.on_events([ended])

    async def withdraw_entries(self, timeout_s: float = 5.0) -> None:
        """On the way out, no new entry: cancel this session's entries that may still fill,
        then wait (bounded) until the exchange lists none of them, so the last look at the
        exchange sees every position they made."""
        entries = {c: t for c, t in self.orders.items() if t.order.purpose == "entry"
                   and t.phase in ("queued", "sending", "live")}  # fmt: skip
        for client, tracked in entries.items():
            with contextlib.suppress(ExchangeError):
                await self.rest.signed("DELETE", "/fapi/v1/order", {
                    "symbol": tracked.order.symbol, "origClientOrderId": client})  # fmt: skip
        await self._until_unlisted(set(entries), timeout_s)

    async def settle_market_orders(self, timeout_s: float = 5.0) -> None:
        """Wait (bounded) until none of this session's market orders is still open on the
        exchange: a closing order fills before the books are compared with the exchange."""
        await self.drain()
        mine = {c for c, t in self.orders.items() if t.order.kind == "market"}
        await self._until_unlisted(mine, timeout_s)

    async def _until_unlisted(self, clients: set[str], timeout_s: float) -> None:
        """Poll the open orders of the symbols concerned (weight 1 a symbol, where the list of
        every symbol weighs 40) until none of ``clients`` is listed, or the time is up."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        symbols = sorted({self.orders[c].order.symbol for c in clients if c in self.orders})
        while symbols and loop.time() < end:
            listed: set[str] = set()
            try:
                for symbol in symbols:
                    answer = await self.rest.signed("GET", "/fapi/v1/openOrders",
                                                    {"symbol": symbol})  # fmt: skip
                    listed |= {o["clientOrderId"] for o in answer.body}
            except ExchangeError:
                await asyncio.sleep(0.5)
                continue
            if not listed & clients:
                return
            await asyncio.sleep(0.5)

    async def drain(self) -> None:
        """Wait until every queued request has been answered (tests, shutdown)."""
        await self._idle.wait()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    # -- filters -----------------------------------------------------------------------

    def _checked(self, order: PlaceOrder) -> dict[str, Any]:
        """The order's checked Binance fields (price, quantity, flags), or ``Refused``."""
        f = self.filters.get(order.symbol)
        if f is None:
            raise Refused(f"{order.symbol} is not in the exchange's symbol list")
        mine = sum(1 for t in self.orders.values() if t.order.symbol == order.symbol
                   and not t.algo and t.phase in ("queued", "sending"))  # fmt: skip
        theirs = sum(1 for o in self.state.orders.values() if o.symbol == order.symbol)
        in_flight_algos = sum(1 for t in self.orders.values()
                              if t.algo and t.phase in ("queued", "sending"))  # fmt: skip
        fields = check(order, f, reference_price=self.mark_price(order.symbol),
                       open_orders=mine + theirs,
                       open_algos=len(self.state.algos) + in_flight_algos)  # fmt: skip
        if order.purpose == "entry" and abs(order.leverage - round(order.leverage)) > 1e-9:
            raise Refused(f"leverage {order.leverage:g} is not a whole number, as Binance requires")
        return fields

    # -- sending -----------------------------------------------------------------------

    def _enqueue(self, command: Command) -> None:
        symbol = command.symbol  # type: ignore[union-attr]
        queue = self._queues.get(symbol)
        if queue is None:
            queue = self._queues[symbol] = asyncio.Queue()
            self._spawn(self._worker(queue))
        self._pending += 1
        self._idle.clear()
        queue.put_nowait(command)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _worker(self, queue: asyncio.Queue[Command]) -> None:
        while True:
            command = await queue.get()
            try:
                if isinstance(command, PlaceOrder):
                    await self._place_or_find(self.orders[command.client_order_id])
                elif isinstance(command, CancelOrder):
                    await self._cancel(command)
            except Exception as exc:  # one order's failure must not stop the others
                log.exception("order gateway: %s failed", type(command).__name__)
                self._tell(f"{type(command).__name__} {command.client_order_id} failed: "  # type: ignore[union-attr]
                           f"{exc}", command.symbol)  # type: ignore[union-attr]  # fmt: skip
            finally:
                self._pending -= 1
                if self._pending == 0:
                    self._idle.set()

    async def _place_or_find(self, tracked: Tracked) -> None:
        """Place the order; if anything unforeseen breaks off the attempt, find out whether it
        exists rather than leave the engine waiting for an answer that never comes."""
        try:
            await self._place(tracked)
        except Exception:
            if tracked.phase == "sending":
                log.exception("order %s: the attempt broke off; looking for it",
                              tracked.order.client_order_id)  # fmt: skip
                await self._resolve(tracked)
            raise

    async def _place(self, tracked: Tracked) -> None:
        order = tracked.order
        tracked.phase = "sending"
        if order.purpose == "entry":
            try:
                await self._configure(order.symbol, round(order.leverage))
            except ExchangeError as exc:
                self._reject(tracked, f"margin or leverage could not be set: {exc}")
                return
        path, params = self._request(tracked)
        risk = order.reduce_only or order.close_position or order.purpose in RISK_PURPOSES
        self.counts.sent += 1
        try:
            await self.rest.submit(path, params, reduces_risk=risk)
        except OutcomeUnknown as exc:
            self.counts.unknown_outcomes += 1
            log.warning("order %s: %s; querying it", order.client_order_id, exc)
            await self._resolve(tracked)
            return
        except ExchangeRejected as exc:
            if exc.code == DUPLICATE_ID:  # it exists already: find it, never place it twice
                await self._resolve(tracked)
                return
            self.counts.rejected_by_exchange += 1
            self._reject(tracked, f"Binance {exc.code}: {exc.msg}")
            return
        tracked.phase = "live"

    def _request(self, tracked: Tracked) -> tuple[str, dict[str, Any]]:
        order, fields = tracked.order, tracked.fields
        side = "BUY" if order.side > 0 else "SELL"
        if order.kind == "stop_market":
            return "/fapi/v1/algoOrder", {
                "algoType": "CONDITIONAL", "symbol": order.symbol, "side": side,
                "type": "STOP_MARKET", "clientAlgoId": order.client_order_id,
                "workingType": "CONTRACT_PRICE", **fields,
            }  # fmt: skip
        params: dict[str, Any] = {
            "symbol": order.symbol, "side": side, "type": order.kind.upper(),
            "newClientOrderId": order.client_order_id, **fields,
        }  # fmt: skip
        if order.kind == "limit":
            params["timeInForce"] = "GTC"
        return "/fapi/v1/order", params

    async def _configure(self, symbol: str, leverage: int) -> None:
        """Isolated margin and the leverage, before the symbol's first entry (and again when
        the engine asks for another leverage)."""
        if symbol not in self._margin_set:
            try:
                await self.rest.signed("POST", "/fapi/v1/marginType",
                                       {"symbol": symbol, "marginType": "ISOLATED"})  # fmt: skip
            except ExchangeRejected as exc:
                if exc.code != NO_MARGIN_CHANGE:
                    raise
            self._margin_set.add(symbol)
        if self._leverage.get(symbol) != leverage:
            await self.rest.signed("POST", "/fapi/v1/leverage",
                                   {"symbol": symbol, "leverage": leverage})  # fmt: skip
            self._leverage[symbol] = leverage

    # -- unknown outcomes --------------------------------------------------------------

    async def _resolve(self, tracked: Tracked) -> None:
        """Find a submission whose answer was lost; never send it again."""
        for attempt in range(self.not_found_limit):
            if await self._exists(tracked):
                self.counts.found_after_unknown += 1
                tracked.phase = "live"
                return
            self.counts.not_found_answers += 1
            tracked.not_found += 1
            await asyncio.sleep(self.not_found_delay_s * 2**attempt)
        if await self._exists(tracked):
            self.counts.found_after_unknown += 1
            tracked.phase = "live"
            return
        self.counts.lost += 1
        order = tracked.order
        self._reject(tracked, f"lost: not found after {tracked.not_found + 1} queries", "lost")
        text = (f"order {order.client_order_id} was not found on the exchange after its answer "
                "was lost; treated as never placed and still watched")  # fmt: skip
        self._tell(text, order.symbol)
        self._spawn(self._watch_lost(tracked))

    async def _exists(self, tracked: Tracked) -> bool:
        """Whether the exchange has the order (the stream may have told us already). No
        answer is no evidence either way: the question is asked again until one comes."""
        order = tracked.order
        client = order.client_order_id
        wait = self.not_found_delay_s
        while True:
            if tracked.heard or client in self.state.orders or client in self.state.algos:
                return True
            try:
                return await self._query(tracked) is not None
            except ExchangeRejected:
                raise
            except ExchangeError as exc:
                self.counts.unanswered_queries += 1
                log.warning("order %s: the query went unanswered (%s); asking again",
                            client, exc)  # fmt: skip
                await asyncio.sleep(wait)
                wait = min(wait * 2, MAX_QUERY_WAIT_S)

    async def _query(self, tracked: Tracked) -> dict[str, Any] | None:
        order = tracked.order
        if tracked.algo:
            path, key = "/fapi/v1/algoOrder", "clientAlgoId"
        else:
            path, key = "/fapi/v1/order", "origClientOrderId"
        try:
            answer = await self.rest.signed("GET", path, {"symbol": order.symbol,
                                                          key: order.client_order_id})  # fmt: skip
        except ExchangeRejected as exc:
            if exc.code in NOT_FOUND:
                return None
            raise
        body: dict[str, Any] = answer.body
        return body

    async def _watch_lost(self, tracked: Tracked) -> None:
        """A lost order may still turn up (Binance forgets fresh orders for a while): cancel
        it if it is open, reconcile if it filled."""
        loop = asyncio.get_running_loop()
        end = loop.time() + self.lost_watch_s
        while loop.time() < end:
            await asyncio.sleep(self.lost_poll_s)
            try:
                found = await self._query(tracked)
            except ExchangeError:
                continue
            if found is None:
                continue
            self.counts.lost_found_later += 1
            status = str(found.get("status") or found.get("algoStatus") or "")
            if status in ("NEW", "PARTIALLY_FILLED"):
                await self._cancel_lost(tracked)
            executed = float(found.get("executedQty") or 0)
            filled = executed > 0 or status in ("TRIGGERED", "FINISHED")
            if filled or status == "PARTIALLY_FILLED":
                await self._late_fill(tracked)
            self._tell(f"lost order {tracked.order.client_order_id} turned up ({status})",
                       tracked.order.symbol)  # fmt: skip
            return

    async def _cancel_lost(self, tracked: Tracked) -> None:
        order = tracked.order
        path, key = (("/fapi/v1/algoOrder", "clientAlgoId") if tracked.algo
                     else ("/fapi/v1/order", "origClientOrderId"))  # fmt: skip
        with contextlib.suppress(ExchangeRejected):
            await self.rest.signed("DELETE", path, {"symbol": order.symbol,
                                                    key: order.client_order_id})  # fmt: skip

    async def _late_fill(self, tracked: Tracked) -> None:
        """A lost order filled after all: the engine learns the exchange's state as it is."""
        reconciled = await self.reconciliation()
        self._tell(f"lost order {tracked.order.client_order_id} filled; reconciling",
                   tracked.order.symbol)  # fmt: skip
        self.on_events([reconciled])

    async def reconciliation(self) -> Reconciled:
        """The exchange as it is now, for the engine's ``Reconciled``. An order still on its
        way (sent, no answer yet) counts as listed: the exchange may not show it yet, and the
        engine must not mark it canceled before its answer comes."""
        reconciled = await read_exchange(self.rest, list(self.filters),
                                         self.rest.wall_ms() + self.rest.offset_ms)  # fmt: skip
        listed = {o.client_order_id for o in reconciled.open_orders}
        on_the_way = tuple(
            ExchangeOrder(client, t.order.symbol, t.order.kind, t.order.side, t.order.quantity,
                          t.order.price, t.order.reduce_only)
            for client, t in self.orders.items()
            if t.phase in ("queued", "sending") and client not in listed
        )  # fmt: skip
        return reconciled._replace(open_orders=reconciled.open_orders + on_the_way)

    # -- cancels -----------------------------------------------------------------------

    async def _cancel(self, command: CancelOrder) -> None:
        tracked = self.orders.get(command.client_order_id)
        algo = (tracked.algo if tracked is not None
                else command.client_order_id in self.state.algos)  # fmt: skip
        path, key = (("/fapi/v1/algoOrder", "clientAlgoId") if algo
                     else ("/fapi/v1/order", "origClientOrderId"))  # fmt: skip
        params = {"symbol": command.symbol, key: command.client_order_id}
        self.counts.cancels += 1
        reason = ""
        for attempt in range(self.not_found_limit + 1):
            try:
                await self.rest.signed("DELETE", path, params)
                return  # the stream reports the cancel
            except ExchangeRejected as exc:
                reason = f"Binance {exc.code}: {exc.msg}"
                if exc.code not in NOT_FOUND:
                    break
                self.counts.not_found_answers += 1
            except ExchangeError as exc:  # no answer: a cancel is safe to repeat
                reason = str(exc)
            if attempt < self.not_found_limit:
                await asyncio.sleep(self.not_found_delay_s * 2**attempt)
        self.on_events([OrderCancelRejected(command.client_order_id, command.symbol, reason)])

    # -- protection --------------------------------------------------------------------

    async def _protect(self, symbol: str, fill_ms: int) -> None:
        """A stop must guard the position within ``protect_within_s`` of the entry fill."""
        await asyncio.sleep(self.protect_within_s)
        self._protecting.discard(symbol)
        if self._protected(symbol, fill_ms):
            return
        self.counts.protective_closes += 1
        self._tell(f"{symbol}: no protective stop on the exchange {self.protect_within_s:g} s "
                   "after the entry filled: closing the position at market", symbol)  # fmt: skip
        self.on_events([CloseRequested(symbol, "emergency_close")])

    def _protected(self, symbol: str, fill_ms: int) -> bool:
        position = self.state.position(symbol)
        if position is None and self.state.account_time(symbol) >= fill_ms:
            return True  # already flat again
        if any(a.symbol == symbol and a.type == "STOP_MARKET" for a in self.state.algos.values()):
            return True
        return any(t.order.symbol == symbol and t.algo and t.phase == "live"
                   and t.order.purpose in ("stop", "emergency_stop")
                   for t in self.orders.values())  # fmt: skip

    # -- telling -----------------------------------------------------------------------

    def _reject(self, tracked: Tracked, reason: str, phase: str = "rejected") -> None:
        tracked.phase = phase
        order = tracked.order
        self.on_events([OrderRejected(order.client_order_id, order.symbol, reason)])

    def _tell(self, text: str, symbol: str) -> None:
        log.warning("order gateway: %s", text)
        self.notify(Notify(text, "warning", symbol))
