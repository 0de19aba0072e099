"""Position size and leverage from equity, stop distance and confidence (capital-independent).

Risk is a percent of equity lost if the stop is hit; Kelly scales it by the original system's
multiplier (confidence - 0.5) x 4; the isolated margin of one position and of all positions is
capped in percent of equity; leverage grows with confidence and recent win rate, within the
configured range and the exchange's bracket, and is lowered until the stop lies inside the
emergency-close distance (itself inside the liquidation distance).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from slt.domain.features.jit import step_jit
from slt.domain.trading.enums import SIZING_KELLY
from slt.domain.trading.margin_nb import (
    floor_to_step_nb,
    liquidation_distance_pct_nb,
    max_leverage_nb,
)
from slt.domain.trading.params import MarketRules, SizingParams

F64 = npt.NDArray[np.float64]


@step_jit
def kelly_multiplier_nb(confidence: float) -> float:
    """0 at or below 0.5 (skip the trade), 1x at 0.75, 2x at 1.0."""
    return max(0.0, (confidence - 0.5) * 4.0)


@step_jit
def choose_leverage_nb(confidence: float, win_rate: float, p: SizingParams) -> float:
    """Whole leverage from leverage_min (no edge) up to leverage_max (confidence 1, win rate
    65 % or more)."""
    k_conf = min(max((confidence - 0.5) / 0.5, 0.0), 1.0)
    k_win = min(max((win_rate - 0.35) / 0.30, 0.0), 1.0)
    lev = p.leverage_min + (p.leverage_max - p.leverage_min) * k_conf * k_win
    return max(p.leverage_min, math.floor(lev + 1e-9))


@step_jit
def stop_inside_liquidation_nb(
    side: int,
    stop_pct: float,
    leverage: float,
    notional: float,
    emergency_fraction: float,
    brackets: F64,
) -> bool:
    distance = liquidation_distance_pct_nb(side, leverage, brackets, notional)
    return stop_pct < emergency_fraction * distance


@step_jit
def size_position_nb(
    side: int,
    equity: float,
    open_margin: float,
    price: float,
    stop_pct: float,
    confidence: float,
    win_rate: float,
    p: SizingParams,
    rules: MarketRules,
    emergency_fraction: float,
) -> tuple[float, float]:
    """(quantity, leverage); quantity 0.0 means skip (no edge, caps reached, below minimum).

    ``open_margin`` is the isolated margin already in use or reserved across the account.
    """
    brackets = rules.brackets
    mult = kelly_multiplier_nb(confidence) if p.mode == SIZING_KELLY else 1.0
    if mult <= 0 or equity <= 0 or stop_pct <= 0 or price <= 0:
        return 0.0, 0.0
    margin_cap = min(
        equity * p.max_position_pct / 100.0, equity * p.max_total_pct / 100.0 - open_margin
    )
    if margin_cap <= 0:
        return 0.0, 0.0
    risk_notional = equity * p.risk_pct / 100.0 * mult / (stop_pct / 100.0)
    lev = choose_leverage_nb(confidence, win_rate, p)
    notional = min(risk_notional, margin_cap * lev)
    while lev > p.leverage_min and (
        lev > max_leverage_nb(brackets, notional)
        or not stop_inside_liquidation_nb(
            side, stop_pct, lev, notional, emergency_fraction, brackets
        )
    ):
        lev -= 1.0
        notional = min(risk_notional, margin_cap * lev)
    if lev > max_leverage_nb(brackets, notional) or not stop_inside_liquidation_nb(
        side, stop_pct, lev, notional, emergency_fraction, brackets
    ):
        return 0.0, 0.0
    qty = floor_to_step_nb(notional / price, rules.step_size)
    if qty <= 0 or qty * price < rules.min_notional:
        return 0.0, 0.0
    return qty, lev
