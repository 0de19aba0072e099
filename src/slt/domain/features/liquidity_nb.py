"""Liquidity-pool kernels of the structure family, in the prices one side sees (swings_nb).

A pool record is [level, pivot of its newest swing (-1 = free slot)]. One pool at most per
confirmed swing, so a pool table as large as the swing ring never fills.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from slt.domain.series import F64, I64

LEVEL = 0
NEWEST = 1
POOL_WIDTH = 2


@njit(cache=True)
def pools_update_nb(pools: F64, t: int, high: float, close: float, horizon: int) -> int:
    """Drop pools whose newest swing is older than ``horizon`` and pools a high trades above;
    returns 1 if one of those closed back below its level (a sweep)."""
    swept = 0
    for i in range(pools.shape[0]):
        newest = pools[i, NEWEST]
        if newest < 0.0:
            continue
        if t - newest > horizon:
            pools[i, NEWEST] = -1.0
        elif high > pools[i, LEVEL]:
            if close < pools[i, LEVEL]:
                swept = 1
            pools[i, NEWEST] = -1.0
    return swept


@njit(cache=True)
def pools_form_nb(
    pools: F64, swings: F64, ring: I64, level: float, pivot: int, tolerance: float
) -> None:
    """Pool of a newly confirmed swing with the earlier swings of the ring that lie within
    ``tolerance`` of it with no swing between them above the pair (nothing traded above it in
    between: the highest bar between two swings would itself be a swing). Level = their max."""
    cap = swings.shape[0]
    pool_level = level
    members = 0
    between = -np.inf  # highest swing strictly between the candidate and the new swing
    for m in range(ring[1]):
        e = swings[(ring[0] + ring[1] - 1 - m) % cap, 0]
        if abs(e - level) <= tolerance and between <= max(e, level):
            members += 1
            pool_level = max(pool_level, e)
        between = max(between, e)
    if members == 0:
        return
    slot = 0
    for i in range(pools.shape[0]):  # a free slot, else the oldest (never needed)
        if pools[i, NEWEST] < 0.0:
            slot = i
            break
        if pools[i, NEWEST] < pools[slot, NEWEST]:
            slot = i
    pools[slot, LEVEL] = pool_level
    pools[slot, NEWEST] = pivot


@njit(cache=True)
def pools_nearest_gap_nb(pools: F64, close: float) -> float:
    """Distance from the close up to the lowest active pool (all lie above the last high); inf
    if there is none."""
    gap = np.inf
    for i in range(pools.shape[0]):
        if pools[i, NEWEST] >= 0.0:
            gap = min(gap, pools[i, LEVEL] - close)
    return gap
