"""Exact aggregation of candles into a higher timeframe, as a numba kernel."""

from __future__ import annotations

import numpy as np
from numba import njit

from slt.domain.series import F64, I64


@njit(cache=True)
def resample_ohlcv_nb(
    times: I64,
    open_: F64,
    high: F64,
    low: F64,
    close: F64,
    volume: F64,
    base_ms: int,
    target_ms: int,
    offset_ms: int,
) -> tuple[I64, F64, F64, F64, F64, F64, I64]:
    """Buckets of ``target_ms`` aligned to ``offset_ms``: open first, high max, low min, close last,
    volume sum. The first bucket is dropped when the data starts after its open, the last when
    its final base candle is absent (it may still be forming). Returns the bucket columns and
    how many base candles each bucket holds.
    """
    n = len(times)
    out_t = np.empty(n, dtype=np.int64)
    out_o = np.empty(n, dtype=np.float64)
    out_h = np.empty(n, dtype=np.float64)
    out_l = np.empty(n, dtype=np.float64)
    out_c = np.empty(n, dtype=np.float64)
    out_v = np.empty(n, dtype=np.float64)
    out_n = np.empty(n, dtype=np.int64)
    k = -1
    current = np.int64(-(2**62))
    for i in range(n):
        bucket = (times[i] - offset_ms) // target_ms * target_ms + offset_ms
        if bucket != current:
            k += 1
            current = bucket
            out_t[k] = bucket
            out_o[k] = open_[i]
            out_h[k] = high[i]
            out_l[k] = low[i]
            out_c[k] = close[i]
            out_v[k] = volume[i]
            out_n[k] = 1
        else:
            if high[i] > out_h[k]:
                out_h[k] = high[i]
            if low[i] < out_l[k]:
                out_l[k] = low[i]
            out_c[k] = close[i]
            out_v[k] += volume[i]
            out_n[k] += 1
    first = 0
    m = k + 1
    if m > 0 and times[0] > out_t[0]:
        first = 1
    if m > first and times[n - 1] + base_ms < out_t[m - 1] + target_ms:
        m -= 1
    if m < first:
        m = first
    return (
        out_t[first:m].copy(),
        out_o[first:m].copy(),
        out_h[first:m].copy(),
        out_l[first:m].copy(),
        out_c[first:m].copy(),
        out_v[first:m].copy(),
        out_n[first:m].copy(),
    )
