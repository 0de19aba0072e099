"""One account trading its symbols on Binance (or its testnet, or the local exchange) in one
asyncio process: market streams -> the streamed signal pipeline -> the portfolio reducer ->
the order gateway, with the user-data stream feeding the account cache and the reducer.

This is the decision path of ``slt live`` without its process split (issue 15 puts the feed,
the brain and the executor in three processes joined by a ring; the wiring is this one).
Every event reaches the reducer through one queue, in arrival order, so the reducer sees an
order's ``OrderSubmitted`` before anything the exchange says about it.

Start-up follows NautilusTrader's rule: the exchange's state is read and handed to the engine
as ``Reconciled`` before anything is sent; a position on a traded symbol that this session
cannot explain stops the start (``RefusedToTrade``) unless ``adopt`` is set.

Candles: warm-up candles feed the signal pipeline only; back-filled candles reach the engine
with no signal (a signal on a candle already old is not traded); streamed candles are traded.
The engine takes them a step at a time: all the symbols' candles of one open time, as a
backtest steps. A step is taken once every symbol has shown that open time: its candle came,
or a later one, or a gap past it.

``paper=True`` trades on the backtest's simulated exchange (``paper_execution``) with the
backtest's embedded symbol rules: no keys, no orders, no user-data stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from slt.adapters.exchange.account_state import AccountState
from slt.adapters.exchange.binance_rest import BinanceRest
from slt.adapters.exchange.exchange_snapshot import read_exchange
from slt.adapters.exchange.market_stream import (
    Candle,
    CandleGap,
    MarketData,
    MarketStream,
    MarkPrice,
)
from slt.adapters.exchange.order_filters import SymbolFilters
from slt.adapters.exchange.order_gateway import OrderGateway
from slt.adapters.exchange.user_stream import UserStream
from slt.domain.results import Trade
from slt.domain.strategies.base import Strategy
from slt.domain.timeframes import TIMEFRAME_MS
from slt.domain.trading.symbol_rules import SymbolRules, from_binance_json, symbol_rules
from slt.engine.config import EngineConfig
from slt.engine.messages import (
    CandleClosed,
    Command,
    Event,
    Notify,
    OpenVirtualPosition,
    OrderFilled,
    OrderRejected,
    Persist,
    PlaceOrder,
    Reconciled,
)
from slt.engine.pipeline import SignalRow, SignalStream
from slt.engine.reducer import Reducer
from slt.engine.state import PortfolioState
from slt.errors import SltError
from slt.runtime.paper_execution import PaperExecution

log = logging.getLogger(__name__)

Observer = Callable[[Event, list[Command], PortfolioState], None]


class RefusedToTrade(SltError):
    """The exchange holds what this session cannot explain; it names what and how to go on."""


@dataclass
class SessionCounts:
    candles: Counter[str] = field(default_factory=Counter)  # by source
    gaps: int = 0
    signals: int = 0
    commands: Counter[str] = field(default_factory=Counter)  # by type
    fills: list[OrderFilled] = field(default_factory=list)  # as applied by the reducer
    notices: list[Notify] = field(default_factory=list)
    virtual_positions: int = 0
    closed_trades: int = 0
    trades: list[Trade] = field(default_factory=list)  # closed positions, as persisted
    last_candle_ms: dict[str, int] = field(default_factory=dict)


def unexplained(reconciled: Reconciled, state: PortfolioState) -> list[str]:
    """Positions on the traded symbols that the books do not hold: the session cannot tell
    whose they are."""
    held = {s: int(state.book.positions[i]["side"]) for i, s in enumerate(state.symbols)}
    return [
        f"{p.symbol} {'long' if p.side > 0 else 'short'} {p.quantity:g} at {p.entry_price:g}"
        for p in reconciled.positions
        if p.symbol in held and held[p.symbol] != p.side
    ]


class LiveSession:
    """Runs until ``stop`` is set (or ``until_ms``, the server time of the last candle to
    trade, has been reached); ``counts`` and the REST client's governor say what it did."""

    def __init__(
        self,
        rest: BinanceRest,
        ws_base_url: str,
        symbols: Sequence[str],
        timeframe: str,
        strategy: Strategy,
        config: EngineConfig,
        *,
        run_id: str = "live",
        paper: bool = False,
        adopt: bool = False,
        warmup_candles: int = 300,
        warmup_from_ms: int | None = None,
        trade_from_ms: int | None = None,
        until_ms: int | None = None,
        market_options: dict[str, Any] | None = None,
        gateway_options: dict[str, Any] | None = None,
        user_options: dict[str, Any] | None = None,
        observe: Observer | None = None,
        on_candle: Callable[[Candle], None] | None = None,
    ) -> None:
        self.rest, self.ws_base_url = rest, ws_base_url
        self.symbols, self.timeframe = [s.upper() for s in symbols], timeframe
        self.strategy, self.run_id, self.adopt, self.paper = strategy, run_id, adopt, paper
        self.config = config._replace(adopt_unknown=adopt)
        self.warmup_candles, self.until_ms = warmup_candles, until_ms
        # Rehearsals: the history to warm up from and the first open time to trade, whatever
        # way its candle came (a replay that must match a backtest bar for bar).
        self.warmup_from_ms, self.trade_from_ms = warmup_from_ms, trade_from_ms
        self.market_options = market_options or {}
        self.gateway_options = gateway_options or {}
        self.user_options = user_options or {}
        self.observe = observe  # every applied event, its commands and the state after it
        self.on_candle = on_candle  # every closed candle, as it came (records keep them)
        self.counts = SessionCounts()
        self.account = AccountState()
        self.marks: dict[str, float] = {}
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.reducer: Reducer | None = None
        self.state: PortfolioState | None = None
        self.gateway: OrderGateway | None = None
        self.market: MarketStream | None = None
        self.user: UserStream | None = None
        self.sim: PaperExecution | None = None
        self._steps: dict[int, dict[str, tuple[Candle, SignalRow]]] = {}
        self._stepped_to = -1  # the open time of the last step taken
        self._seen: dict[str, int] = {}  # per symbol, the newest open time it has shown
        self.late_candles = 0  # a symbol's candle after its step had gone on without it
        self._stopping = False

    # -- start-up ----------------------------------------------------------------------

    async def _rules(self) -> tuple[list[SymbolRules], dict[str, SymbolFilters]]:
        entries = await self._listed()
        brackets = (await self.rest.signed("GET", "/fapi/v1/leverageBracket")).body
        rules = [from_binance_json(s, entries[s], brackets) for s in self.symbols]
        return rules, {s: SymbolFilters.from_exchange_info(entries[s]) for s in self.symbols}

    def server_ms(self) -> int:
        return self.rest.wall_ms() + self.rest.offset_ms

    async def market_now(self) -> int:
        """The market's clock (premiumIndex ``time``): Binance's own time, and on a local
        exchange replaying faster than real time, the replayed moment."""
        answer = await self.rest.public("GET", "/fapi/v1/premiumIndex", {"symbol": self.symbols[0]})
        return int(answer.body["time"])

    async def _listed(self) -> dict[str, dict[str, Any]]:
        info = await self.rest.load_limits()
        entries = {e["symbol"]: e for e in info["symbols"]}
        missing = [s for s in self.symbols if s not in entries]
        if missing:
            raise SltError(f"the exchange lists no {', '.join(missing)}")
        return entries

    async def _start_live(self) -> None:
        rules, filters = await self._rules()
        self.reducer = Reducer(self.config, rules)
        self.state = self.reducer.new_state(self.run_id)
        self.gateway = OrderGateway(
            self.rest, self.account, filters, self._later, notify=self._notice,
            mark_price=self.marks.get, **self.gateway_options,
        )  # fmt: skip
        reconciled = await read_exchange(self.rest, self.symbols, self.server_ms())
        foreign = unexplained(reconciled, self.state)
        if foreign and not self.adopt:
            raise RefusedToTrade(
                "the exchange holds positions this bot did not open: " + "; ".join(foreign)
                + ". Close them by hand, or start with --adopt to protect them with stops and "
                "manage them"
            )  # fmt: skip
        self._apply(reconciled)

    async def start(self) -> None:
        """Rules, reconciliation, then the streams; nothing is sent before the reconciliation
        has been applied."""
        await self.rest.sync_clock()
        tf_ms = TIMEFRAME_MS[self.timeframe]
        if self.paper:
            await self._listed()
            rules = [symbol_rules(s) for s in self.symbols]  # the backtest's own
            self.reducer = Reducer(self.config, rules)
            self.state = self.reducer.new_state(self.run_id)
            self.sim = PaperExecution(self.run_id, rules, self.config, tf_ms)
        else:
            await self._start_live()
        if self.warmup_from_ms is not None:
            first = self.warmup_from_ms
        else:
            now = await self.market_now()
            first = now - now % tf_ms - self.warmup_candles * tf_ms
        self.market = MarketStream(
            self.rest, self.ws_base_url, [(s, self.timeframe) for s in self.symbols],
            lambda items: self._queue.put_nowait(("market", items)),
            warmup_from={(s, self.timeframe): first for s in self.symbols},
            **self.market_options,
        )  # fmt: skip
        self.user = UserStream(self.rest, self.ws_base_url, self.account, self.symbols,
                               lambda evs: self._queue.put_nowait(("user", evs)),
                               **self.user_options)  # fmt: skip
        self._signals = {s: SignalStream(self.strategy, self.timeframe, self.config.stops)
                         for s in self.symbols}  # fmt: skip

    async def run(self, stop: asyncio.Event) -> SessionCounts:
        await self.start()
        assert self.market is not None and self.user is not None
        streams = []
        if not self.paper:
            streams.append(asyncio.create_task(self.user.run(stop)))
            await asyncio.wait_for(self.user.connected.wait(), 30)
        streams.append(asyncio.create_task(self.market.run(stop)))
        try:
            while not stop.is_set():
                getter = asyncio.create_task(self._queue.get())
                stopping = asyncio.create_task(stop.wait())
                done, _ = await asyncio.wait({getter, stopping, *streams},
                                             return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
                stopping.cancel()
                if getter not in done:
                    getter.cancel()
                    for task in streams:
                        if task.done() and task.exception() is not None:
                            raise task.exception()  # type: ignore[misc]
                    break
                source, items = getter.result()
                if source == "market":
                    await self._market(items)
                elif source == "user" and self.gateway is not None:
                    self._events(self.gateway.screen(items))
                else:
                    self._events(items)
                if self.until_ms is not None and self._reached(self.until_ms):
                    stop.set()
        finally:
            stop.set()
            if self.gateway is not None:
                await self.gateway.drain()
            await asyncio.gather(*streams, return_exceptions=True)
            if self.gateway is not None:
                self._stopping = True
                await self._last_look()
                await self.gateway.close()
        return self.counts

    async def _last_look(self, rounds: int = 4) -> None:
        """On the way out: no new entry (those still open are withdrawn), then the exchange as
        it is now, until the books agree with it: the fills the stopped stream will not bring
        are read, a position a late fill opened gets its protective stop, one the books hold
        and the exchange does not is closed in the books. A round whose reconciliation asks
        for nothing more ends it."""
        assert self.gateway is not None and self.user is not None
        with contextlib.suppress(SltError):
            await self.gateway.withdraw_entries()
        for _ in range(rounds):
            try:
                await self.gateway.settle_market_orders()
                await self.user.resync()
                self._take_queued()
                before = sum(self.counts.commands[k] for k in ("PlaceOrder", "CancelOrder"))
                self._apply(await read_exchange(self.rest, self.symbols, self.server_ms()))
                await self.gateway.drain()
                self._take_queued()
            except SltError as exc:
                log.warning("a last look at the exchange failed (%s); looking again", exc)
                continue
            after = sum(self.counts.commands[k] for k in ("PlaceOrder", "CancelOrder"))
            if after == before:
                return
        log.warning("the books and the exchange may still differ after %d looks: check the "
                    "positions and their stops on the exchange", rounds)  # fmt: skip

    def _take_queued(self) -> None:
        """Apply what the user-data resync and the gateway queued (market data is over)."""
        assert self.gateway is not None
        while not self._queue.empty():
            source, items = self._queue.get_nowait()
            if source == "user":
                self._events(self.gateway.screen(items))
            elif source == "gateway":
                self._events(items)

    def _reached(self, until_ms: int) -> bool:
        last = self.counts.last_candle_ms
        return len(last) == len(self.symbols) and min(last.values()) >= until_ms

    # -- events ------------------------------------------------------------------------

    def _later(self, events: list[Event]) -> None:
        self._queue.put_nowait(("gateway", events))

    def _notice(self, notice: Notify) -> None:
        self.counts.notices.append(notice)
        log.warning("%s", notice.text)

    async def _market(self, items: list[MarketData]) -> None:
        for item in items:
            if isinstance(item, MarkPrice):
                self.marks[item.symbol] = item.mark_price
            elif isinstance(item, CandleGap):
                self.counts.gaps += 1
                seen = self._seen.get(item.symbol, -1)
                self._seen[item.symbol] = max(seen, item.to_open_ms)
                await self._take_steps()
                log.warning("%s %s: candles %d..%d missing (%s); features restart",
                            item.symbol, item.timeframe, item.from_open_ms, item.to_open_ms,
                            item.reason)  # fmt: skip
            elif isinstance(item, Candle):
                await self._candle(item)

    async def _candle(self, c: Candle) -> None:
        if self.on_candle is not None:
            self.on_candle(c)
        self.counts.candles[c.source] += 1
        row = self._signals[c.symbol].update(c.open_time_ms, c.open, c.high, c.low, c.close,
                                             c.volume)  # fmt: skip
        rehearsed = self.trade_from_ms is not None and c.open_time_ms >= self.trade_from_ms
        if c.source == "warmup" and not rehearsed:
            return
        if c.open_time_ms <= self._stepped_to:
            self.late_candles += 1
            log.warning("%s: the candle of %d came after its step had gone on without it",
                        c.symbol, c.open_time_ms)  # fmt: skip
            return
        self._steps.setdefault(c.open_time_ms, {})[c.symbol] = (c, row)
        self._seen[c.symbol] = max(self._seen.get(c.symbol, -1), c.open_time_ms)
        await self._take_steps()

    async def _take_steps(self) -> None:
        """Take every step each symbol has shown: its candle came, or a later one (or a gap
        past it) did."""
        while self._steps:
            first = min(self._steps)
            if len(self._seen) < len(self.symbols) or min(self._seen.values()) < first:
                return  # a symbol has not shown this open time yet
            await self._step(first, self._steps.pop(first))

    async def _step(self, open_ms: int, candles: dict[str, tuple[Candle, SignalRow]]) -> None:
        """One open time, as the backtest steps it: the bars open, are matched, then close."""
        self._stepped_to = open_ms
        order = [s for s in self.symbols if s in candles]  # the symbols' order, as a backtest
        if self.sim is not None:
            index = {s: i for i, s in enumerate(self.symbols)}
            for symbol in order:
                await self._funding(index[symbol], open_ms)
            for symbol in order:  # as the backtest: each bar's open delivered, then the next
                c = candles[symbol][0]
                self._events(self.sim.open_bars([(index[symbol], c.open_time_ms, c.open,
                                                  c.high, c.low, c.close)]))  # fmt: skip
            for symbol in order:
                self._events(self.sim.match_bar(index[symbol]))
        tf_ms = TIMEFRAME_MS[self.timeframe]
        closes: list[Event] = []
        for symbol in order:
            c, row = candles[symbol]
            traded = c.source == "stream" or (
                self.trade_from_ms is not None and c.open_time_ms >= self.trade_from_ms
            )
            direction = row.direction if traded else 0
            self.counts.signals += direction != 0
            self.counts.last_candle_ms[symbol] = c.open_time_ms
            closes.append(CandleClosed(symbol, c.open_time_ms, c.open_time_ms + tf_ms, c.open,
                                       c.high, c.low, c.close, direction, row.confidence,
                                       row.stop_pct, row.gate))  # fmt: skip
        self._events(closes)

    async def _funding(self, s: int, open_ms: int) -> None:
        """Paper: the settled funding due by this bar's open, read once per funding time."""
        assert self.sim is not None
        due = self.sim.funding_due(s, open_ms)
        if due is None:
            return
        answer = await self.rest.public("GET", "/fapi/v1/fundingRate", {
            "symbol": self.symbols[s], "startTime": due, "endTime": due})  # fmt: skip
        self.sim.add_funding(s, list(answer.body))
        self.sim.fetched_to_ms[s] = due

    def _events(self, events: Sequence[Event]) -> None:
        """Apply events in order; what executing their commands answers queues up behind
        them (first in, first out, as the backtest's drivers do)."""
        assert self.reducer is not None and self.state is not None
        execute = self.sim.execute if self.sim is not None else self.gateway.execute  # type: ignore[union-attr]
        queue = deque(events)
        while queue:
            event = queue.popleft()
            self.state, commands = self.reducer.step(self.state, event)
            if isinstance(event, OrderFilled):
                self.counts.fills.append(event)
            if self.observe is not None:
                self.observe(event, commands, self.state)
            if commands:
                self._tally(commands)
                if self._stopping:  # no new entry once the session is stopping
                    entries = [c for c in commands if isinstance(c, PlaceOrder) and _is_entry(c)]
                    queue.extend(OrderRejected(c.client_order_id, c.symbol, "session stopping")
                                 for c in entries)  # fmt: skip
                    commands = [c for c in commands if not _is_entry(c)]
                queue.extend(execute(commands))

    def _apply(self, event: Event) -> None:
        self._events([event])

    def _tally(self, commands: list[Command]) -> None:
        for command in commands:
            self.counts.commands[type(command).__name__] += 1
            if isinstance(command, Notify):
                self._notice(command)
            elif isinstance(command, OpenVirtualPosition):
                self.counts.virtual_positions += 1
            elif isinstance(command, Persist):
                self.counts.closed_trades += 1
                self.counts.trades.append(command.trade)


def _is_entry(command: Command) -> bool:
    return isinstance(command, PlaceOrder) and command.purpose == "entry"
