"""Smart-money market structure: swings, BOS/CHoCH, premium/discount, order blocks, liquidity.

Every event is stamped at the bar where it becomes knowable: a swing with right length k at
pivot + k, a break on the candle whose close crosses the level, a sweep on the sweeping candle.
Memory is bounded by ``horizon`` (swings, trend) and ``ob_max_age`` (order blocks), so a run
started anywhere agrees with the full run after the warm-ups of ``structure_warmups``.

Columns (NaN means "no such level"; columns ending in ``_atr`` are also NaN while ATR is):
- swing_high_dist_atr: (latest confirmed swing high within horizon - close) / ATR.
- swing_low_dist_atr: (close - latest confirmed swing low within horizon) / ATR.
- swing_high_age: bars since the pivot of the latest confirmed swing high within horizon.
- swing_low_age: bars since the pivot of the latest confirmed swing low within horizon.
- swing_range_pct: (latest swing high - latest swing low) / close * 100; negative when inverted.
- premium_discount: (close - latest swing low) / (latest swing high - swing low); NaN unless
  the high is above the low; below 0 or above 1 outside that range.
- trend: direction of the last structure break within horizon bars (+1, -1, 0 = none).
- bos: break of structure (+1 bullish, -1 bearish): a close through the latest unbroken swing,
  with the trend of the previous bar or from no trend.
- choch: change of character (+1 bullish, -1 bearish): such a break against the trend.
- bars_since_break: bars since the last structure break; NaN if none within horizon.
- ob_bull_dist_atr: (close - top of the active bullish order block with the highest top) / ATR;
  negative while the close is inside that block.
- ob_bull_age: bars since that nearest bullish order block was created (at its break).
- ob_bull_touched: 1 once a low has reached the top of that nearest bullish block, else 0.
- ob_bear_dist_atr: (bottom of the active bearish order block with the lowest bottom - close) /
  ATR; negative while the close is inside that block.
- ob_bear_age: bars since that nearest bearish order block was created (at its break).
- ob_bear_touched: 1 once a high has reached the bottom of that nearest bearish block, else 0.
- ob_new: +1 a bullish, -1 a bearish order block was created on this bar (at a break).
- ob_invalidated: +1 a bullish block closed below its low, -1 a bearish one above its high.
- liq_buy_dist_atr: (nearest buy-side liquidity level - close) / ATR; live levels are at or
  above this bar's high.
- liq_sell_dist_atr: (close - nearest sell-side liquidity level) / ATR; live levels are at or
  below this bar's low.
- liq_sweep: -1 a high wicked above buy-side liquidity and closed back below, +1 the mirror
  for sell-side liquidity (0 when an outside bar sweeps both sides).

Definitions (highs; lows are the mirror image, computed by the same code on negated prices):
- Swing high at pivot p: high[p] > every high of the ``swing_left`` bars before it and >= every
  high of the ``swing_right`` bars after it (a flat top pivots on its first bar). Confirmed at
  p + swing_right; dropped once its pivot is more than ``horizon`` bars old.
- Break: a close above the latest confirmed swing high, once per swing. Swings confirmed on a
  bar are in place before that bar's close is compared (a new swing cannot break on its own
  confirmation bar: its high bounds that close). A BOS goes with the trend as it stood on the
  previous bar, or comes from no trend (LuxAlgo's convention); a CHoCH goes against it. Bullish
  and bearish breaks cannot happen on the same bar: an unbroken swing high is above the
  previous close, and an unbroken swing low below it.
- Bullish order block, created at a bullish break: the last down candle (close < open) from the
  broken swing's pivot up to the bar before the break, else (no down candle) the candle with the
  lowest low there (the latest on ties). Zone = that candle's [low, high]. Touched when a later
  low reaches its top; invalidated and dropped when a later close is below its low; dropped
  after ``ob_max_age`` bars; ``ob_capacity`` blocks per side, the oldest dropped when full.
- Buy-side liquidity: formed when a swing high S is confirmed with a finite ATR and at least one
  earlier swing high E within horizon lies within ``liquidity_tolerance_atr`` * ATR of S with no
  swing high between them above max(E, S) (nothing traded above the pair in between). Level = the
  highest of S and those E. Dropped the first time a high trades above it (a sweep if that bar
  closes back below, else a break) or once S is more than ``horizon`` bars old. Members are not
  consumed, so a later swing back at the level forms the pool again.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from slt.domain.features import liquidity_nb, order_blocks_nb
from slt.domain.features.jit import inline_jit, step_jit
from slt.domain.features.liquidity_nb import (
    POOL_WIDTH,
    pools_form_nb,
    pools_nearest_gap_nb,
    pools_reset_nb,
    pools_update_nb,
)
from slt.domain.features.order_blocks_nb import (
    BLOCK_WIDTH,
    CREATED,
    TOP,
    TOUCHED,
    blocks_add_nb,
    blocks_nearest_nb,
    blocks_reset_nb,
    blocks_update_nb,
)
from slt.domain.features.swings_nb import (
    EXT_HIGH,
    EXT_LOW,
    FOUND,
    OPP_HIGH,
    OPP_LOW,
    TRACKER_WIDTH,
    bar_nb,
    high_nb,
    is_swing_nb,
    ring_expire_nb,
    ring_push_nb,
    swing_capacity_nb,
    track_nb,
    track_reset_nb,
    window_put_nb,
)
from slt.domain.series import F64, I64

# Version of this family's values, those of swings_nb, order_blocks_nb and liquidity_nb
# included: bump it when a change alters any of them, never for a refactor that keeps them all
# (the golden-value test tells which; docs/features.md).
FAMILY_VERSION = 1

STRUCTURE_COLUMNS: tuple[str, ...] = (
    "swing_high_dist_atr",
    "swing_low_dist_atr",
    "swing_high_age",
    "swing_low_age",
    "swing_range_pct",
    "premium_discount",
    "trend",
    "bos",
    "choch",
    "bars_since_break",
    "ob_bull_dist_atr",
    "ob_bull_age",
    "ob_bull_touched",
    "ob_bear_dist_atr",
    "ob_bear_age",
    "ob_bear_touched",
    "ob_new",
    "ob_invalidated",
    "liq_buy_dist_atr",
    "liq_sell_dist_atr",
    "liq_sweep",
)
# Output slots; the per-side ones are given for side 0 (highs), side 1 (lows) follows.
_SWING_DIST = 0  # + side
_SWING_AGE = 2  # + side
_RANGE = 4
_PREMIUM = 5
_TREND = 6
_BOS = 7
_CHOCH = 8
_SINCE_BREAK = 9
_OB_DIST = 10  # + 3 * side
_OB_AGE = 11  # + 3 * side
_OB_TOUCHED = 12  # + 3 * side
_OB_NEW = 16
_OB_INVALIDATED = 17
_LIQ_DIST = 18  # + side
_LIQ_SWEEP = 20
_NCOLS = 21

# clock slots: bars since reset, bar and direction of the last break, next window slot
_BARS = 0
_BREAK_BAR = 1
_BREAK_DIR = 2
_SLOT = 3
# latest confirmed swing per side: level (as the side sees it), pivot bar (-1 = none), broken
_LEVEL = 0
_PIVOT = 1
_BROKEN = 2


class StructureParams(NamedTuple):
    swing_left: int = 5
    swing_right: int = 5
    horizon: int = 300
    liquidity_tolerance_atr: float = 0.1
    ob_max_age: int = 300
    ob_capacity: int = 10  # order blocks kept per side


class StructureState(NamedTuple):
    window: F64  # (2 * (left + right + 1), 4): open, high, low, close (swings_nb)
    clock: I64  # (4,)
    latest: F64  # (2, 3): latest confirmed swing per side
    tracker: F64  # (2, TRACKER_WIDTH): order-block candidate of the latest swing per side
    swings: F64  # (2, swing capacity, 2): confirmed swings within horizon, ring [level, pivot]
    swing_ring: I64  # (2, 2): ring start, count
    blocks: F64  # (2, ob_capacity, BLOCK_WIDTH): active blocks first, oldest first
    block_summary: F64  # (2, order_blocks_nb.SUMMARY_WIDTH)
    pools: F64  # (2, swing capacity, POOL_WIDTH): active pools first, oldest first
    pool_summary: F64  # (2, liquidity_nb.SUMMARY_WIDTH)


def structure_state(p: StructureParams) -> StructureState:
    """Empty-history state; raises ValueError for parameters the definitions cannot honour."""
    if p.swing_left < 1 or p.swing_right < 1 or p.horizon < p.swing_right:
        raise ValueError("need swing_left >= 1, swing_right >= 1 and horizon >= swing_right")
    if p.ob_max_age < 0 or p.ob_capacity < 1 or not p.liquidity_tolerance_atr >= 0.0:
        raise ValueError("need ob_max_age >= 0, ob_capacity >= 1, liquidity_tolerance_atr >= 0")
    return _new_state_nb(p)


def structure_warmups(p: StructureParams, atr_warmup: int) -> tuple[int, ...]:
    """Bars after which a run started anywhere equals the full run, per column.

    A swing needs ``swing_left`` bars before its pivot and lives ``horizon`` bars; the trend
    remembers a break for ``horizon`` bars, made against a swing of up to ``horizon`` bars;
    BOS/CHoCH read the trend of the previous bar; a block lives ``ob_max_age`` bars after its
    break; a pool lives until its newest swing is ``horizon`` bars old, formed from the swings
    and the ATR of its formation bar, ``swing_right`` bars after that pivot.
    """
    a, k, h, m = p.swing_left, p.swing_right, p.horizon, p.ob_max_age
    swing = a + h
    trend = a + 2 * h
    block = a + h + m
    pool = max(a + h, atr_warmup) + h - k
    by_name = {
        "swing_high_dist_atr": max(swing, atr_warmup),
        "swing_low_dist_atr": max(swing, atr_warmup),
        "swing_high_age": swing,
        "swing_low_age": swing,
        "swing_range_pct": swing,
        "premium_discount": swing,
        "trend": trend,
        "bos": trend + 1,
        "choch": trend + 1,
        "bars_since_break": trend,
        "ob_bull_dist_atr": max(block, atr_warmup),
        "ob_bull_age": block,
        "ob_bull_touched": block,
        "ob_bear_dist_atr": max(block, atr_warmup),
        "ob_bear_age": block,
        "ob_bear_touched": block,
        "ob_new": swing,
        "ob_invalidated": block,
        "liq_buy_dist_atr": pool,
        "liq_sell_dist_atr": pool,
        "liq_sweep": pool,
    }
    return tuple(by_name[name] for name in STRUCTURE_COLUMNS)


@njit(cache=True)
def _new_state_nb(p: StructureParams) -> StructureState:
    cap = swing_capacity_nb(p.swing_left, p.swing_right, p.horizon)
    s = StructureState(
        np.empty((2 * (p.swing_left + p.swing_right + 1), 4)),
        np.empty(4, dtype=np.int64),
        np.empty((2, 3)),
        np.empty((2, TRACKER_WIDTH)),
        np.empty((2, cap, 2)),
        np.empty((2, 2), dtype=np.int64),
        np.empty((2, p.ob_capacity, BLOCK_WIDTH)),
        np.empty((2, order_blocks_nb.SUMMARY_WIDTH)),
        np.empty((2, cap, POOL_WIDTH)),
        np.empty((2, liquidity_nb.SUMMARY_WIDTH)),
    )
    structure_reset_nb(s)
    return s


@step_jit
def structure_reset_nb(s: StructureState) -> None:
    s.window[:] = np.nan
    s.clock[_BARS] = 0
    s.clock[_BREAK_BAR] = -1
    s.clock[_BREAK_DIR] = 0
    s.clock[_SLOT] = 0
    s.latest[:, _LEVEL] = np.nan
    s.latest[:, _PIVOT] = -1.0
    s.latest[:, _BROKEN] = 0.0
    s.swings[:] = np.nan
    s.swing_ring[:] = 0
    for side in range(2):
        track_reset_nb(s.tracker[side])
        blocks_reset_nb(s.blocks[side], s.block_summary[side])
        pools_reset_nb(s.pools[side], s.pool_summary[side])


@inline_jit
def _side_step(
    s: StructureState, p: StructureParams, side: int, t: int, row: int, atr: float, out: F64
) -> tuple[bool, int, int]:
    """Advance one side by bar t (window row ``row``); returns (broke its swing, invalidated a
    block, swept a pool).

    Order: expire, update the blocks and pools made before t, confirm the swing of pivot
    t - right (it forms its pool and replaces the latest swing), then compare the close.
    """
    _, high, low, close = bar_nb(s.window, side, row)
    ring_expire_nb(s.swings[side], s.swing_ring[side], t, p.horizon)
    latest = s.latest[side]
    if latest[_PIVOT] >= 0.0 and t - latest[_PIVOT] > p.horizon:
        latest[_LEVEL] = np.nan
        latest[_PIVOT] = -1.0
    invalidated = blocks_update_nb(
        s.blocks[side], s.block_summary[side], t, low, close, p.ob_max_age
    )
    swept = pools_update_nb(s.pools[side], s.pool_summary[side], t, high, close, p.horizon)

    tracker = s.tracker[side]
    if t >= p.swing_left + p.swing_right and is_swing_nb(
        s.window, side, row, p.swing_left, p.swing_right
    ):
        pivot = t - p.swing_right
        level = high_nb(s.window, side, row - p.swing_right)
        if atr > 0.0:  # no tolerance, no pool while the ATR is missing
            tolerance = p.liquidity_tolerance_atr * atr
            pools_form_nb(
                s.pools[side],
                s.pool_summary[side],
                s.swings[side],
                s.swing_ring[side],
                level,
                pivot,
                tolerance,
            )
        ring_push_nb(s.swings[side], s.swing_ring[side], level, pivot)
        latest[_LEVEL] = level
        latest[_PIVOT] = pivot
        latest[_BROKEN] = 0.0
        track_reset_nb(tracker)
        for j in range(row - p.swing_right, row):
            track_nb(tracker, s.window, side, j)

    broke = latest[_PIVOT] >= 0.0 and latest[_BROKEN] == 0.0 and close > latest[_LEVEL]
    if broke:
        latest[_BROKEN] = 1.0
        summary = s.block_summary[side]
        if tracker[FOUND] == 1.0:
            blocks_add_nb(s.blocks[side], summary, tracker[OPP_HIGH], tracker[OPP_LOW], t)
        else:
            blocks_add_nb(s.blocks[side], summary, tracker[EXT_HIGH], tracker[EXT_LOW], t)
    if latest[_PIVOT] >= 0.0:
        track_nb(tracker, s.window, side, row)

    _write_side(s, side, t, close, atr, out)
    return broke, invalidated, swept


@inline_jit
def _write_side(s: StructureState, side: int, t: int, close: float, atr: float, out: F64) -> None:
    """Distances in the side's own prices, so one formula serves highs and lows."""
    atr_ok = atr > 0.0
    latest = s.latest[side]
    out[_SWING_DIST + side] = np.nan
    out[_SWING_AGE + side] = np.nan
    if latest[_PIVOT] >= 0.0:
        out[_SWING_AGE + side] = t - latest[_PIVOT]
        if atr_ok:
            out[_SWING_DIST + side] = (latest[_LEVEL] - close) / atr

    blocks = s.blocks[side]
    best = blocks_nearest_nb(s.block_summary[side])
    out[_OB_DIST + 3 * side] = np.nan
    out[_OB_AGE + 3 * side] = np.nan
    out[_OB_TOUCHED + 3 * side] = np.nan
    if best >= 0:
        out[_OB_AGE + 3 * side] = t - blocks[best, CREATED]
        out[_OB_TOUCHED + 3 * side] = blocks[best, TOUCHED]
        if atr_ok:
            out[_OB_DIST + 3 * side] = (close - blocks[best, TOP]) / atr

    gap = pools_nearest_gap_nb(s.pool_summary[side], close)
    out[_LIQ_DIST + side] = gap / atr if atr_ok and gap < np.inf else np.nan


