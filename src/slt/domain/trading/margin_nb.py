"""Binance USDT-M leverage brackets, isolated-margin liquidation and order rounding, as kernels.

A bracket table is ``float64[k, 5]`` sorted by floor, one row per row of Binance's
GET /fapi/v1/leverageBracket: (notionalFloor, notionalCap, initialLeverage, maintMarginRatio,
cum). A notional belongs to the row whose [floor, cap) holds it; beyond the last cap the last row
applies. The maintenance margin of a position is ``notional * mmr - cum``; with a consistent table
(``cum_i = cum_{i-1} + floor_i * (mmr_i - mmr_{i-1})``, see ``SymbolRules.validate``) it is a
continuous function of the notional.

None of these kernels allocates, so they compile without reference counting and can be called from
the per-bar step kernels.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from slt.domain.features.jit import step_jit

F64 = npt.NDArray[np.float64]

# Columns of a bracket table.
FLOOR = 0
CAP = 1
MAX_LEVERAGE = 2
MMR = 3
CUM = 4

# Decimal places tried when cleaning a rounded price or quantity (Binance uses at most 8).
_MAX_DECIMALS = 15


@step_jit
def bracket_row_nb(brackets: F64, notional: float) -> int:
    """Row whose [floor, cap) holds ``|notional|``; the last row beyond the table's last cap.

    A NaN notional lands on the last row (lowest leverage, highest margin rate), the safe side.
    """
    n = abs(notional)
    last: int = brackets.shape[0] - 1
    for i in range(last):
        if n < brackets[i, CAP]:
            return i
    return last


@step_jit
def max_leverage_nb(brackets: F64, notional: float) -> float:
    """Highest leverage Binance allows for a position of this notional (USDT)."""
    return float(brackets[bracket_row_nb(brackets, notional), MAX_LEVERAGE])


@step_jit
def maintenance_margin_nb(brackets: F64, notional: float) -> float:
    """Maintenance margin (USDT) of a position of this notional: notional * mmr - cum."""
    n = abs(notional)
    row = bracket_row_nb(brackets, n)
    margin: float = n * brackets[row, MMR] - brackets[row, CUM]
    return margin


@step_jit
def liquidation_price_nb(
    side: int, entry_price: float, quantity: float, isolated_margin: float, brackets: F64
) -> float:
    """Binance's liquidation price of one isolated position in one-way mode.

    LP = (WB + cum - side*Q*EP) / (Q*MMR - side*Q), WB = ``isolated_margin`` (the isolated wallet
    balance), with TMM = UPNL = 0 as Binance sets them for isolated margin. MMR and cum come from
    the bracket of the notional at entry, Q * EP. Binance re-evaluates with the bracket of the
    notional at the liquidation price when that differs; only then is our price further from
    entry than Binance's, by at most (mmr gap of the two brackets) x (liquidation distance), e.g.
    0.1% x 10% = 0.01% of the price across BTCUSDT's first two brackets.

    Returns 0.0 for a long whose LP <= 0 (it cannot be liquidated), NaN for a side other than
    +1/-1 or a quantity or price <= 0.
    """
    if (side != 1 and side != -1) or quantity <= 0.0 or entry_price <= 0.0:
        return np.nan
    row = bracket_row_nb(brackets, quantity * entry_price)
    mmr: float = brackets[row, MMR]
    cum: float = brackets[row, CUM]
    price: float = (isolated_margin + cum - side * quantity * entry_price) / (
        quantity * mmr - side * quantity
    )
    if side == 1 and price <= 0.0:
        return 0.0
    return price


@step_jit
def liquidation_distance_pct_nb(
    side: int, leverage: float, brackets: F64, notional: float
) -> float:
    """Adverse move from entry, in percent of entry, that liquidates a position opened with margin
    ``notional / leverage`` (the bracket of ``notional``, as ``liquidation_price_nb`` chooses it).

    With c = cum / notional: (1/L + c - mmr) / (1 - side*mmr) * 100, so that
    ``liquidation_price_nb == entry * (1 - side * distance / 100)``. A long that cannot be
    liquidated gives 100.0; a value <= 0 means liquidated at once (leverage above the bracket's).
    NaN for a side other than +1/-1 or a leverage <= 0.
    """
    if (side != 1 and side != -1) or not leverage > 0.0:
        return np.nan
    n = abs(notional)
    row = bracket_row_nb(brackets, n)
    mmr: float = brackets[row, MMR]
    cum_share: float = brackets[row, CUM] / n if n > 0.0 else 0.0
    fraction = (1.0 / leverage + cum_share - mmr) / (1.0 - side * mmr)
    if side == 1 and fraction >= 1.0:
        return 100.0
    return fraction * 100.0


@step_jit
def _decimals_nb(increment: float) -> int:
    """Decimal places of an exchange increment (0.1 -> 1, 0.001 -> 3, 0.25 -> 2, 5 -> 0)."""
    for d in range(_MAX_DECIMALS + 1):
        scaled = increment * 10.0**d
        if abs(scaled - round(scaled)) <= 1e-9 * scaled:
            return d
    return _MAX_DECIMALS


@step_jit
def round_price_nb(price: float, tick_size: float) -> float:
    """``price`` to the nearest multiple of ``tick_size`` (halves up), as a clean decimal float.

    A tick <= 0 (or NaN) leaves the price unchanged.
    """
    if not tick_size > 0.0:
        return price
    ratio = price / tick_size
    # float division can land just under a half (100.05 / 0.1 = 1000.4999...): nudge by a few ulps.
    ticks = math.floor(ratio + 0.5 + (1e-9 + 1e-12 * abs(ratio)))
    return round(ticks * tick_size, _decimals_nb(tick_size))


@step_jit
def floor_to_step_nb(qty: float, step_size: float) -> float:
    """``qty`` down to a whole number of steps (towards zero), robust to float error.

    0.003 / 0.001 is 2.9999999999999996 in floats: it still gives 3 steps, not 2. A step <= 0 (or
    NaN) leaves the quantity unchanged.
    """
    if not step_size > 0.0:
        return qty
    ratio = abs(qty) / step_size
    steps = math.floor(ratio + (1e-9 + 1e-12 * ratio))
    out = round(steps * step_size, _decimals_nb(step_size))
    return out if qty >= 0.0 else -out
