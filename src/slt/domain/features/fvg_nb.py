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

# Version of this family's values: bump it when a change alters any value it computes, never
# for a refactor that keeps them all (the golden-value test tells which; docs/features.md).
FAMILY_VERSION = 1

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
# deepest price since creation (lowest low for bullish, highest high for bearish). Top and
# bottom are slots 0 and 1, so pool[d, k, d] is the edge that faces the price in direction d.
_TOP = 0
_BOTTOM = 1
_EXTREME = 2
# Integer slots: active flag, bar index of creation, bar index of the first touch (-1: none).
# A slot keeps its creation bar after its gap leaves, except that the empty slots above the
# highest active one get -1 ("unused"): the first unused slot ends every scan of the pool.
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
    meta: I64  # (2, capacity, 3): active, created bar (-1: unused), first-touch bar per slot
    clock: I64  # (1,): candles seen since the last reset (index of the next candle)


def fvg_state(p: FvgParams) -> FvgState:
    if p.capacity < 1 or p.max_age < 0:
        raise ValueError(f"FVG pool needs capacity >= 1 and max_age >= 0, got {p}")
    return _new_state_nb(p)


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


@njit(cache=True, inline="always")
def _fill(top: float, bottom: float, extreme: float, bullish: bool) -> float:
    """Share of the gap's height that price has retraced into, in [0, 1]."""
    f = (top - extreme) / (top - bottom) if bullish else (extreme - bottom) / (top - bottom)
    return float(min(max(f, 0.0), 1.0))


@njit(cache=True, inline="always")
def _nearer(dist: float, created: np.int64, best_dist: float, best_created: np.int64) -> bool:
    """Nearest gap order: smaller distance to the close, then the younger gap."""
    return bool(dist < best_dist or (dist == best_dist and created > best_created))


