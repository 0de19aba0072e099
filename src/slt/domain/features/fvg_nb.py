"""Fair value gaps: three-candle imbalances, created when knowable and tracked until filled.

A gap is created at the close of the THIRD candle i of a pattern (the same gaps as
smartmoneyconcepts 0.0.27 ``smc.fvg``, which stamps them at the middle candle i-1):
bullish when high[i-2] < low[i] and close[i-1] > open[i-1] (zone high[i-2] .. low[i]);
bearish when low[i-2] > high[i] and close[i-1] < open[i-1] (zone high[i] .. low[i-2]).
From the next candle on, a bullish gap is touched by a low <= its top and filled by the lowest
low since creation; it is fully mitigated (and leaves the pool, counted as an event) when the
fill reaches 1. Bearish gaps mirror this with highs. A gap also leaves the pool, without an
event, after ``max_age`` bars, or when its direction's pool of ``capacity`` gaps is full and a
new gap arrives (the oldest goes). "Nearest" gap = the active gap whose edge facing the price
(bullish: top, bearish: bottom) is closest to the close; on a tie, the younger one.

Columns (NaN = no such gap, or ATR not known yet; age, fill, touched and counts ignore ATR):
- fvg_new: +1 a bullish gap was created at this candle (its third), -1 a bearish one, 0 none.
- fvg_new_size_atr: (top - bottom) / ATR of the gap created at this candle; NaN if none.
- fvg_bull_dist_atr: (close - top) / ATR of the nearest active bullish gap (> 0: price above it).
- fvg_bull_size_atr: (top - bottom) / ATR of the nearest active bullish gap.
- fvg_bull_age: candles since the nearest active bullish gap was created (0 at its third candle).
- fvg_bull_fill: nearest active bullish gap, (top - lowest low since creation) / (top - bottom),
  clipped to [0, 1].
- fvg_bull_touched: 1 if a low after creation reached the nearest active bullish gap's top, else 0.
- fvg_bear_dist_atr: (bottom - close) / ATR of the nearest active bearish gap (> 0: price below it).
- fvg_bear_size_atr: (top - bottom) / ATR of the nearest active bearish gap.
- fvg_bear_age: candles since the nearest active bearish gap was created (0 at its third candle).
- fvg_bear_fill: nearest active bearish gap, (highest high since creation - bottom) /
  (top - bottom), clipped to [0, 1].
- fvg_bear_touched: 1 if a high after creation reached the nearest active bearish gap's bottom,
  else 0.
- fvg_bull_count: bullish gaps in the pool after this candle.
- fvg_bear_count: bearish gaps in the pool after this candle.
- fvg_bull_mitigated: bullish gaps fully filled (mitigated) at this candle.
- fvg_bear_mitigated: bearish gaps fully filled (mitigated) at this candle.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from slt.domain.series import F64, I64

FVG_COLUMNS: tuple[str, ...] = (
    "fvg_new",
    "fvg_new_size_atr",
    "fvg_bull_dist_atr",
    "fvg_bull_size_atr",
    "fvg_bull_age",
    "fvg_bull_fill",
    "fvg_bull_touched",
    "fvg_bear_dist_atr",
    "fvg_bear_size_atr",
    "fvg_bear_age",
    "fvg_bear_fill",
    "fvg_bear_touched",
    "fvg_bull_count",
    "fvg_bear_count",
    "fvg_bull_mitigated",
    "fvg_bear_mitigated",
)

_NCOLS = len(FVG_COLUMNS)
# Pool rows: direction 0 bullish, 1 bearish. Float slots: zone top, zone bottom, and the
# deepest price since creation (lowest low for bullish, highest high for bearish).
_TOP = 0
_BOTTOM = 1
_EXTREME = 2
# Integer slots: active flag, bar index of creation, bar index of the first touch (-1: none).
_ACTIVE = 0
_CREATED = 1
_TOUCHED = 2
# Output offsets of the five per-direction columns.
_DIR_OUT = (2, 7)
_COUNT_OUT = 12
_MITIGATED_OUT = 14


class FvgParams(NamedTuple):
    max_age: int = 500  # bars a gap stays in the pool at most
    capacity: int = 32  # gaps kept per direction; the oldest goes when a new one arrives


class FvgState(NamedTuple):
    prev: F64  # (2, 4): open, high, low, close of the two previous candles, older first
    pool: F64  # (2, capacity, 3): top, bottom, extreme per direction and slot
    meta: I64  # (2, capacity, 3): active, created bar, first-touch bar per direction and slot
    clock: I64  # (1,): candles seen since the last reset (index of the next candle)


def fvg_state(p: FvgParams) -> FvgState:
    if p.capacity < 1 or p.max_age < 0:
        raise ValueError(f"FVG pool needs capacity >= 1 and max_age >= 0, got {p}")
    s = FvgState(
        prev=np.empty((2, 4), dtype=np.float64),
        pool=np.empty((2, p.capacity, 3), dtype=np.float64),
        meta=np.empty((2, p.capacity, 3), dtype=np.int64),
        clock=np.empty(1, dtype=np.int64),
    )
    fvg_reset_nb(s)
    return s


def fvg_warmups(p: FvgParams) -> tuple[int, ...]:
    """Creation needs two earlier candles; a pool holds gaps created in the last max_age bars,
    so after max_age + 2 bars it no longer depends on where the history started (ATR aside)."""
    pool = p.max_age + 2
    return (2, 2) + (pool,) * (len(FVG_COLUMNS) - 2)


@njit(cache=True)
def fvg_reset_nb(s: FvgState) -> None:
    s.prev[:] = np.nan
    s.pool[:] = np.nan
    s.meta[:, :, _ACTIVE] = 0
    s.meta[:, :, _CREATED] = -1
    s.meta[:, :, _TOUCHED] = -1
    s.clock[0] = 0


@njit(cache=True)
def _fill(pool: F64, d: int, k: int) -> float:
    """Share of the gap's height that price has retraced into, in [0, 1]."""
    top = pool[d, k, _TOP]
    bottom = pool[d, k, _BOTTOM]
    if d == 0:
        f = (top - pool[d, k, _EXTREME]) / (top - bottom)
    else:
        f = (pool[d, k, _EXTREME] - bottom) / (top - bottom)
    return float(min(max(f, 0.0), 1.0))


