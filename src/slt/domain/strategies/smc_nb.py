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

Strict entry: h1_trend > 0, d1_trend >= 0, discount on 1h or 15m, one of the four triggers, and
score >= min_score. Relaxed entry: h1_trend > 0, one trigger or a new bullish gap on this candle
(fvg_new == +1), and score >= the relaxed minimum; every strict signal passes it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from numba import njit

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


class SmcKernelParams(NamedTuple):
    relaxed: bool
    min_score: float
    discount_level: float  # below it (longs) / above 1 - it (shorts) is discount / premium
    h1_gap_below_atr: float
    h1_gap_above_atr: float
    h1_liquidity_reach_atr: float


@njit(cache=True)
def _in_zone_nb(premium_discount: float, s: int, level: float) -> bool:
    """Discount for longs, premium for shorts; NaN (no swing range) is neither."""
    if s > 0:
        return premium_discount < level
    return premium_discount > 1.0 - level


@njit(cache=True)
def _fresh_touch_nb(values: F64, i: int, touched: int, age: int) -> bool:
    if i == 0:
        return False
    return bool(
        values[i, touched] == 1.0
        and values[i - 1, touched] == 0.0
        and values[i, age] == values[i - 1, age] + 1.0
    )


@njit(cache=True)
def _side_nb(values: F64, i: int, c: SmcColumns, p: SmcKernelParams, s: int) -> float:
    """Score of side ``s`` (the side of h1_trend) on row i if its entry rules hold, else -1."""
    # Triggers first: most rows have none, and then nothing else needs reading.
    broke = values[i, c.bos] * s > 0.0 or values[i, c.choch] * s > 0.0
    swept = values[i, c.liq_sweep] * s > 0.0
    if s > 0:
        gap_touch = _fresh_touch_nb(values, i, c.fvg_bull_touched, c.fvg_bull_age)
        block_touch = _fresh_touch_nb(values, i, c.ob_bull_touched, c.ob_bull_age)
    else:
        gap_touch = _fresh_touch_nb(values, i, c.fvg_bear_touched, c.fvg_bear_age)
        block_touch = _fresh_touch_nb(values, i, c.ob_bear_touched, c.ob_bear_age)
    triggered = broke or swept or gap_touch or block_touch
    if not (triggered or (p.relaxed and values[i, c.fvg_new] * s > 0.0)):
        return -1.0
    row = values[i]
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


@njit(cache=True)
def smc_signals_nb(values: F64, reason: I8, c: SmcColumns, p: SmcKernelParams) -> tuple[I8, F64]:
    """Direction and score of every row (score 0 where no signal)."""
    n = values.shape[0]
    direction = np.zeros(n, dtype=np.int8)
    scores = np.zeros(n)
    for i in range(n):
        if reason[i] != 0:
            continue
        h1_trend = values[i, c.h1_trend]
        # Both modes need h1_trend on the signal's side, so it picks the one side to read.
        s = 1 if h1_trend > 0.0 else -1 if h1_trend < 0.0 else 0
        if s == 0:
            continue
        score = _side_nb(values, i, c, p, s)
        if score >= 0.0:
            direction[i] = s
            scores[i] = score
    return direction, scores
