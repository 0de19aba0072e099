"""EMA cross kernel: one pass over the closes, TA-Lib-exact EMAs (seeded by the SMA).

Long on bar i when fast[i] > slow[i] and fast[i-1] <= slow[i-1]; short on the mirror. A NaN
(the EMAs' warm-up, or a NaN close) on bar i or i-1 gives no signal.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from slt.domain.features.indicators_nb import ema_nb

F64 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int8]


@njit(cache=True)
def ema_cross_nb(close: F64, fast: int, slow: int, score: float) -> tuple[I8, F64]:
    """Direction (+1 / -1 / 0) and score (``score`` on a signal, else 0) of every bar."""
    n = len(close)
    fast_ema = ema_nb(close, fast)
    slow_ema = ema_nb(close, slow)
    direction = np.zeros(n, dtype=np.int8)
    scores = np.zeros(n)
    for i in range(1, n):
        f0, s0, f1, s1 = fast_ema[i - 1], slow_ema[i - 1], fast_ema[i], slow_ema[i]
        # Comparisons with NaN are False, so the warm-up never signals.
        if f1 > s1 and f0 <= s0:
            direction[i] = 1
            scores[i] = score
        elif f1 < s1 and f0 >= s0:
            direction[i] = -1
            scores[i] = score
    return direction, scores
