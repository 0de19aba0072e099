"""Order-block pool kernels of the structure family, in the prices one side sees (swings_nb).

A record is [top, bottom, creation bar (-1 = free slot), touched]; a fixed number of slots,
the oldest block replaced when all are taken.
"""

from __future__ import annotations

from numba import njit

from slt.domain.series import F64

TOP = 0
BOTTOM = 1
CREATED = 2
TOUCHED = 3
BLOCK_WIDTH = 4


@njit(cache=True)
def blocks_update_nb(blocks: F64, t: int, low: float, close: float, max_age: int) -> int:
    """Age out, invalidate (close below the bottom) or mark touched (low at or below the top)
    the blocks created before bar t; returns 1 if any block was invalidated."""
    invalidated = 0
    for i in range(blocks.shape[0]):
        created = blocks[i, CREATED]
        if created < 0.0:
            continue
        if t - created > max_age:
            blocks[i, CREATED] = -1.0
        elif close < blocks[i, BOTTOM]:
            invalidated = 1
            blocks[i, CREATED] = -1.0
        elif low <= blocks[i, TOP]:
            blocks[i, TOUCHED] = 1.0
    return invalidated


@njit(cache=True)
def blocks_add_nb(blocks: F64, top: float, bottom: float, t: int) -> None:
    slot = 0
    for i in range(blocks.shape[0]):  # a free slot, else the oldest block
        if blocks[i, CREATED] < 0.0:
            slot = i
            break
        if blocks[i, CREATED] < blocks[slot, CREATED]:
            slot = i
    blocks[slot, TOP] = top
    blocks[slot, BOTTOM] = bottom
    blocks[slot, CREATED] = t
    blocks[slot, TOUCHED] = 0.0


@njit(cache=True)
def blocks_nearest_nb(blocks: F64) -> int:
    """Slot of the active block with the highest top (the latest on ties), -1 if none. Every
    active block has its bottom at or below the close, so this is the first one price meets."""
    best = -1
    for i in range(blocks.shape[0]):
        if blocks[i, CREATED] < 0.0:
            continue
        if best < 0 or (blocks[i, TOP], blocks[i, CREATED]) > (
            blocks[best, TOP],
            blocks[best, CREATED],
        ):
            best = i
    return best