@njit(cache=True)
def _update_pool(s: FvgState, p: FvgParams, bar: np.int64, h: float, low: float, out: F64) -> None:
    """Age out, touch, fill and mitigate the gaps created before this candle; count the
    mitigations. Expiry comes first: a gap past max_age is gone before this candle's price."""
    pool = s.pool
    meta = s.meta
    for d in range(2):
        mitigated = 0
        for k in range(p.capacity):
            if meta[d, k, _ACTIVE] == 0:
                continue
            if bar - meta[d, k, _CREATED] > p.max_age:
                meta[d, k, _ACTIVE] = 0
                continue
            if d == 0:
                if low <= pool[d, k, _TOP] and meta[d, k, _TOUCHED] < 0:
                    meta[d, k, _TOUCHED] = bar
                pool[d, k, _EXTREME] = min(pool[d, k, _EXTREME], low)
            else:
                if h >= pool[d, k, _BOTTOM] and meta[d, k, _TOUCHED] < 0:
                    meta[d, k, _TOUCHED] = bar
                pool[d, k, _EXTREME] = max(pool[d, k, _EXTREME], h)
            if _fill(pool, d, k) >= 1.0:
                meta[d, k, _ACTIVE] = 0
                mitigated += 1
        out[_MITIGATED_OUT + d] = float(mitigated)


@njit(cache=True)
def _insert(s: FvgState, p: FvgParams, d: int, bar: np.int64, top: float, bottom: float) -> None:
    """Put a new gap in a free slot, or over the oldest gap when the pool is full."""
    slot = -1
    oldest = bar + 1
    for k in range(p.capacity):
        if s.meta[d, k, _ACTIVE] == 0:
            slot = k
            break
        if s.meta[d, k, _CREATED] < oldest:
            oldest = s.meta[d, k, _CREATED]
            slot = k
    s.pool[d, slot, _TOP] = top
    s.pool[d, slot, _BOTTOM] = bottom
    s.pool[d, slot, _EXTREME] = top if d == 0 else bottom
    s.meta[d, slot, _ACTIVE] = 1
    s.meta[d, slot, _CREATED] = bar
    s.meta[d, slot, _TOUCHED] = -1


