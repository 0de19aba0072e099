"""What a backtest produced: closed trades and the marked-to-market equity of every bar."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt


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
class BacktestResult:
    """Trades plus one equity point per bar, marked to that bar's close."""

    symbol: str
    timeframe: str
    initial_equity: float
    trades: tuple[Trade, ...]
    equity_time_ms: npt.NDArray[np.int64]
    equity: npt.NDArray[np.float64]
    in_position: npt.NDArray[np.bool_]
    close: npt.NDArray[np.float64]
    bar_open_time_ms: npt.NDArray[np.int64]
