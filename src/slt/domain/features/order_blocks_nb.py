"""Order-block pool kernels of the structure family, in the prices one side sees (swings_nb).

A record is [top, bottom, creation bar, touched]. The active blocks sit at the front of the
table in creation order (the oldest first), the oldest dropped when all slots are taken. A
small summary per side keeps what a bar needs to know to skip the table: the count, the
nearest block, and the prices at which something would change (any update that changes
nothing is skipped, so the answers are those of a full scan every bar).
Versioned by ``structure_nb.FAMILY_VERSION``.
"""

from __future__ import annotations

import numpy as np

from slt.domain.features.jit import inline_jit, step_jit
from slt.domain.series import F64

TOP = 0
BOTTOM = 1
CREATED = 2
TOUCHED = 3
BLOCK_WIDTH = 4

# summary slots
COUNT = 0  # active blocks, at the front of the table
BEST = 1  # slot of the active block with the highest top (the latest on ties), -1 if none
HIGHEST_BOTTOM = 2  # a close below it invalidates a block
HIGHEST_OPEN_TOP = 3  # highest top of the untouched blocks: a low at or below it touches one
SUMMARY_WIDTH = 4


@step_jit
def blocks_reset_nb(blocks: F64, summary: F64) -> None:
    blocks[:] = np.nan
    summary[COUNT] = 0.0
    summary[BEST] = -1.0
    summary[HIGHEST_BOTTOM] = -np.inf
    summary[HIGHEST_OPEN_TOP] = -np.inf


@step_jit
def _move_nb(blocks: F64, src: int, dst: int) -> None:
    for k in range(BLOCK_WIDTH):
        blocks[dst, k] = blocks[src, k]


@step_jit
def _summarise_nb(blocks: F64, summary: F64, n: int) -> None:
    """Nearest block and change thresholds of the ``n`` active blocks. A side creates at most
    one block per bar, so slot order is strictly creation order: on equal tops, the later slot
    is the latest block."""
    best = -1
    best_top = -np.inf
    highest_bottom = -np.inf
    open_top = -np.inf
    for i in range(n):
        top = blocks[i, TOP]
        if best < 0 or top >= best_top:
            best = i
            best_top = top
        highest_bottom = max(highest_bottom, blocks[i, BOTTOM])
        if blocks[i, TOUCHED] == 0.0:
            open_top = max(open_top, top)
    summary[COUNT] = n
    summary[BEST] = best
    summary[HIGHEST_BOTTOM] = highest_bottom
    summary[HIGHEST_OPEN_TOP] = open_top


@inline_jit
def blocks_update_nb(
    blocks: F64, summary: F64, t: int, low: float, close: float, max_age: int
) -> int:
    """Age out, invalidate (close below the bottom) or mark touched (low at or below the top)
    the blocks created before bar t; returns 1 if any block was invalidated."""
    n = int(summary[COUNT])
    if n == 0:
        return 0
    if (
        t - blocks[0, CREATED] <= max_age  # the oldest is young enough, so are the others
        and not close < summary[HIGHEST_BOTTOM]
        and not low <= summary[HIGHEST_OPEN_TOP]
    ):
        return 0
    invalidated = 0
    kept = 0
    for i in range(n):
        if t - blocks[i, CREATED] > max_age:
            continue
        if close < blocks[i, BOTTOM]:
            invalidated = 1
            continue
        if low <= blocks[i, TOP]:
            blocks[i, TOUCHED] = 1.0
        if kept != i:
            _move_nb(blocks, i, kept)
        kept += 1
    _summarise_nb(blocks, summary, kept)
    return invalidated


@step_jit
def blocks_add_nb(blocks: F64, summary: F64, top: float, bottom: float, t: int) -> None:
    n = int(summary[COUNT])
    if n == blocks.shape[0]:  # full: the oldest block makes room
        n -= 1
        for i in range(n):
            _move_nb(blocks, i + 1, i)
    blocks[n, TOP] = top
    blocks[n, BOTTOM] = bottom
    blocks[n, CREATED] = t
    blocks[n, TOUCHED] = 0.0
    _summarise_nb(blocks, summary, n + 1)


@step_jit
def blocks_nearest_nb(summary: F64) -> int:
    """Slot of the active block with the highest top (the latest on ties), -1 if none. Every
    active block has its bottom at or below the close, so this is the first one price meets."""
    return int(summary[BEST])