@njit(cache=True)
def _write_nearest(
    s: FvgState, p: FvgParams, d: int, bar: np.int64, c: float, atr_ok: bool, atr: float, out: F64
) -> int:
    """Write the five columns of direction d's nearest gap; returns its active count."""
    best = -1
    best_dist = np.inf
    count = 0
    for k in range(p.capacity):
        if s.meta[d, k, _ACTIVE] == 0:
            continue
        count += 1
        edge = s.pool[d, k, _TOP] if d == 0 else s.pool[d, k, _BOTTOM]
        dist = abs(c - edge)
        created = s.meta[d, k, _CREATED]
        if dist < best_dist or (dist == best_dist and created > s.meta[d, best, _CREATED]):
            best = k
            best_dist = dist
    j = _DIR_OUT[d]
    if best < 0:
        for i in range(j, j + 5):
            out[i] = np.nan
        return count
    top = s.pool[d, best, _TOP]
    bottom = s.pool[d, best, _BOTTOM]
    if atr_ok:
        out[j] = (c - top) / atr if d == 0 else (bottom - c) / atr
        out[j + 1] = (top - bottom) / atr
    else:
        out[j] = np.nan
        out[j + 1] = np.nan
    out[j + 2] = float(bar - s.meta[d, best, _CREATED])
    out[j + 3] = _fill(s.pool, d, best)
    out[j + 4] = 1.0 if s.meta[d, best, _TOUCHED] >= 0 else 0.0
    return count


@njit(cache=True)
def fvg_step_nb(
    s: FvgState, p: FvgParams, o: float, h: float, low: float, c: float, atr: float, out: F64
) -> None:
    """One closed candle in; its FVG_COLUMNS row written to ``out``."""
    bar = s.clock[0]
    _update_pool(s, p, bar, h, low, out)
    atr_ok = np.isfinite(atr) and atr > 0.0
    out[0] = 0.0
    out[1] = np.nan
    if bar >= 2:
        high2 = s.prev[0, 1]
        low2 = s.prev[0, 2]
        open1 = s.prev[1, 0]
        close1 = s.prev[1, 3]
        if high2 < low and close1 > open1:
            _insert(s, p, 0, bar, low, high2)
            out[0] = 1.0
            out[1] = (low - high2) / atr if atr_ok else np.nan
        elif low2 > h and close1 < open1:
            _insert(s, p, 1, bar, low2, h)
            out[0] = -1.0
            out[1] = (low2 - h) / atr if atr_ok else np.nan
    for d in range(2):
        out[_COUNT_OUT + d] = float(_write_nearest(s, p, d, bar, c, atr_ok, atr, out))
    s.prev[0, :] = s.prev[1, :]
    s.prev[1, 0] = o
    s.prev[1, 1] = h
    s.prev[1, 2] = low
    s.prev[1, 3] = c
    s.clock[0] = bar + 1


@njit(cache=True)
def fvg_batch_nb(o: F64, h: F64, low: F64, c: F64, atr: F64, p: FvgParams) -> F64:
    """Rows of FVG_COLUMNS for a gap-free run of candles: the step function in a loop."""
    if p.capacity < 1 or p.max_age < 0:
        raise ValueError("FVG pool needs capacity >= 1 and max_age >= 0")
    n = len(c)
    out = np.empty((n, _NCOLS), dtype=np.float64)
    s = FvgState(
        prev=np.empty((2, 4), dtype=np.float64),
        pool=np.empty((2, p.capacity, 3), dtype=np.float64),
        meta=np.empty((2, p.capacity, 3), dtype=np.int64),
        clock=np.empty(1, dtype=np.int64),
    )
    fvg_reset_nb(s)
    for i in range(n):
        fvg_step_nb(s, p, o[i], h[i], low[i], c[i], atr[i], out[i])
    return out
