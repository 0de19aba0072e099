"""Stop distance per closed candle: a fixed percentage, or a multiple of ATR within bounds.

The step takes one candle at a time (live trading), the batch is a loop over it (backtests),
so both give the same distance to the last bit. NaN while the ATR warms up: no entry there.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from slt.domain.features.indicators_nb import ATR_SLOTS, atr_step_nb
from slt.domain.features.jit import step_jit
from slt.domain.trading.params import StopRule

F64 = npt.NDArray[np.float64]


def stop_state() -> F64:
    return np.zeros(ATR_SLOTS)


@step_jit
def stop_step_nb(state: F64, high: float, low: float, close: float, rule: StopRule) -> float:
    """The stop distance in percent decided at this candle's close."""
    if not rule.atr:
        return rule.stop_loss_pct
    atr = atr_step_nb(state, high, low, close, rule.atr_period)
    pct: float = rule.atr_multiple * atr / close * 100.0
    if not np.isfinite(pct):
        return np.nan
    return min(max(pct, rule.atr_min_pct), rule.atr_max_pct)


@njit(cache=True)
def stop_distances_nb(high: F64, low: F64, close: F64, rule: StopRule) -> F64:
    state = np.zeros(ATR_SLOTS)
    out = np.empty(len(close))
    for i in range(len(close)):
        out[i] = stop_step_nb(state, high[i], low[i], close[i], rule)
    return out
