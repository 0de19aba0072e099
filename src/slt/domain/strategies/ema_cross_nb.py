"""EMA cross kernel: a step per close over explicit state, TA-Lib-exact EMAs (seeded by the SMA).

Long on bar i when fast[i] > slow[i] and fast[i-1] <= slow[i-1]; short on the mirror. A NaN
(the EMAs' warm-up, or a NaN close) on bar i or i-1 gives no signal.

``ema_cross_step_nb`` decides one closed candle; the batch ``ema_cross_nb`` is a loop over it,
so a stream fed the same closes gives the same signals bit for bit.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from numba import njit

from slt.domain.features.indicators_nb import EMA_SLOTS, ema_step_nb
from slt.domain.features.jit import inline_jit, step_jit

F64 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int8]

# The EMAs of the bar before, which the crossing test compares with this bar's.
PREVIOUS_EMAS_DT = np.dtype([("fast", np.float64), ("slow", np.float64)])


class EmaCrossKernelParams(NamedTuple):
    fast: int  # EMA periods on closes, 2 <= fast < slow
    slow: int
    score: float  # raw score of every crossover


class EmaCrossState(NamedTuple):
    """Everything the rule remembers between closes."""

    fast_ema: F64  # (EMA_SLOTS,): ema_step_nb's state of the fast EMA
    slow_ema: F64  # (EMA_SLOTS,): the same for the slow EMA
    previous: npt.NDArray[np.void]  # one PREVIOUS_EMAS_DT record; NaN before the first close


@njit(cache=True)
def ema_cross_state_nb() -> EmaCrossState:
    """The state before the first close: empty EMAs, no previous bar."""
    previous = np.empty(1, dtype=PREVIOUS_EMAS_DT)
    previous[0].fast = np.nan
    previous[0].slow = np.nan
    return EmaCrossState(np.zeros(EMA_SLOTS), np.zeros(EMA_SLOTS), previous)


@inline_jit
def ema_cross_step_nb(s: EmaCrossState, close: float, p: EmaCrossKernelParams) -> tuple[int, float]:
    """One closed candle in: its direction (+1 / -1 / 0) and score (``p.score`` or 0)."""
    fast = ema_step_nb(s.fast_ema, close, p.fast)
    slow = ema_step_nb(s.slow_ema, close, p.slow)
    previous = s.previous[0]
    fast_before, slow_before = previous.fast, previous.slow
    previous.fast = fast
    previous.slow = slow
    # Comparisons with NaN are False, so the warm-up (and the first close) never signals.
    if fast > slow and fast_before <= slow_before:
        return 1, p.score
    if fast < slow and fast_before >= slow_before:
        return -1, p.score
    return 0, 0.0


@step_jit
def ema_cross_run_nb(
    s: EmaCrossState, close: F64, p: EmaCrossKernelParams, direction: I8, score: F64
) -> None:
    """The batch path: the step, once per close, into preallocated outputs."""
    for i in range(len(close)):
        direction[i], score[i] = ema_cross_step_nb(s, close[i], p)


@njit(cache=True)
def ema_cross_nb(close: F64, fast: int, slow: int, score: float) -> tuple[I8, F64]:
    """Direction (+1 / -1 / 0) and score (``score`` on a signal, else 0) of every bar."""
    n = len(close)
    direction = np.zeros(n, dtype=np.int8)
    scores = np.zeros(n)
    ema_cross_run_nb(
        ema_cross_state_nb(), close, EmaCrossKernelParams(fast, slow, score), direction, scores
    )
    return direction, scores