@step_jit
def structure_step_nb(
    s: StructureState,
    p: StructureParams,
    o: float,
    h: float,
    low: float,
    c: float,
    v: float,
    atr: float,
    out: F64,
) -> None:
    """One closed candle in, its STRUCTURE_COLUMNS row written to ``out``."""
    t = s.clock[_BARS]
    slot = s.clock[_SLOT]
    row = window_put_nb(s.window, slot, o, h, low, c)
    s.clock[_SLOT] = slot + 1 if 2 * (slot + 1) < s.window.shape[0] else 0
    s.clock[_BARS] = t + 1

    # trend as it stood on the previous bar
    since = t - 1 - s.clock[_BREAK_BAR]
    prior = s.clock[_BREAK_DIR] if s.clock[_BREAK_BAR] >= 0 and since <= p.horizon else 0

    bull, bull_invalid, buy_swept = _side_step(s, p, 0, t, row, atr, out)
    bear, bear_invalid, sell_swept = _side_step(s, p, 1, t, row, atr, out)

    out[_BOS] = 0.0
    out[_CHOCH] = 0.0
    out[_OB_NEW] = 0.0
    if bull or bear:
        direction = 1 if bull else -1
        if prior == -direction:
            out[_CHOCH] = direction
        else:
            out[_BOS] = direction
        out[_OB_NEW] = direction
        s.clock[_BREAK_BAR] = t
        s.clock[_BREAK_DIR] = direction
    since = t - s.clock[_BREAK_BAR]
    recent = s.clock[_BREAK_BAR] >= 0 and since <= p.horizon
    out[_TREND] = s.clock[_BREAK_DIR] if recent else 0.0
    out[_SINCE_BREAK] = since if recent else np.nan
    out[_OB_INVALIDATED] = bull_invalid - bear_invalid
    out[_LIQ_SWEEP] = sell_swept - buy_swept

    swing_high = s.latest[0, _LEVEL]
    swing_low = -s.latest[1, _LEVEL]
    out[_RANGE] = (swing_high - swing_low) / c * 100.0  # NaN when either is missing
    out[_PREMIUM] = (c - swing_low) / (swing_high - swing_low) if swing_high > swing_low else np.nan


@step_jit
def _run_nb(
    s: StructureState,
    p: StructureParams,
    o: F64,
    h: F64,
    low: F64,
    c: F64,
    v: F64,
    atr: F64,
    out: F64,
) -> None:
    """The candle loop, without reference counting (it would cost more than the step)."""
    for i in range(len(c)):
        structure_step_nb(s, p, o[i], h[i], low[i], c[i], v[i], atr[i], out[i])


@njit(cache=True)
def structure_batch_nb(
    o: F64, h: F64, low: F64, c: F64, v: F64, atr: F64, p: StructureParams
) -> F64:
    """The batch path: the streaming step once per candle, from empty history."""
    s = _new_state_nb(p)
    out = np.empty((len(c), _NCOLS))
    _run_nb(s, p, o, h, low, c, v, atr, out)
    return out