# Speed (143,900 5m candles: ~65 ms with a full scan of both pools per candle, ~11 ms now):
# - the step touches the state only as ``s.x[...]``, passes no array to a helper and has no
#   raise path (error_model="numpy" drops those of float division; no divisor here can be 0).
#   That lets numba prune every reference-count pair: left in, their atomic updates cost more
#   than the step's own work. An array-taking helper or a ``raise`` brings them back (look for
#   NRT_incref in ``fvg_step_nb.inspect_llvm()``);
# - each direction is a closure called with constant arguments: numba inlines it, so each
#   direction gets its own copy of the scan with the direction tests folded away;
# - a scan stops at the first unused slot, and touches, fills and mitigation sit behind one
#   test (is the price at or past the gap's edge?) that few candles pass.
@njit(cache=True, error_model="numpy")
def fvg_step_nb(
    s: FvgState, p: FvgParams, o: float, h: float, low: float, c: float, atr: float, out: F64
) -> None:
    """One closed candle in; its FVG_COLUMNS row written to ``out``."""
    bar = s.clock[0]
    expired = bar - p.max_age  # gaps created before this bar are too old to stay
    atr_ok = np.isfinite(atr) and atr > 0.0
    new_dir = -1  # direction of the gap this candle completes: 0 bullish, 1 bearish, -1 none
    new_top = new_bottom = np.nan
    if bar >= 2:
        high2 = s.prev[0, 1]
        low2 = s.prev[0, 2]
        open1 = s.prev[1, 0]
        close1 = s.prev[1, 3]
        if high2 < low and close1 > open1:
            new_dir, new_top, new_bottom = 0, low, high2
        elif low2 > h and close1 < open1:
            new_dir, new_top, new_bottom = 1, low2, h
    out[0] = 0.0 if new_dir < 0 else (1.0 if new_dir == 0 else -1.0)
    out[1] = (new_top - new_bottom) / atr if new_dir >= 0 and atr_ok else np.nan

    def direction(d: int, bullish: bool, price: float, insert: bool) -> None:
        """Expire, touch, fill and mitigate direction d's gaps created before this candle
        (``price``: the low for bullish gaps, the high for bearish ones), insert this candle's
        gap if ``insert``, and write the direction's columns. The pass over the used slots
        also finds the nearest gap and the first free slot."""
        mitigated = 0
        count = 0
        used = p.capacity  # first unused slot
        free = -1  # first empty slot after this candle's expiries and mitigations
        best = -1  # slot of the nearest gap
        best_dist = np.inf
        best_created = np.int64(-1)
        for k in range(p.capacity):
            created = s.meta[d, k, _CREATED]
            if created < 0:
                used = k
                break
            if s.meta[d, k, _ACTIVE] == 0:
                free = k if free < 0 else free
                continue
            if created < expired:
                s.meta[d, k, _ACTIVE] = 0
                free = k if free < 0 else free
                continue
            edge = s.pool[d, k, d]  # the edge facing the price: top if bullish, else bottom
            # A touch and a new extreme both need the price at or past the edge (the extreme
            # never leaves the zone).
            if price <= edge if bullish else price >= edge:
                if s.meta[d, k, _TOUCHED] < 0:
                    s.meta[d, k, _TOUCHED] = bar
                extreme = s.pool[d, k, _EXTREME]
                if price < extreme if bullish else price > extreme:
                    s.pool[d, k, _EXTREME] = price
                    top = s.pool[d, k, _TOP]
                    bottom = s.pool[d, k, _BOTTOM]
                    if _fill(top, bottom, price, bullish) >= 1.0:
                        s.meta[d, k, _ACTIVE] = 0
                        mitigated += 1
                        free = k if free < 0 else free
                        continue
            count += 1
            dist = abs(c - edge)
            nearer = _nearer(dist, created, best_dist, best_created)
            best = k if nearer else best
            best_dist = dist if nearer else best_dist
            best_created = created if nearer else best_created
        if insert:
            if free < 0 and used < p.capacity:
                free = used
            if free >= 0:
                slot = free
                count += 1
            else:  # a full pool: the oldest gap goes
                slot = 0
                for k in range(1, p.capacity):
                    if s.meta[d, k, _CREATED] < s.meta[d, slot, _CREATED]:
                        slot = k
            used = max(used, slot + 1)
            s.pool[d, slot, _TOP] = new_top
            s.pool[d, slot, _BOTTOM] = new_bottom
            s.pool[d, slot, _EXTREME] = new_top if bullish else new_bottom
            s.meta[d, slot, _ACTIVE] = 1
            s.meta[d, slot, _CREATED] = bar
            s.meta[d, slot, _TOUCHED] = -1
            # The new gap is the youngest, so it wins a tie.
            if abs(c - (new_top if bullish else new_bottom)) <= best_dist:
                best = slot
            elif slot == best:  # the nearest gap was just evicted: look again (all are active)
                best = -1
                best_dist = np.inf
                best_created = np.int64(-1)
                for k in range(p.capacity):
                    created = s.meta[d, k, _CREATED]
                    dist = abs(c - s.pool[d, k, d])
                    if _nearer(dist, created, best_dist, best_created):
                        best = k
                        best_dist = dist
                        best_created = created
        # Empty slots above the highest gap become unused, so the next scan stops earlier.
        while used > 0 and s.meta[d, used - 1, _ACTIVE] == 0:
            used -= 1
            s.meta[d, used, _CREATED] = -1
        j = _DIR_OUT[d]
        out[_COUNT_OUT + d] = float(count)
        out[_MITIGATED_OUT + d] = float(mitigated)
        if best < 0:
            for i in range(j, j + 5):
                out[i] = np.nan
            return
        top = s.pool[d, best, _TOP]
        bottom = s.pool[d, best, _BOTTOM]
        if atr_ok:
            out[j] = (c - top) / atr if bullish else (bottom - c) / atr
            out[j + 1] = (top - bottom) / atr
        else:
            out[j] = np.nan
            out[j + 1] = np.nan
        out[j + 2] = float(bar - s.meta[d, best, _CREATED])
        out[j + 3] = _fill(top, bottom, s.pool[d, best, _EXTREME], bullish)
        out[j + 4] = 1.0 if s.meta[d, best, _TOUCHED] >= 0 else 0.0

    direction(0, True, low, new_dir == 0)
    direction(1, False, h, new_dir == 1)
    for i in range(4):
        s.prev[0, i] = s.prev[1, i]
    s.prev[1, 0] = o
    s.prev[1, 1] = h
    s.prev[1, 2] = low
    s.prev[1, 3] = c
    s.clock[0] = bar + 1


@njit(cache=True)
def _new_state_nb(p: FvgParams) -> FvgState:
    """An empty-history state, for the Python wrapper and the batch alike."""
    s = FvgState(
        prev=np.empty((2, 4), dtype=np.float64),
        pool=np.empty((2, p.capacity, 3), dtype=np.float64),
        meta=np.empty((2, p.capacity, 3), dtype=np.int64),
        clock=np.empty(1, dtype=np.int64),
    )
    fvg_reset_nb(s)
    return s


@njit(cache=True)
def fvg_batch_nb(o: F64, h: F64, low: F64, c: F64, atr: F64, p: FvgParams) -> F64:
    """Rows of FVG_COLUMNS for a gap-free run of candles: the step function in a loop."""
    if p.capacity < 1 or p.max_age < 0:
        raise ValueError("FVG pool needs capacity >= 1 and max_age >= 0")
    n = len(c)
    out = np.empty((n, _NCOLS), dtype=np.float64)
    s = _new_state_nb(p)
    # One scratch row, copied out: a view out[i] per candle would cost two atomic refcounts.
    row = np.empty(_NCOLS, dtype=np.float64)
    for i in range(n):
        fvg_step_nb(s, p, o[i], h[i], low[i], c[i], atr[i], row)
        for j in range(_NCOLS):
            out[i, j] = row[j]
    return out
