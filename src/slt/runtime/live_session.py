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
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
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
from slt.domain.strategies.base import Strategy
from slt.domain.timeframes import TIMEFRAME_MS
from slt.domain.trading.symbol_rules import SymbolRules, from_binance_json
from slt.engine.config import EngineConfig
from slt.engine.messages import (
    CandleClosed,
    Command,
    Event,
    Notify,
    OpenVirtualPosition,
    OrderFilled,
    Persist,
    Reconciled,
)
from slt.engine.pipeline import SignalStream
from slt.engine.reducer import Reducer
from slt.engine.state import PortfolioState
from slt.errors import SltError

log = logging.getLogger(__name__)


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
        adopt: bool = False,
        warmup_candles: int = 300,
        until_ms: int | None = None,
        market_options: dict[str, Any] | None = None,
        gateway_options: dict[str, Any] | None = None,
    ) -> None:
        self.rest, self.ws_base_url = rest, ws_base_url
        self.symbols, self.timeframe = [s.upper() for s in symbols], timeframe
        self.strategy, self.run_id, self.adopt = strategy, run_id, adopt
        self.config = config._replace(adopt_unknown=adopt)
        self.warmup_candles, self.until_ms = warmup_candles, until_ms
        self.market_options = market_options or {}
        self.gateway_options = gateway_options or {}
        self.counts = SessionCounts()
        self.account = AccountState()
        self.marks: dict[str, float] = {}
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.reducer: Reducer | None = None
        self.state: PortfolioState | None = None
        self.gateway: OrderGateway | None = None
        self.market: MarketStream | None = None
        self.user: UserStream | None = None

    # -- start-up ----------------------------------------------------------------------

    async def _rules(self) -> tuple[list[SymbolRules], dict[str, SymbolFilters]]:
        info = await self.rest.load_limits()
        entries = {s["symbol"]: s for s in info["symbols"]}
        missing = [s for s in self.symbols if s not in entries]
        if missing:
            raise SltError(f"the exchange lists no {', '.join(missing)}")
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

    async def start(self) -> None:
        """Rules, reconciliation, then the streams; nothing is sent before the reconciliation
        has been applied."""
        await self.rest.sync_clock()
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
        tf_ms = TIMEFRAME_MS[self.timeframe]
        now = await self.market_now()
        first = now - now % tf_ms - self.warmup_candles * tf_ms
        self.market = MarketStream(
            self.rest, self.ws_base_url, [(s, self.timeframe) for s in self.symbols],
            lambda items: self._queue.put_nowait(("market", items)),
            warmup_from={(s, self.timeframe): first for s in self.symbols},
            **self.market_options,
        )  # fmt: skip
        self.user = UserStream(self.rest, self.ws_base_url, self.account, self.symbols,
                               lambda evs: self._queue.put_nowait(("user", evs)))  # fmt: skip
        self._signals = {s: SignalStream(self.strategy, self.timeframe, self.config.stops)
                         for s in self.symbols}  # fmt: skip

    async def run(self, stop: asyncio.Event) -> SessionCounts:
        await self.start()
        assert self.market is not None and self.user is not None and self.gateway is not None
        streams = [asyncio.create_task(self.user.run(stop))]
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
                    self._market(items)
                elif source == "user":
                    self._events(self.gateway.screen(items))
                else:
                    self._events(items)
                if self.until_ms is not None and self._reached(self.until_ms):
                    stop.set()
        finally:
            stop.set()
            await self.gateway.drain()
            await asyncio.gather(*streams, return_exceptions=True)
            await self.gateway.close()
        return self.counts

    def _reached(self, until_ms: int) -> bool:
        last = self.counts.last_candle_ms
        return len(last) == len(self.symbols) and min(last.values()) >= until_ms

    # -- events ------------------------------------------------------------------------

    def _later(self, events: list[Event]) -> None:
        self._queue.put_nowait(("gateway", events))

    def _notice(self, notice: Notify) -> None:
        self.counts.notices.append(notice)
        log.warning("%s", notice.text)

    def _market(self, items: list[MarketData]) -> None:
        for item in items:
            if isinstance(item, MarkPrice):
                self.marks[item.symbol] = item.mark_price
            elif isinstance(item, CandleGap):
                self.counts.gaps += 1
                log.warning("%s %s: candles %d..%d missing (%s); features restart",
                            item.symbol, item.timeframe, item.from_open_ms, item.to_open_ms,
                            item.reason)  # fmt: skip
            elif isinstance(item, Candle):
                self._candle(item)

    def _candle(self, c: Candle) -> None:
        self.counts.candles[c.source] += 1
        row = self._signals[c.symbol].update(c.open_time_ms, c.open, c.high, c.low, c.close,
                                             c.volume)  # fmt: skip
        if c.source == "warmup":
            return
        traded = c.source == "stream"
        direction = row.direction if traded else 0
        self.counts.signals += direction != 0
        tf_ms = TIMEFRAME_MS[self.timeframe]
        self.counts.last_candle_ms[c.symbol] = c.open_time_ms
        self._apply(CandleClosed(c.symbol, c.open_time_ms, c.open_time_ms + tf_ms, c.open,
                                 c.high, c.low, c.close, direction, row.confidence,
                                 row.stop_pct, row.gate))  # fmt: skip

    def _events(self, events: Sequence[Event]) -> None:
        for event in events:
            self._apply(event)

    def _apply(self, first: Event) -> None:
        """Apply an event and, depth first, what executing its commands answered at once."""
        assert self.reducer is not None and self.state is not None and self.gateway is not None
        pending = [first]
        while pending:
            event = pending.pop(0)
            self.state, commands = self.reducer.step(self.state, event)
            if isinstance(event, OrderFilled):
                self.counts.fills.append(event)
            self._tally(commands)
            pending[:0] = self.gateway.execute(commands)

    def _tally(self, commands: list[Command]) -> None:
        for command in commands:
            self.counts.commands[type(command).__name__] += 1
            if isinstance(command, Notify):
                self._notice(command)
            elif isinstance(command, OpenVirtualPosition):
                self.counts.virtual_positions += 1
            elif isinstance(command, Persist):
                self.counts.closed_trades += 1
