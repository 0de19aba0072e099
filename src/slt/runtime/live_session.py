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

The decision path itself is ``decision_core`` (shared with the three-process brain).

``paper=True`` trades on the backtest's simulated exchange (``paper_execution``) with the
backtest's embedded symbol rules: no keys, no orders, no user-data stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from slt.adapters.exchange.account_state import AccountState
from slt.adapters.exchange.binance_rest import BinanceRest
from slt.adapters.exchange.exchange_snapshot import read_exchange
from slt.adapters.exchange.market_stream import Candle, MarketStream
from slt.adapters.exchange.order_gateway import OrderGateway
from slt.adapters.exchange.user_stream import UserStream
from slt.domain.strategies.base import Strategy
from slt.domain.timeframes import TIMEFRAME_MS
from slt.domain.trading.symbol_rules import SymbolRules, symbol_rules
from slt.engine.config import EngineConfig
from slt.engine.messages import Event
from slt.engine.state import PortfolioState
from slt.errors import SltError
from slt.runtime.decision_core import DecisionCore, Observer, SessionCounts
from slt.runtime.exchange_setup import (
    RefusedToTrade,
    listed,
    refuse_unexplained,
    rules_and_filters,
    settled_funding,
    unexplained,
)

__all__ = ["LiveSession", "RefusedToTrade", "SessionCounts", "unexplained"]

log = logging.getLogger(__name__)


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
        self.account = AccountState()
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.core: DecisionCore | None = None
        self.gateway: OrderGateway | None = None
        self.market: MarketStream | None = None
        self.user: UserStream | None = None
        self._counts = SessionCounts()  # until the core exists

    @property
    def counts(self) -> SessionCounts:
        return self._counts if self.core is None else self.core.counts

    @property
    def state(self) -> PortfolioState | None:
        return None if self.core is None else self.core.state

    @property
    def late_candles(self) -> int:
        return 0 if self.core is None else self.core.late_candles

    @property
    def marks(self) -> dict[str, float]:
        return {} if self.core is None else self.core.marks

    # -- start-up ----------------------------------------------------------------------

    def server_ms(self) -> int:
        return self.rest.wall_ms() + self.rest.offset_ms

    async def market_now(self) -> int:
        """The market's clock (premiumIndex ``time``): Binance's own time, and on a local
        exchange replaying faster than real time, the replayed moment."""
        answer = await self.rest.public("GET", "/fapi/v1/premiumIndex", {"symbol": self.symbols[0]})
        return int(answer.body["time"])

    def _core(self, rules: Sequence[SymbolRules]) -> DecisionCore:
        return DecisionCore(
            self.symbols, self.timeframe, self.strategy, self.config, rules,
            run_id=self.run_id, paper=self.paper, trade_from_ms=self.trade_from_ms,
            observe=self.observe, on_candle=self.on_candle,
            funding_rows=partial(settled_funding, self.rest),
        )  # fmt: skip

    async def _start_live(self) -> None:
        rules, filters = await rules_and_filters(self.rest, self.symbols)
        self.core = core = self._core(rules)
        self.gateway = OrderGateway(
            self.rest, self.account, filters, self._later, notify=core.notice,
            mark_price=core.marks.get, **self.gateway_options,
        )  # fmt: skip
        core.execute = self.gateway.execute
        reconciled = await read_exchange(self.rest, self.symbols, self.server_ms())
        if not self.adopt:
            refuse_unexplained(reconciled, core.state)
        self._apply(reconciled)

    async def start(self) -> None:
        """Rules, reconciliation, then the streams; nothing is sent before the reconciliation
        has been applied."""
        await self.rest.sync_clock()
        tf_ms = TIMEFRAME_MS[self.timeframe]
        if self.paper:
            await listed(self.rest, self.symbols)
            self.core = self._core([symbol_rules(s) for s in self.symbols])  # the backtest's
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
                               after_resync=None if self.gateway is None
                               else self.gateway.catch_up, **self.user_options)  # fmt: skip

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
                    assert self.core is not None
                    await self.core.market(items)
                elif source == "user" and self.gateway is not None:
                    self._events(self.gateway.screen(items))
                else:
                    self._events(items)
                if self.until_ms is not None and self.core and self.core.reached(self.until_ms):
                    stop.set()
        finally:
            stop.set()
            if self.gateway is not None:
                await self.gateway.drain()
            await asyncio.gather(*streams, return_exceptions=True)
            if self.gateway is not None and self.core is not None:
                self.core.stopping = True
                await self._last_look()
                await self.gateway.close()
        return self.counts

    async def _last_look(self, rounds: int = 4) -> None:
        """On the way out: no new entry (those still open are withdrawn), then the exchange as
        it is now, until the books agree with it: the fills the stopped stream will not bring
        are read, a position a late fill opened gets its protective stop, one the books hold
        and the exchange does not is closed in the books. A round whose reconciliation asks
        for nothing more ends it."""
        assert self.gateway is not None and self.user is not None and self.core is not None
        with contextlib.suppress(SltError):
            await self.gateway.withdraw_entries()
        for _ in range(rounds):
            try:
                await self.gateway.settle_market_orders()
                await self.user.resync_settled()
                self._take_queued()
                before = self.core.orders_sent()
                self._apply(await self.gateway.reconciliation())
                await self.gateway.drain()
                self._take_queued()
            except SltError as exc:
                log.warning("a last look at the exchange failed (%s); looking again", exc)
                continue
            after = self.core.orders_sent()
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

    # -- events ------------------------------------------------------------------------

    def _later(self, events: list[Event]) -> None:
        self._queue.put_nowait(("gateway", events))

    def _events(self, events: Sequence[Event]) -> None:
        assert self.core is not None
        self.core.events(events)

    def _apply(self, event: Event) -> None:
        self._events([event])
