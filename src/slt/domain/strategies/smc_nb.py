"""Smart-money confluence kernel: one pass over the feature rows, top-down from 1d to the base.

Each side is read with the same code: ``s`` = +1 for longs, -1 for shorts, so "bullish" means
``s * trend > 0`` and "discount" means below the level for longs, above 1 - level for shorts.
Row i reads only feature rows i and i - 1; an invalid row (reason != 0) never signals.

Factors and their weights in points (of 100; score = points / 100), long side (shorts mirror):

    bias      d1_trend > 0 .................................................. 15
              h1_trend > 0 .................................................. 10
              m15_trend > 0 ................................................. 10
    location  d1_premium_discount < level ................................... 5
              h1_premium_discount < level ................................... 10
              m15_premium_discount < level .................................. 5
              premium_discount (base) < level ............................... 5
    1h levels price at a 1h bullish gap: -below <= h1_fvg_bull_dist_atr <= above  5
              1h buy-side liquidity to draw on: h1_liq_buy_dist_atr <= reach ... 5
    triggers  base break: bos == +1 or choch == +1 .......................... 10
              sell-side liquidity sweep: liq_sweep == +1 .................... 10
              fresh touch of the nearest bullish gap ........................ 5
              fresh touch of the nearest bullish order block ................ 5

A fresh touch: ``*_touched`` went 0 -> 1 on this row while the nearest zone stayed the same
(its age grew by exactly one bar), so the low reached the zone on this candle.

The fresh-touch test is the only read of an earlier row, so the step's state is what it needs
from that row: each zone's age if it was untouched then (``ZoneMemory``). ``smc_step_nb``
decides one row and the batch ``smc_signals_nb`` is a loop over it, so a stream of rows gives
the batch signals bit for bit.

Strict entry: h1_trend > 0, d1_trend >= 0, discount on 1h or 15m, one of the four triggers, and
score >= min_score. Relaxed entry: h1_trend > 0, one trigger or a new bullish gap on this candle
(fvg_new == +1), and score >= the relaxed minimum; every strict signal passes it.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt
from numba import njit

from slt.domain.features.jit import inline_jit, step_jit

F64 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int8]

W_D1_TREND = 15
W_H1_TREND = 10
W_M15_TREND = 10
W_D1_DISCOUNT = 5
W_H1_DISCOUNT = 10
W_M15_DISCOUNT = 5
W_BASE_DISCOUNT = 5
W_H1_GAP = 5
W_H1_LIQUIDITY = 5
W_BREAK = 10
W_SWEEP = 10
W_GAP_TOUCH = 5
W_BLOCK_TOUCH = 5
TOTAL_POINTS = 100


class SmcColumns(NamedTuple):
    """Column indices in the feature matrix (context columns resolved for the base timeframe)."""

    d1_trend: int
    d1_premium_discount: int
    h1_trend: int
    h1_premium_discount: int
    h1_fvg_bull_dist_atr: int
    h1_fvg_bear_dist_atr: int
    h1_liq_buy_dist_atr: int
    h1_liq_sell_dist_atr: int
    m15_trend: int
    m15_premium_discount: int
    premium_discount: int
    bos: int
    choch: int
    liq_sweep: int
    fvg_new: int
    fvg_bull_touched: int
    fvg_bull_age: int
    fvg_bear_touched: int
    fvg_bear_age: int
    ob_bull_touched: int
    ob_bull_age: int
    ob_bear_touched: int
    ob_bear_age: int


class ZoneMemory(Protocol):
    """What the fresh-touch test needs from the row before, per nearest zone: its age if price
    had not touched it yet, else NaN (also before the first row and after an invalid one).

    Kernels get it as one record of ZONE_MEMORY_DT (made from these fields); this class only
    tells type checkers its fields.
    """

    fvg_bull_untouched_age: float
    fvg_bear_untouched_age: float
    ob_bull_untouched_age: float
    ob_bear_untouched_age: float


ZONE_MEMORY_DT = np.dtype([(name, np.float64) for name in ZoneMemory.__annotations__])


class SmcState(NamedTuple):
    """Everything the rule remembers between rows."""

    previous: npt.NDArray[np.void]  # one ZONE_MEMORY_DT record; NaN before the first row


class SmcKernelParams(NamedTuple):
    relaxed: bool
    min_score: float
    discount_level: float  # below it (longs) / above 1 - it (shorts) is discount / premium
    h1_gap_below_atr: float
    h1_gap_above_atr: float
    h1_liquidity_reach_atr: float


@step_jit
def _forget_zones_nb(z: ZoneMemory) -> None:
    z.fvg_bull_untouched_age = np.nan
    z.fvg_bear_untouched_age = np.nan
    z.ob_bull_untouched_age = np.nan
    z.ob_bear_untouched_age = np.nan


@inline_jit
def _untouched_age_nb(touched: float, age: float) -> float:
    return age if touched == 0.0 else np.nan


@inline_jit
def _remember_zones_nb(z: ZoneMemory, row: F64, c: SmcColumns) -> None:
    z.fvg_bull_untouched_age = _untouched_age_nb(row[c.fvg_bull_touched], row[c.fvg_bull_age])
    z.fvg_bear_untouched_age = _untouched_age_nb(row[c.fvg_bear_touched], row[c.fvg_bear_age])
    z.ob_bull_untouched_age = _untouched_age_nb(row[c.ob_bull_touched], row[c.ob_bull_age])
    z.ob_bear_untouched_age = _untouched_age_nb(row[c.ob_bear_touched], row[c.ob_bear_age])


@njit(cache=True)
def smc_state_nb() -> SmcState:
    """The state before the first row: no row before, so no touch can be fresh."""
    previous = np.empty(1, dtype=ZONE_MEMORY_DT)
    _forget_zones_nb(previous[0])
    return SmcState(previous)


@inline_jit
def _in_zone_nb(premium_discount: float, s: int, level: float) -> bool:
    """Discount for longs, premium for shorts; NaN (no swing range) is neither."""
    if s > 0:
        return premium_discount < level
    return premium_discount > 1.0 - level


@inline_jit
def _fresh_touch_nb(touched: float, age: float, untouched_age_before: float) -> bool:
    """Touched on this row, and the same zone (one bar older) was untouched on the row before;
    the same test as touched 0 -> 1 with age + 1, as NaN + 1 equals nothing."""
    return touched == 1.0 and age == untouched_age_before + 1.0


@inline_jit
def _side_nb(row: F64, before: ZoneMemory, c: SmcColumns, p: SmcKernelParams, s: int) -> float:
    """Score of side ``s`` (the side of h1_trend) on ``row`` if its entry rules hold, else -1."""
    # Triggers first: most rows have none, and then nothing else needs reading.
    broke = row[c.bos] * s > 0.0 or row[c.choch] * s > 0.0
    swept = row[c.liq_sweep] * s > 0.0
    if s > 0:
        gap_touch = _fresh_touch_nb(
            row[c.fvg_bull_touched], row[c.fvg_bull_age], before.fvg_bull_untouched_age
        )
        block_touch = _fresh_touch_nb(
            row[c.ob_bull_touched], row[c.ob_bull_age], before.ob_bull_untouched_age
        )
    else:
        gap_touch = _fresh_touch_nb(
            row[c.fvg_bear_touched], row[c.fvg_bear_age], before.fvg_bear_untouched_age
        )
        block_touch = _fresh_touch_nb(
            row[c.ob_bear_touched], row[c.ob_bear_age], before.ob_bear_untouched_age
        )
    triggered = broke or swept or gap_touch or block_touch
    if not (triggered or (p.relaxed and row[c.fvg_new] * s > 0.0)):
        return -1.0
    d1 = row[c.d1_trend] * s
    level = p.discount_level
    h1_zone = _in_zone_nb(row[c.h1_premium_discount], s, level)
    m15_zone = _in_zone_nb(row[c.m15_premium_discount], s, level)
    if not p.relaxed and not (d1 >= 0.0 and (h1_zone or m15_zone)):
        return -1.0
    if s > 0:
        gap_dist, liq_dist = row[c.h1_fvg_bull_dist_atr], row[c.h1_liq_buy_dist_atr]
    else:
        gap_dist, liq_dist = row[c.h1_fvg_bear_dist_atr], row[c.h1_liq_sell_dist_atr]
    points = W_H1_TREND
    points += W_D1_TREND if d1 > 0.0 else 0
    points += W_M15_TREND if row[c.m15_trend] * s > 0.0 else 0
    points += W_D1_DISCOUNT if _in_zone_nb(row[c.d1_premium_discount], s, level) else 0
    points += W_H1_DISCOUNT if h1_zone else 0
    points += W_M15_DISCOUNT if m15_zone else 0
    points += W_BASE_DISCOUNT if _in_zone_nb(row[c.premium_discount], s, level) else 0
    points += W_H1_GAP if -p.h1_gap_below_atr <= gap_dist <= p.h1_gap_above_atr else 0
    points += W_H1_LIQUIDITY if liq_dist <= p.h1_liquidity_reach_atr else 0
    points += W_BREAK if broke else 0
    points += W_SWEEP if swept else 0
    points += W_GAP_TOUCH if gap_touch else 0
    points += W_BLOCK_TOUCH if block_touch else 0
    score = points / TOTAL_POINTS
    return score if score >= p.min_score else -1.0


@inline_jit
def smc_step_nb(
    s: SmcState, row: F64, reason: int, c: SmcColumns, p: SmcKernelParams
) -> tuple[int, float]:
    """One feature row in (``reason`` its reason code, 0 = valid): its direction and score (0
    without a signal). Every row, valid or not, becomes the row before of the next step."""
    before = s.previous[0]
    direction, score = 0, 0.0
    if reason == 0:
        h1_trend = row[c.h1_trend]
        # Both modes need h1_trend on the signal's side, so it picks the one side to read.
        side = 1 if h1_trend > 0.0 else -1 if h1_trend < 0.0 else 0
        if side != 0:
            side_score = _side_nb(row, before, c, p, side)
            if side_score >= 0.0:
                direction, score = side, side_score
    _remember_zones_nb(before, row, c)
    return direction, score


@step_jit
def smc_run_nb(
    s: SmcState,
    values: F64,
    reason: I8,
    c: SmcColumns,
    p: SmcKernelParams,
    direction: I8,
    score: F64,
) -> None:
    """The batch path: the step, once per row, into preallocated outputs."""
    for i in range(values.shape[0]):
        direction[i], score[i] = smc_step_nb(s, values[i], reason[i], c, p)


@njit(cache=True)
def smc_signals_nb(values: F64, reason: I8, c: SmcColumns, p: SmcKernelParams) -> tuple[I8, F64]:
    """Direction and score of every row (score 0 where no signal)."""
    n = values.shape[0]
    direction = np.zeros(n, dtype=np.int8)
    scores = np.zeros(n)
    smc_run_nb(smc_state_nb(), values, reason, c, p, direction, scores)
    return direction, scores
