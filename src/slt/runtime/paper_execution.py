"""Paper trading's exchange: the backtest's simulated exchange (``engine.sim_exchange``),
stepped by streamed closed candles, so fills, fees, slippage, funding and liquidation are
the backtest's to the last digit.

A step is one open time of all the session's symbols, run as the backtest runs a step: every
symbol's bar opens (funding due, the market orders that waited for it), then every bar is
matched (resting orders, virtual positions), then the candles close. Funding rates come from
``GET /fapi/v1/fundingRate`` once a funding time has passed (one request per symbol every
8 hours), with the mark price it names; no keys are needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from slt.domain.trading.symbol_rules import SymbolRules
from slt.engine.book import symbol_table
from slt.engine.config import EngineConfig
from slt.engine.messages import Command, Event
from slt.engine.sim_exchange import SimulatedExchange
from slt.engine.venue import Faults, VenueParams

FUNDING_INTERVAL_MS = 8 * 3_600_000
Funding = tuple[np.ndarray, np.ndarray, np.ndarray]


class PaperExecution:
    """The session's execution client in paper mode."""

    def __init__(
        self, run_id: str, rules: Sequence[SymbolRules], config: EngineConfig, timeframe_ms: int
    ) -> None:
        self.symbols = tuple(r.symbol for r in rules)
        params = VenueParams(config.costs, config.exits, timeframe_ms, Faults(), True)
        self.exchange = SimulatedExchange(run_id, self.symbols, symbol_table(rules), params)
        self.funding_enabled = config.funding
        self._times: list[list[int]] = [[] for _ in self.symbols]
        self._rates: list[list[float]] = [[] for _ in self.symbols]
        self._marks: list[list[float]] = [[] for _ in self.symbols]
        self._funding: list[Funding] = [self._arrays(s) for s in range(len(self.symbols))]
        self.fetched_to_ms = [-1] * len(self.symbols)

    def execute(self, commands: Sequence[Command]) -> list[Event]:
        return self.exchange.execute(commands)

    def add_funding(self, symbol: int, rows: list[dict[str, object]]) -> None:
        """Settled funding rows as ``/fapi/v1/fundingRate`` lists them (``fundingTime``,
        ``fundingRate``, ``markPrice``), each time once, in time order."""
        times = self._times[symbol]
        for row in rows:
            t = int(str(row["fundingTime"]))
            if times and t <= times[-1]:
                continue
            times.append(t)
            self._rates[symbol].append(float(str(row["fundingRate"])))
            mark = str(row.get("markPrice") or "")
            self._marks[symbol].append(float(mark) if mark else math.nan)
        self._funding[symbol] = self._arrays(symbol)

    def _arrays(self, s: int) -> Funding:
        return (np.asarray(self._times[s], dtype=np.int64), np.asarray(self._rates[s]),
                np.asarray(self._marks[s]))  # fmt: skip

    def funding_due(self, symbol: int, open_time_ms: int) -> int | None:
        """The start of the funding span to ask for before this bar opens, or None."""
        if not self.funding_enabled:
            return None
        due = open_time_ms - open_time_ms % FUNDING_INTERVAL_MS
        if due <= self.fetched_to_ms[symbol]:
            return None
        return due

    def open_bars(self, bars: Sequence[tuple[int, int, float, float, float, float]]) -> list[Event]:
        """Every bar of the step opens: ``(symbol index, open time, open, high, low, close)``."""
        events: list[Event] = []
        for s, t, o, h, lo, c in bars:
            events += self.exchange.open_bar(s, t, o, h, lo, c, self._funding[s])
        return events

    def match_bar(self, symbol: int) -> list[Event]:
        return self.exchange.match_bar(symbol)
