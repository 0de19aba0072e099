"""Liquidity-pool kernels of the structure family, in the prices one side sees (swings_nb).

A pool record is [level, pivot of its newest swing]. The active pools sit at the front of the
table in creation order, which is also the order of their newest pivots. One pool at most per
confirmed swing, so a pool table as large as the swing ring never fills. A summary per side
keeps the count and the lowest level: a bar whose high stays at or below it and whose oldest
pool is young enough changes nothing, so the table is scanned only when a pool goes.
Versioned by ``structure_nb.FAMILY_VERSION``.
"""

from __future__ import annotations

import numpy as np

from slt.domain.features.jit import inline_jit, step_jit
from slt.domain.series import F64, I64

LEVEL = 0
NEWEST = 1
POOL_WIDTH = 2

# summary slots
COUNT = 0  # active pools, at the front of the table
LOWEST = 1  # their lowest level, inf if none
SUMMARY_WIDTH = 2


@step_jit
def pools_reset_nb(pools: F64, summary: F64) -> None:
    pools[:] = np.nan
    summary[COUNT] = 0.0
    summary[LOWEST] = np.inf


@inline_jit
def pools_update_nb(
    pools: F64, summary: F64, t: int, high: float, close: float, horizon: int
) -> int:
    """Drop pools whose newest swing is older than ``horizon`` and pools a high trades above;
    returns 1 if one of those closed back below its level (a sweep)."""
    n = int(summary[COUNT])
    if n == 0 or (t - pools[0, NEWEST] <= horizon and not high > summary[LOWEST]):
        return 0
    swept = 0
    kept = 0
    lowest = np.inf
    for i in range(n):
        level = pools[i, LEVEL]
        if t - pools[i, NEWEST] > horizon:
            continue
        if high > level:
            if close < level:
                swept = 1
            continue
        if kept != i:
            pools[kept, LEVEL] = level
            pools[kept, NEWEST] = pools[i, NEWEST]
        lowest = min(lowest, level)
        kept += 1
    summary[COUNT] = kept
    summary[LOWEST] = lowest
    return swept


@step_jit
def pools_form_nb(
    pools: F64,
    summary: F64,
    swings: F64,
    ring: I64,
    level: float,
    pivot: int,
    tolerance: float,
) -> None:
    """Pool of a newly confirmed swing with the earlier swings of the ring that lie within
    ``tolerance`` of it with no swing between them above the pair (nothing traded above it in
    between: the highest bar between two swings would itself be a swing). Level = their max."""
    cap = swings.shape[0]
    pool_level = level
    members = 0
    between = -np.inf  # highest swing strictly between the candidate and the new swing
    for m in range(ring[1]):
        if between - level > tolerance:
            # a member must reach ``between``, which is already out of tolerance
            break
        e = swings[(ring[0] + ring[1] - 1 - m) % cap, 0]
        if abs(e - level) <= tolerance and between <= max(e, level):
            members += 1
            pool_level = max(pool_level, e)
        between = max(between, e)
    if members == 0:
        return
    n = int(summary[COUNT])
    lowest = summary[LOWEST]
    if n == pools.shape[0]:  # never needed; drop the oldest all the same
        n -= 1
        lowest = np.inf
        for i in range(n):
            pools[i, LEVEL] = pools[i + 1, LEVEL]
            pools[i, NEWEST] = pools[i + 1, NEWEST]
            lowest = min(lowest, pools[i, LEVEL])
    pools[n, LEVEL] = pool_level
    pools[n, NEWEST] = pivot
    summary[COUNT] = n + 1
    summary[LOWEST] = min(lowest, pool_level)


@step_jit
def pools_nearest_gap_nb(summary: F64, close: float) -> float:
    """Distance from the close up to the lowest active pool (all lie above the last high); inf
    if there is none. Rounding is monotone, so this is the smallest of the pools' gaps."""
    if summary[COUNT] == 0.0:
        return np.inf
    gap: float = summary[LOWEST] - close
    return gap
