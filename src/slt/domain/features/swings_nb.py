"""Swing detection kernels of the structure family: the candle window, pivots, the swing ring.

Prices are read per side: side 0 (highs) sees candles as they are; side 1 (lows) sees them
mirrored (open -> -open, high -> -low, low -> -high, close -> -close), which turns every rule
about lows into the same rule about highs, so both sides run the same code.
"""

from __future__ import annotations

from numba import njit

from slt.domain.series import F64, I64

# order-block candidate tracker, over the latest swing's pivot .. the previous bar
FOUND = 0  # 1 once a (mirrored) down candle was seen
OPP_LOW = 1  # that last down candle's low and high
OPP_HIGH = 2
EXT_LOW = 3  # the candle with the lowest (mirrored) low, the latest on ties
EXT_HIGH = 4
TRACKER_WIDTH = 5


@njit(cache=True)
def swing_capacity_nb(left: int, right: int, horizon: int) -> int:
    """Pivots of one side are more than min(left, right) bars apart (one would bound the other),
    so at most this many confirmed swings have a pivot within ``horizon`` bars."""
    return horizon // (min(left, right) + 1) + 2


@njit(cache=True)
def bar_nb(window: F64, side: int, j: int) -> tuple[float, float, float, float]:
    """Open, high, low, close of bar number ``j`` as side ``side`` sees it."""
    row = window[j % window.shape[0]]
    if side == 0:
        return row[0], row[1], row[2], row[3]
    return -row[0], -row[2], -row[1], -row[3]


@njit(cache=True)
def is_swing_nb(window: F64, side: int, t: int, left: int, right: int) -> bool:
    """Bar t - right is a swing: its high is strictly above the ``left`` highs before it and not
    below the ``right`` highs after it (a flat top pivots on its first bar). Needs t >= left +
    right."""
    pivot = t - right
    level = bar_nb(window, side, pivot)[1]
    for j in range(pivot - left, t + 1):
        other = bar_nb(window, side, j)[1]
        if other > level or (j < pivot and other == level):  # ties count only on the left
            return False
    return True


@njit(cache=True)
def track_reset_nb(tracker: F64) -> None:
    tracker[:] = float("nan")
    tracker[FOUND] = 0.0


@njit(cache=True)
def track_nb(tracker: F64, window: F64, side: int, j: int) -> None:
    """Fold bar j into the order-block candidate: the last down candle and the lowest low."""
    o, h, low, c = bar_nb(window, side, j)
    if c < o:
        tracker[FOUND] = 1.0
        tracker[OPP_LOW] = low
        tracker[OPP_HIGH] = h
    if not low > tracker[EXT_LOW]:  # also true while the tracker is empty (NaN)
        tracker[EXT_LOW] = low
        tracker[EXT_HIGH] = h


@njit(cache=True)
def ring_expire_nb(swings: F64, ring: I64, t: int, horizon: int) -> None:
    """Drop swings whose pivot is more than ``horizon`` bars old (they are in pivot order)."""
    cap = swings.shape[0]
    while ring[1] > 0 and t - swings[ring[0], 1] > horizon:
        ring[0] = (ring[0] + 1) % cap
        ring[1] -= 1


@njit(cache=True)
def ring_push_nb(swings: F64, ring: I64, level: float, pivot: int) -> None:
    cap = swings.shape[0]
    if ring[1] == cap:  # cannot happen with swing_capacity_nb; drop the oldest all the same
        ring[0] = (ring[0] + 1) % cap
        ring[1] -= 1
    i = (ring[0] + ring[1]) % cap
    swings[i, 0] = level
    swings[i, 1] = pivot
    ring[1] += 1
