"""The decision path of a paper or live session, whatever carries its inputs: closed candles
through the streamed signal pipeline, a step per open time as a backtest steps, the portfolio
reducer, and the commands handed to an execution client.

One object serves the single-process ``LiveSession`` and the three-process runtime's brain;
only ``execute`` differs (the order gateway in process, the command ring to the executor, or
paper's simulated exchange step). Every event reaches the reducer through one FIFO, so what
executing a command answers comes after the event that asked for it, as in the backtest.

Candles: warm-up candles feed the signal pipeline only; back-filled candles reach the engine
with no signal (a signal on a candle already old is not traded); streamed candles are traded.
A candle at or before the last one a symbol's pipeline took is a repeat (a restarted feed
warms up again) and is dropped. A step is taken once every symbol has shown its open time:
its candle came, or a later one, or a gap past it.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from slt.adapters.exchange.market_stream import Candle, CandleGap, MarketData, MarkPrice
from slt.domain.features.schema import FeatureSchema
from slt.domain.results import Trade
from slt.domain.strategies.base import Strategy
from slt.domain.timeframes import TIMEFRAME_MS
from slt.domain.trading.symbol_rules import SymbolRules
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
)
from slt.engine.pipeline import SignalRow, SignalStream
from slt.engine.reducer import Reducer
from slt.engine.state import PortfolioState
from slt.runtime.paper_execution import PaperExecution

log = logging.getLogger(__name__)

Observer = Callable[[Event, list[Command], PortfolioState], None]
F64 = npt.NDArray[np.float64]


class Learning(Protocol):
    """What the core asks of a learning loop (``runtime.learning_loop.LearningLoop``)."""

    @property
    def schema(self) -> FeatureSchema: ...

    async def candle(self, symbol: str, open_time_ms: int, open_: float, high: float,
                     low: float, close: float) -> Any: ...  # fmt: skip

    async def opened(self, command: OpenVirtualPosition, features: F64,
                     feature_schema_hash: str) -> bool: ...  # fmt: skip


Execute = Callable[[Sequence[Command]], list[Event]]
FundingRows = Callable[[str, int], Awaitable[list[dict[str, Any]]]]


@dataclass
class SessionCounts:
    candles: Counter[str] = field(default_factory=Counter)  # by source
    gaps: int = 0
    repeats: int = 0  # candles a pipeline had already taken (a restarted feed's warm-up)
    signals: int = 0
    commands: Counter[str] = field(default_factory=Counter)  # by type
    fills: list[OrderFilled] = field(default_factory=list)  # as applied by the reducer
    repeated_fills: int = 0  # a trade id heard again (a restarted executor's resync)
    notices: list[Notify] = field(default_factory=list)
    virtual_positions: int = 0
    closed_trades: int = 0
    trades: list[Trade] = field(default_factory=list)  # closed positions, as persisted
    last_candle_ms: dict[str, int] = field(default_factory=dict)


def is_entry(command: Command) -> bool:
    return isinstance(command, PlaceOrder) and command.purpose == "entry"


class DecisionCore:
    """``execute`` is set by the owner once its execution client exists (paper: the simulated
    exchange, set here); ``funding_rows`` reads settled funding for paper."""

    def __init__(
        self,
        symbols: Sequence[str],
        timeframe: str,
        strategy: Strategy,
        config: EngineConfig,
        rules: Sequence[SymbolRules],
        *,
        run_id: str,
        paper: bool,
        trade_from_ms: int | None = None,
        observe: Observer | None = None,
        on_candle: Callable[[Candle], None] | None = None,
        funding_rows: FundingRows | None = None,
        learning: Learning | None = None,
    ) -> None:
        self.symbols, self.timeframe = list(symbols), timeframe
        self.tf_ms = TIMEFRAME_MS[timeframe]
        self.config, self.run_id = config, run_id
        self.trade_from_ms = trade_from_ms
        self.observe, self.on_candle = observe, on_candle
        self.funding_rows = funding_rows
        self.reducer = Reducer(config, rules)
        self.state: PortfolioState = self.reducer.new_state(run_id)
        self.sim = PaperExecution(run_id, rules, config, self.tf_ms) if paper else None
        self.execute: Execute = self.sim.execute if self.sim is not None else _nowhere
        self.learning = learning  # every signal's virtual position, followed and learnt from
        self.signals = {s: SignalStream(strategy, timeframe, config.stops,
                                        with_features=learning is not None)
                        for s in self.symbols}  # fmt: skip
        self._fill_ids: set[tuple[str, int]] = set()
        self._opened: list[OpenVirtualPosition] = []  # this step's, for the learning loop
        self.counts = SessionCounts()
        self.marks: dict[str, float] = {}
        self.stopping = False  # no new entries
        self.late_candles = 0  # a symbol's candle after its step had gone on without it
        self._fed: dict[str, int] = {}  # per symbol, the newest open time its pipeline took
        self._steps: dict[int, dict[str, tuple[Candle, SignalRow, F64 | None]]] = {}
        self._stepped_to = -1  # the open time of the last step taken
        self._seen: dict[str, int] = {}  # per symbol, the newest open time it has shown

    # -- market data -------------------------------------------------------------------

    async def market(self, items: Sequence[MarketData]) -> None:
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
                await self.candle(item)

    async def candle(self, c: Candle) -> None:
        if c.open_time_ms <= self._fed.get(c.symbol, -1):
            self.counts.repeats += 1
            return
        self._fed[c.symbol] = c.open_time_ms
        if self.on_candle is not None:
            self.on_candle(c)
        self.counts.candles[c.source] += 1
        row = self.signals[c.symbol].update(c.open_time_ms, c.open, c.high, c.low, c.close,
                                            c.volume)  # fmt: skip
        rehearsed = self.trade_from_ms is not None and c.open_time_ms >= self.trade_from_ms
        if c.source == "warmup" and not rehearsed:
            return
        if c.open_time_ms <= self._stepped_to:
            self.late_candles += 1
            log.warning("%s: the candle of %d came after its step had gone on without it",
                        c.symbol, c.open_time_ms)  # fmt: skip
            return
        features = self.signals[c.symbol].row
        kept = None if features is None or self.learning is None else features.copy()
        self._steps.setdefault(c.open_time_ms, {})[c.symbol] = (c, row, kept)
        self._seen[c.symbol] = max(self._seen.get(c.symbol, -1), c.open_time_ms)
        await self._take_steps()

    async def _take_steps(self) -> None:
        while self._steps:
            first = min(self._steps)
            if len(self._seen) < len(self.symbols) or min(self._seen.values()) < first:
                return  # a symbol has not shown this open time yet
            await self._step(first, self._steps.pop(first))

    async def _step(
        self, open_ms: int, candles: dict[str, tuple[Candle, SignalRow, F64 | None]]
    ) -> None:
        """One open time, as the backtest steps it: the bars open, are matched, then close."""
        self._stepped_to = open_ms
        order = [s for s in self.symbols if s in candles]  # the symbols' order, as a backtest
        if self.sim is not None:
            index = {s: i for i, s in enumerate(self.symbols)}
            for symbol in order:
                await self._funding(index[symbol], open_ms)
            for symbol in order:  # as the backtest: each bar's open delivered, then the next
                c = candles[symbol][0]
                self.events(self.sim.open_bars([(index[symbol], c.open_time_ms, c.open,
                                                 c.high, c.low, c.close)]))  # fmt: skip
            for symbol in order:
                self.events(self.sim.match_bar(index[symbol]))
        closes: list[Event] = []
        for symbol in order:
            c, row, _ = candles[symbol]
            traded = c.source == "stream" or (
                self.trade_from_ms is not None and c.open_time_ms >= self.trade_from_ms
            )
            direction = row.direction if traded else 0
            self.counts.signals += direction != 0
            self.counts.last_candle_ms[symbol] = c.open_time_ms
            closes.append(CandleClosed(symbol, c.open_time_ms, c.open_time_ms + self.tf_ms,
                                       c.open, c.high, c.low, c.close, direction,
                                       row.confidence, row.stop_pct, row.gate))  # fmt: skip
        self.events(closes)  # the decision, and its orders on their way, before any learning
        opened, self._opened = self._opened, []
        if self.learning is not None:  # off the order path: the database waits here
            for symbol in order:  # the virtual positions opened before this candle, then
                c = candles[symbol][0]  # those its signals open
                await self.learning.candle(symbol, c.open_time_ms, c.open, c.high, c.low,
                                           c.close)  # fmt: skip
            for command in opened:
                features = candles[command.symbol][2] if command.symbol in candles else None
                if features is not None:
                    await self.learning.opened(command, features, self.learning.schema.hash)

    async def _funding(self, s: int, open_ms: int) -> None:
        """Paper: the settled funding due by this bar's open, read once per funding time."""
        assert self.sim is not None
        due = self.sim.funding_due(s, open_ms)
        if due is None or self.funding_rows is None:
            return
        self.sim.add_funding(s, await self.funding_rows(self.symbols[s], due))
        self.sim.fetched_to_ms[s] = due

    def reached(self, until_ms: int) -> bool:
        """Every symbol has shown ``until_ms``: its candle, or a gap past it (a rehearsal
        whose last candles could not be had still ends)."""
        seen = self._seen
        return len(seen) == len(self.symbols) and min(seen.values()) >= until_ms and not any(
            t <= until_ms for t in self._steps)  # fmt: skip

    # -- events ------------------------------------------------------------------------

    def events(self, events: Sequence[Event]) -> None:
        """Apply events in order; what executing their commands answers queues up behind
        them (first in, first out, as the backtest's drivers do)."""
        queue = deque(events)
        while queue:
            event = queue.popleft()
            self.state, commands = self.reducer.step(self.state, event)
            if isinstance(event, OrderFilled):  # the reducer drops a trade id it has had
                key = (event.symbol, event.trade_id)
                if key in self._fill_ids:
                    self.counts.repeated_fills += 1
                else:
                    self._fill_ids.add(key)
                    self.counts.fills.append(event)
            if self.observe is not None:
                self.observe(event, commands, self.state)
            if commands:
                self.tally(commands)
                if self.stopping:  # no new entry once the session is stopping
                    entries = [c for c in commands if is_entry(c)]
                    queue.extend(OrderRejected(c.client_order_id, c.symbol, "session stopping")
                                 for c in entries if isinstance(c, PlaceOrder))  # fmt: skip
                    commands = [c for c in commands if not is_entry(c)]
                queue.extend(self.execute(commands))

    def tally(self, commands: Sequence[Command]) -> None:
        for command in commands:
            self.counts.commands[type(command).__name__] += 1
            if isinstance(command, Notify):
                self.notice(command)
            elif isinstance(command, OpenVirtualPosition):
                self.counts.virtual_positions += 1
                self._opened.append(command)
            elif isinstance(command, Persist):
                self.counts.closed_trades += 1
                self.counts.trades.append(command.trade)

    def notice(self, notice: Notify) -> None:
        self.counts.notices.append(notice)
        log.warning("%s", notice.text)

    def orders_sent(self) -> int:
        return sum(self.counts.commands[k] for k in ("PlaceOrder", "CancelOrder"))


def _nowhere(commands: Sequence[Command]) -> list[Event]:
    if any(isinstance(c, PlaceOrder) for c in commands):
        raise RuntimeError("a decision core without an execution client was asked to trade")
    return []
