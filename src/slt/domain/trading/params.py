"""Kernel parameters of exits, costs, sizing and a symbol's exchange rules: NamedTuples numba
can take, so parameters that travel together travel as one argument."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt


class ExitParams(NamedTuple):
    """Every distance in percent of the entry price; a value <= 0 turns that exit off.

    ``emergency_fraction`` places the emergency close that share of the way from the entry to
    the liquidation price; the stop must lie inside it.
    """

    stop_loss_pct: float = 1.5
    take_profit_pct: float = 3.0
    trailing_activation_pct: float = 0.0
    trailing_distance_pct: float = 0.0
    partial_take_profit_pct: float = 0.0
    partial_fraction: float = 0.5
    break_even_trigger_pct: float = 0.0
    break_even_after_partial: bool = True
    max_holding_ms: int = 7_200_000
    emergency_fraction: float = 0.8
    exit_on_opposite: bool = True
    reverse_on_opposite: bool = True


class CostParams(NamedTuple):
    """Binance USDT-M defaults: taker 0.05 %, maker 0.02 %; slippage hits taker fills only."""

    taker_fee_pct: float = 0.05
    maker_fee_pct: float = 0.02
    slippage_bps: float = 1.0
    slippage_range_fraction: float = 0.0


class SizingParams(NamedTuple):
    """Risk in percent of equity; caps on isolated margin in percent of equity.

    ``mode``: 0 fixed-fractional, 1 Kelly from confidence, 2 ATR stop (see enums).
    """

    mode: int = 1
    risk_pct: float = 1.0
    max_position_pct: float = 10.0
    max_total_pct: float = 50.0
    atr_stop_multiple: float = 2.0
    atr_stop_min_pct: float = 0.3
    atr_stop_max_pct: float = 5.0
    leverage_min: float = 1.0
    leverage_max: float = 10.0
    win_rate_lookback: int = 20
    win_rate_min_trades: int = 5
    max_open_positions: int = 10  # across all symbols of the account


class StopRule(NamedTuple):
    """Where the stop goes: a fixed percentage of the entry, or a multiple of ATR (Wilder,
    ``atr_period`` bars) within bounds."""

    atr: bool = False
    stop_loss_pct: float = 1.5
    atr_multiple: float = 2.0
    atr_min_pct: float = 0.3
    atr_max_pct: float = 5.0
    atr_period: int = 14


class MarketRules(NamedTuple):
    """One symbol's exchange rules as kernels read them (see ``SymbolRules``): prices on the
    tick grid, quantities in whole steps, a minimum notional, and the leverage brackets
    (``float64[k, 5]``, see ``margin_nb``)."""

    tick_size: float
    step_size: float
    min_notional: float
    brackets: npt.NDArray[np.float64]
