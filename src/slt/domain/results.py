"""What a backtest reads and produces: a symbol's market data, closed trades, and the
marked-to-market equity of the account."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from slt.domain.series import Candles, FundingRates
from slt.domain.trading.symbol_rules import SymbolRules


class ExitFill(NamedTuple):
    """One fill that reduced or closed a position (a partial take profit is one of several)."""

    time_ms: int
    price: float
    quantity: float
    reason: str
    fee: float


class Trade(NamedTuple):
    """One closed position; money in USDT, percentages relative to the entry notional.

    NamedTuples, not dataclasses: a backtest makes thousands and tuples are built 5x faster."""

    position_id: int
    symbol: str
    side: str
    entry_time_ms: int
    entry_price: float
    exit_time_ms: int
    exit_price: float
    quantity: float
    leverage: float
    margin: float
    pnl: float
    pnl_pct: float
    fees: float
    funding: float
    exit_reason: str
    signal_time_ms: int
    exits: tuple[ExitFill, ...]


@dataclass(frozen=True)
class SymbolBars:
    """One symbol's traded bars: open times, closes, and whether a position was open."""

    symbol: str
    bar_open_time_ms: npt.NDArray[np.int64]
    close: npt.NDArray[np.float64]
    in_position: npt.NDArray[np.bool_]


@dataclass(frozen=True)
class BacktestResult:
    """Trades of one account plus one equity point per step (a bar open time of any symbol),
    marked to each symbol's last close.

    ``close`` and ``in_position`` are per step: the first symbol's close (NaN where it had no
    bar) and whether any position was open during the step; ``bars`` has them per symbol.
    """

    symbols: tuple[str, ...]
    timeframe: str
    initial_equity: float
    trades: tuple[Trade, ...]
    equity_time_ms: npt.NDArray[np.int64]
    equity: npt.NDArray[np.float64]
    in_position: npt.NDArray[np.bool_]
    close: npt.NDArray[np.float64]
    bar_open_time_ms: npt.NDArray[np.int64]
    bars: tuple[SymbolBars, ...] = ()

    @property
    def symbol(self) -> str:
        """The symbol, or the symbols joined by commas for a portfolio."""
        return ",".join(self.symbols)


@dataclass(frozen=True)
class MarketData:
    """One symbol's history for a run: base candles (from before ``start_ms`` for warm-up),
    its exchange rules, and when stored its funding rates, 8h mark prices and 1m candles."""

    candles: Candles
    start_ms: int
    rules: SymbolRules
    funding: FundingRates | None = None
    mark: Candles | None = None
    minute: Candles | None = None
