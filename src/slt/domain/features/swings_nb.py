"""Swing detection kernels of the structure family: the candle window, pivots, the swing ring.

Prices are read per side: side 0 (highs) sees candles as they are; side 1 (lows) sees them
mirrored (open -> -open, high -> -low, low -> -high, close -> -close), which turns every rule
about lows into the same rule about highs, so both sides run the same code.

The window holds the last L = left + right + 1 candles twice (rows r and r + L for a bar
stored at r), so the L bars ending at the current one are the contiguous rows ending at
``row`` = r + L: bar t - k is row ``row - k``, with no wrap-around arithmetic per read.
Versioned by ``structure_nb.FAMILY_VERSION``.
"""

from __future__ import annotations

from slt.domain.features.jit import inline_jit, step_jit
from slt.domain.series import F64, I64

# order-block candidate tracker, over the latest swing's pivot .. the previous bar
FOUND = 0  # 1 once a (mirrored) down candle was seen
OPP_LOW = 1  # that last down candle's low and high
OPP_HIGH = 2
EXT_LOW = 3  # the candle with the lowest (mirrored) low, the latest on ties
EXT_HIGH = 4
TRACKER_WIDTH = 5


@step_jit
def swing_capacity_nb(left: int, right: int, horizon: int) -> int:
    """Pivots of one side are more than min(left, right) bars apart (one would bound the other),
    so at most this many confirmed swings have a pivot within ``horizon`` bars."""
    return horizon // (min(left, right) + 1) + 2


@step_jit
def window_put_nb(window: F64, r: int, o: float, h: float, low: float, c: float) -> int:
    """Store a candle at rows r and r + L; returns the row to read it (and its past) from."""
    row: int = r + window.shape[0] // 2
    window[r, 0] = window[row, 0] = o
    window[r, 1] = window[row, 1] = h
    window[r, 2] = window[row, 2] = low
    window[r, 3] = window[row, 3] = c
    return row


@step_jit
def bar_nb(window: F64, side: int, row: int) -> tuple[float, float, float, float]:
    """Open, high, low, close of the bar at ``row`` as side ``side`` sees it."""
    if side == 0:
        return window[row, 0], window[row, 1], window[row, 2], window[row, 3]
    return -window[row, 0], -window[row, 2], -window[row, 1], -window[row, 3]


@step_jit
def high_nb(window: F64, side: int, row: int) -> float:
    high: float = window[row, 1] if side == 0 else -window[row, 2]
    return high


@inline_jit
def is_swing_nb(window: F64, side: int, row: int, left: int, right: int) -> bool:
    """The bar ``right`` rows before ``row`` is a swing: its high is strictly above the ``left``
    highs before it and not below the ``right`` highs after it (a flat top pivots on its first
    bar). Needs ``left + right`` bars before the one at ``row``."""
    pivot = row - right
    level = high_nb(window, side, pivot)
    for j in range(pivot - left, row + 1):
        other = high_nb(window, side, j)
        if other > level or (j < pivot and other == level):  # ties count only on the left
            return False
    return True


@step_jit
def track_reset_nb(tracker: F64) -> None:
    tracker[:] = float("nan")
    tracker[FOUND] = 0.0


@inline_jit
def track_nb(tracker: F64, window: F64, side: int, row: int) -> None:
    """Fold the bar at ``row`` into the order-block candidate: the last down candle and the
    lowest low."""
    o, h, low, c = bar_nb(window, side, row)
    if c < o:
        tracker[FOUND] = 1.0
        tracker[OPP_LOW] = low
        tracker[OPP_HIGH] = h
    if not low > tracker[EXT_LOW]:  # also true while the tracker is empty (NaN)
        tracker[EXT_LOW] = low
        tracker[EXT_HIGH] = h


@step_jit
def ring_expire_nb(swings: F64, ring: I64, t: int, horizon: int) -> None:
    """Drop swings whose pivot is more than ``horizon`` bars old (they are in pivot order)."""
    cap = swings.shape[0]
    while ring[1] > 0 and t - swings[ring[0], 1] > horizon:
        ring[0] = (ring[0] + 1) % cap
        ring[1] -= 1


@step_jit
def ring_push_nb(swings: F64, ring: I64, level: float, pivot: int) -> None:
    cap = swings.shape[0]
    if ring[1] == cap:  # cannot happen with swing_capacity_nb; drop the oldest all the same
        ring[0] = (ring[0] + 1) % cap
        ring[1] -= 1
    i = (ring[0] + ring[1]) % cap
    swings[i, 0] = level
    swings[i, 1] = pivot
    ring[1] += 1
