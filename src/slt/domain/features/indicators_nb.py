"""Classic indicators as causal step kernels, equal to TA-Lib 0.8 to the last bit.

Every column kernel (``sma_nb`` ... ``realized_vol_nb``) is a loop over a step function that
keeps its state in a float64 array (counters included) and, for windows, a ring buffer; the
family step reuses the same steps, so batch and streaming are one arithmetic. The steps follow
the TA-Lib 0.8.1 library as built (read from its machine code), which differs from the classic
C source: EMA, MACD and ATR update with fused multiply-adds (also in its non-FMA build), ATR
smooths as atr * (n-1)/n + tr * (1 - (n-1)/n), RSI multiplies by 1/n and gives 0 only when
average gain + loss is exactly 0, and VAR/STDDEV/BBANDS sum deviations from a shift that is
re-centred on the window mean when cancellation threatens and at least every 32 periods,
flooring variances below 1e-12 of the mean square to 0. NaN fills the bars before TA-Lib's
first output. sma/ema/rsi/atr/macd/bbands/stddev_nb equal TA-Lib bit for bit.

The family reads its windows (Bollinger, volume, returns) through ``window_exact_step_nb``:
TA-Lib's shifted sums carry rounding from earlier windows (up to ~1e-7 of the variance in flat
markets), which would make a feature depend on where history started. Band width and position
use the deviation directly, as upper - lower rounds at the price's scale.

Columns (scale-free; NaN until every input of the column exists):
- rsi: Wilder RSI of the close, 0..100 (0 when the close has not moved in the whole memory).
- atr_pct: Wilder ATR / close * 100.
- ema_fast_dist_atr: (close - EMA(close, ema_fast)) / ATR.
- ema_slow_dist_atr: (close - EMA(close, ema_slow)) / ATR.
- ema_spread_atr: (EMA(close, ema_fast) - EMA(close, ema_slow)) / ATR.
- macd_atr: MACD line, EMA(close, macd_fast) - EMA(close, macd_slow), / ATR.
- macd_signal_atr: MACD signal line, EMA(MACD line, macd_signal), / ATR.
- macd_hist_atr: (MACD line - signal line) / ATR.
- bb_width_pct: Bollinger width (upper - lower) / middle * 100; middle SMA(close, bb_period),
  bands bb_dev population stddevs away.
- bb_position: (close - lower) / (upper - lower); 0.5 when the band has zero width.
- volume_z: (volume - SMA(volume)) / population stddev(volume) over volume_z_period bars; 0 when
  the stddev is 0.
- realized_vol_pct: population stddev of the last realized_vol_period log returns
  ln(close / previous close), * 100 (% per bar).
- return_atr: (close - previous close) / ATR.
ATR-normalised columns are also NaN while the ATR is 0 (a market with no range has no scale).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple, cast

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

from slt.domain.features.jit import step_jit
from slt.domain.series import F64

# Version of this family's values: bump it when a change alters any value it computes, never
# for a refactor that keeps them all (the golden-value test tells which; docs/features.md).
FAMILY_VERSION = 1

INDICATOR_COLUMNS: tuple[str, ...] = (
    "rsi",
    "atr_pct",
    "ema_fast_dist_atr",
    "ema_slow_dist_atr",
    "ema_spread_atr",
    "macd_atr",
    "macd_signal_atr",
    "macd_hist_atr",
    "bb_width_pct",
    "bb_position",
    "volume_z",
    "realized_vol_pct",
    "return_atr",
)

# State sizes (float64 slots) of the step functions; slot 0 always counts the bars seen.
EMA_SLOTS = 3  # count, seed sum, ema
RSI_SLOTS = 4  # count, previous value, average gain, average loss
ATR_SLOTS = 3  # count, previous close, seed sum then ATR
MACD_SLOTS = 6  # count, slow seed sum, fast seed sum, slow EMA, fast EMA, signal
WINDOW_SLOTS = 7  # count, ring position, raw sum, shift, shifted sum, shifted sum of squares,
# steps left before a forced re-centring

# TA-Lib re-centres the shifted sums when the mean square exceeds 1e6 variances or a leaving
# value's square exceeds 1e6 times the remaining sum, and at least every 32 periods.
_RECENTRE_VAR_RATIO = 1e-6
_RECENTRE_SQUARE_RATIO = 1e6
_RECENTRE_PERIODS = 32
_VAR_FLOOR_RATIO = 1e-12

# Exponential memory counts as gone once its weight is below 1e-12, not 1e-9: a start's seed
# can be off by far more than the column's own scale (an EMA seed some ATRs from the long-run
# EMA, an ATR seeded in a spike), and the column must agree with a longer history to 1e-9.
MEMORY_DECAY = 1e-12


@intrinsic
def _fma_intrinsic(typingctx: Any, a: Any, b: Any, c: Any) -> Any:
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        fn = builder.module.declare_intrinsic("llvm.fma", [args[0].type] * 3)
        return builder.call(fn, args)

    return sig, codegen


# a * b + c with one rounding (LLVM's llvm.fma: the FMA instruction, or libm's exact fma).
_fma = cast(Callable[[float, float, float], float], _fma_intrinsic)

# ---- step functions: one input in, this bar's value out (NaN until it exists). Each reads its
# state slots into locals and writes them back once: loads and stores through the state array
# on every operation would cost more than the arithmetic.


@step_jit
def ema_step_nb(st: F64, x: float, period: int) -> float:
    """EMA seeded by the SMA of the first ``period`` values; k = 2 / (period + 1)."""
    n = st[0]
    if n >= period:
        ema = _fma(2.0 / (period + 1), x - st[2], st[2])
        st[2] = ema
        return ema
    total: float = st[1] + x
    st[0] = n + 1.0
    st[1] = total
    if n + 1.0 < period:
        return np.nan
    ema = total / period
    st[2] = ema
    return ema


@step_jit
def rsi_step_nb(st: F64, x: float, period: int) -> float:
    """Wilder RSI: averages seeded by the mean gain and loss of the first ``period`` changes."""
    n = st[0]
    d = x - st[1]
    st[1] = x
    if n == 0.0:
        st[0] = 1.0
        return np.nan
    up = d if d > 0.0 else 0.0
    inv = 1.0 / period
    if n > period:
        m = float(period - 1)
        gain = (st[2] * m + up) * inv
        loss = ((up - d) + st[3] * m) * inv
    else:
        gain = st[2] + up
        loss = st[3] + (up - d)
        st[0] = n + 1.0
        if n < period:
            st[2] = gain
            st[3] = loss
            return np.nan
        gain *= inv
        loss *= inv
    st[2] = gain
    st[3] = loss
    total = loss + gain
    return gain / total * 100.0 if total > 0.0 else 0.0


@step_jit
def true_range_nb(high: float, low: float, prev_close: float) -> float:
    return max(abs(prev_close - low), max(abs(prev_close - high), high - low))


@step_jit
def atr_step_nb(st: F64, high: float, low: float, close: float, period: int) -> float:
    """Wilder ATR: true ranges from the second bar, seeded by their SMA at bar ``period``."""
    n = st[0]
    tr = true_range_nb(high, low, st[1])
    st[1] = close
    if n > period:
        keep = float(period - 1) / float(period)
        atr = _fma(st[2], keep, tr * (1.0 - keep))
        st[2] = atr
        return atr
    st[0] = n + 1.0
    if n == 0.0:
        return np.nan
    total: float = st[2] + tr
    if n < period:
        st[2] = total
        return np.nan
    atr = total / period
    st[2] = atr
    return atr


@step_jit
def macd_step_nb(
    st: F64, x: float, fast: int, slow: int, signal: int
) -> tuple[float, float, float]:
    """MACD line, signal, histogram; both price EMAs are seeded on bar ``slow - 1``."""
    f = min(fast, slow)
    s = max(fast, slow)
    n = st[0]
    if n >= s:
        fast_ema = _fma(2.0 / (f + 1), x - st[4], st[4])
        slow_ema = _fma(2.0 / (s + 1), x - st[3], st[3])
    else:
        st[1] += x
        if n >= s - f:
            st[2] += x
        if n < s - 1:
            st[0] = n + 1.0
            return np.nan, np.nan, np.nan
        slow_ema = st[1] / s
        fast_ema = st[2] / f
    st[3] = slow_ema
    st[4] = fast_ema
    line = fast_ema - slow_ema
    j = n - (s - 1)  # index of this MACD-line value
    if j >= signal:
        sig = line if signal == 1 else _fma(2.0 / (signal + 1), line - st[5], st[5])
    else:
        sig = (0.0 if j == 0.0 else st[5]) + line
        st[0] = n + 1.0
        if j < signal - 1:
            st[5] = sig
            return np.nan, np.nan, np.nan
        sig = line if signal == 1 else sig / signal
    st[5] = sig
    return line, sig, line - sig


@step_jit
def sma_step_nb(st: F64, ring: F64, x: float) -> float:
    """SMA over len(ring) values as TA-Lib sums it: add the new value, read, drop the oldest."""
    period = len(ring)
    pos = int(st[1])
    total: float = st[2] + x
    ring[pos] = x
    pos = pos + 1 if pos + 1 < period else 0
    st[1] = pos
    if st[0] < period - 1:
        st[0] += 1.0
        st[2] = total
        return np.nan
    st[2] = total - ring[pos]
    return total / period


@step_jit
def _recentre(st: F64, ring: F64, inv: float) -> float:
    """Shift = mean of the window, shifted sums recomputed; returns the variance (floored)."""
    period = len(ring)
    first = int(st[1])  # oldest value of the window
    total = 0.0
    for m in range(period):
        total += ring[first + m - period if first + m >= period else first + m]
    shift = inv * total
    s1 = 0.0
    s2 = 0.0
    for m in range(period):
        d = ring[first + m - period if first + m >= period else first + m] - shift
        s1 += d
        s2 += d * d
    mean_square = inv * s2
    mean = inv * s1
    var = mean_square - mean * mean
    if var < mean_square * _VAR_FLOOR_RATIO:
        var = 0.0
    leaving = ring[first] - shift
    st[3] = shift
    st[4] = s1 - leaving
    st[5] = s2 - leaving * leaving
    st[6] = _RECENTRE_PERIODS * period
    return var


@step_jit
def window_step_nb(st: F64, ring: F64, x: float) -> tuple[float, float]:
    """SMA and population variance over len(ring) values as TA-Lib computes them (BBANDS, VAR).

    The variance keeps rounding from earlier windows through its shift (up to ~1e-7 relative in
    flat markets): fine for matching TA-Lib, not for features (see window_exact_step_nb)."""
    period = len(ring)
    if st[0] == 0.0:
        st[3] = x  # the first value is the first shift
        st[6] = _RECENTRE_PERIODS * period
    shift = st[3]
    mean = sma_step_nb(st, ring, x)
    d = x - shift
    s1 = st[4] + d
    s2 = st[5] + d * d
    if np.isnan(mean):
        st[4] = s1
        st[5] = s2
        return mean, np.nan
    inv = 1.0 / period
    m1 = inv * s1
    var = inv * s2 - m1 * m1
    leaving = ring[int(st[1])] - shift
    left = leaving * leaving
    s2 -= left
    steps = st[6] - 1.0
    if (inv * s2) * _RECENTRE_VAR_RATIO > var or left > s2 * _RECENTRE_SQUARE_RATIO or steps == 0:
        return mean, _recentre(st, ring, inv)
    st[4] = s1 - leaving
    st[5] = s2
    st[6] = steps
    return mean, var


@step_jit
def window_exact_step_nb(st: F64, ring: F64, x: float) -> tuple[float, float, float]:
    """TA-Lib's SMA, then population variance and x - SMA from the window alone.

    Sums of deviations from x itself (x - SMA is at most sqrt(n - 1) stddevs, so no cancellation)
    replace TA-Lib's history-dependent shifted sums and the SMA's ever-running sum: what a
    feature reads then depends on the window only, whatever history came before it."""
    mean = sma_step_nb(st, ring, x)
    if np.isnan(mean):
        return mean, np.nan, np.nan
    s1 = 0.0
    s2 = 0.0
    for value in ring:
        d = value - x
        s1 += d
        s2 += d * d
    inv = 1.0 / len(ring)
    m1 = inv * s1
    return mean, max(inv * s2 - m1 * m1, 0.0), -m1


@step_jit
def _sqrt0(var: float) -> float:
    return 0.0 if var == 0.0 else math.sqrt(var)


@step_jit
def bbands_step_nb(st: F64, ring: F64, x: float, nbdev: float) -> tuple[float, float, float]:
    """Bollinger upper, middle (SMA), lower over len(ring) values, ``nbdev`` deviations."""
    middle, var = window_step_nb(st, ring, x)
    width = nbdev * _sqrt0(var)
    return middle + width, middle, middle - width


@step_jit
def volume_z_step_nb(st: F64, ring: F64, volume: float) -> float:
    """(volume - SMA) / stddev over len(ring) bars; 0 when the window's stddev is 0."""
    _, var, centred = window_exact_step_nb(st, ring, volume)
    std = _sqrt0(var)
    if std > 0.0:
        return centred / std
    return 0.0 if std == 0.0 else np.nan


@step_jit
def realized_vol_step_nb(st: F64, ring: F64, close: float) -> float:
    """Stddev of the last len(ring) log returns * 100; ``st`` has WINDOW_SLOTS + 2 slots."""
    seen = st[WINDOW_SLOTS]
    prev = st[WINDOW_SLOTS + 1]
    st[WINDOW_SLOTS] = 1.0
    st[WINDOW_SLOTS + 1] = close
    if seen == 0.0:
        return np.nan
    return _sqrt0(window_exact_step_nb(st, ring, math.log(close / prev))[1]) * 100.0


# ---- column kernels: loops over the steps. volume_zscore_nb and realized_vol_nb read exact
# windows like the family, so they equal their TA-Lib compositions to rounding, not bit for bit.


@njit(cache=True)
def sma_nb(x: F64, period: int) -> F64:
    st = np.zeros(WINDOW_SLOTS)
    ring = np.zeros(period)
    out = np.empty(len(x))
    for i in range(len(x)):
        out[i] = sma_step_nb(st, ring, x[i])
    return out


@njit(cache=True)
def ema_nb(x: F64, period: int) -> F64:
    st = np.zeros(EMA_SLOTS)
    out = np.empty(len(x))
    for i in range(len(x)):
        out[i] = ema_step_nb(st, x[i], period)
    return out


@njit(cache=True)
def rsi_nb(close: F64, period: int) -> F64:
    st = np.zeros(RSI_SLOTS)
    out = np.empty(len(close))
    for i in range(len(close)):
        out[i] = rsi_step_nb(st, close[i], period)
    return out


@njit(cache=True)
def atr_nb(high: F64, low: F64, close: F64, period: int) -> F64:
    st = np.zeros(ATR_SLOTS)
    out = np.empty(len(close))
    for i in range(len(close)):
        out[i] = atr_step_nb(st, high[i], low[i], close[i], period)
    return out


@njit(cache=True)
def macd_nb(close: F64, fast: int, slow: int, signal: int) -> tuple[F64, F64, F64]:
    st = np.zeros(MACD_SLOTS)
    n = len(close)
    line, sig, hist = np.empty(n), np.empty(n), np.empty(n)
    for i in range(n):
        line[i], sig[i], hist[i] = macd_step_nb(st, close[i], fast, slow, signal)
    return line, sig, hist


@njit(cache=True)
def bbands_nb(x: F64, period: int, nbdev: float) -> tuple[F64, F64, F64]:
    st = np.zeros(WINDOW_SLOTS)
    ring = np.zeros(period)
    n = len(x)
    upper, middle, lower = np.empty(n), np.empty(n), np.empty(n)
    for i in range(n):
        upper[i], middle[i], lower[i] = bbands_step_nb(st, ring, x[i], nbdev)
    return upper, middle, lower


@njit(cache=True)
def stddev_nb(x: F64, period: int) -> F64:
    """Population stddev over ``period`` values (TA-Lib STDDEV with nbdev 1)."""
    st = np.zeros(WINDOW_SLOTS)
    ring = np.zeros(period)
    out = np.empty(len(x))
    for i in range(len(x)):
        out[i] = _sqrt0(window_step_nb(st, ring, x[i])[1])
    return out


@njit(cache=True)
def volume_zscore_nb(volume: F64, period: int) -> F64:
    st = np.zeros(WINDOW_SLOTS)
    ring = np.zeros(period)
    out = np.empty(len(volume))
    for i in range(len(volume)):
        out[i] = volume_z_step_nb(st, ring, volume[i])
    return out


@njit(cache=True)
def realized_vol_nb(close: F64, period: int) -> F64:
    st = np.zeros(WINDOW_SLOTS + 2)
    ring = np.zeros(period)
    out = np.empty(len(close))
    for i in range(len(close)):
        out[i] = realized_vol_step_nb(st, ring, close[i])
    return out


# ---- the family


class IndicatorParams(NamedTuple):
    rsi_period: int = 14
    atr_period: int = 14
    ema_fast: int = 20
    ema_slow: int = 50
    macd_fast: int = 12
    macd_slow: int = 26
    macd_signal: int = 9
    bb_period: int = 20
    bb_dev: float = 2.0
    volume_z_period: int = 20
    realized_vol_period: int = 20


class IndicatorState(NamedTuple):
    rsi: F64
    atr: F64
    ema_fast: F64
    ema_slow: F64
    macd: F64
    bb: F64
    bb_ring: F64
    volume: F64
    volume_ring: F64
    returns: F64  # window slots, then: seen a close, previous close
    returns_ring: F64


@njit(cache=True)
def _new_state_nb(p: IndicatorParams) -> IndicatorState:
    return IndicatorState(
        rsi=np.zeros(RSI_SLOTS),
        atr=np.zeros(ATR_SLOTS),
        ema_fast=np.zeros(EMA_SLOTS),
        ema_slow=np.zeros(EMA_SLOTS),
        macd=np.zeros(MACD_SLOTS),
        bb=np.zeros(WINDOW_SLOTS),
        bb_ring=np.zeros(p.bb_period),
        volume=np.zeros(WINDOW_SLOTS),
        volume_ring=np.zeros(p.volume_z_period),
        returns=np.zeros(WINDOW_SLOTS + 2),
        returns_ring=np.zeros(p.realized_vol_period),
    )


def indicator_state(p: IndicatorParams) -> IndicatorState:
    s: IndicatorState = _new_state_nb(p)
    indicator_reset_nb(s)
    return s


def _decay_warmup(lookback: int, alpha: float) -> int:
    """Bars until exponential memory of weight (1 - alpha) per bar has faded below MEMORY_DECAY."""
    if alpha >= 1.0:
        return lookback
    return lookback + math.ceil(math.log(MEMORY_DECAY) / math.log(1.0 - alpha))


def indicator_warmups(p: IndicatorParams) -> tuple[int, ...]:
    """Per column of INDICATOR_COLUMNS, in bars; ATR-normalised columns wait for the ATR too."""
    atr = _decay_warmup(p.atr_period, 1.0 / p.atr_period)
    fast = _decay_warmup(p.ema_fast - 1, 2.0 / (p.ema_fast + 1))
    slow = _decay_warmup(p.ema_slow - 1, 2.0 / (p.ema_slow + 1))
    mf, ms = sorted((p.macd_fast, p.macd_slow))
    macd = max(
        _decay_warmup(ms - 1, 2.0 / (ms + 1)),
        _decay_warmup(ms - 1, 2.0 / (mf + 1)),
        _decay_warmup(ms + p.macd_signal - 2, 2.0 / (p.macd_signal + 1)),
    )
    return (
        _decay_warmup(p.rsi_period, 1.0 / p.rsi_period),
        atr,
        max(fast, atr),
        max(slow, atr),
        max(fast, slow, atr),
        max(macd, atr),
        max(macd, atr),
        max(macd, atr),
        p.bb_period - 1,
        p.bb_period - 1,
        p.volume_z_period - 1,
        p.realized_vol_period,
        max(1, atr),
    )


@njit(cache=True)
def indicator_reset_nb(s: IndicatorState) -> None:
    """Empty history: every count, sum and ring slot back to 0."""
    for array in s:
        array[:] = 0.0


@step_jit
def indicator_step_nb(
    s: IndicatorState,
    p: IndicatorParams,
    o: float,
    h: float,
    low: float,
    c: float,
    v: float,
    out: F64,
) -> float:
    """One closed candle in, its INDICATOR_COLUMNS row out; returns the ATR in price units
    (NaN until it exists or while it is 0) for the families that measure in ATRs."""
    prev = s.returns[WINDOW_SLOTS + 1] if s.returns[WINDOW_SLOTS] == 1.0 else np.nan
    rsi = rsi_step_nb(s.rsi, c, p.rsi_period)
    atr = atr_step_nb(s.atr, h, low, c, p.atr_period)
    ema_fast = ema_step_nb(s.ema_fast, c, p.ema_fast)
    ema_slow = ema_step_nb(s.ema_slow, c, p.ema_slow)
    line, signal, hist = macd_step_nb(s.macd, c, p.macd_fast, p.macd_slow, p.macd_signal)
    middle, var, centred = window_exact_step_nb(s.bb, s.bb_ring, c)
    volume_z = volume_z_step_nb(s.volume, s.volume_ring, v)
    realized_vol = realized_vol_step_nb(s.returns, s.returns_ring, c)
    unit = atr if atr > 0.0 else np.nan
    half_width = p.bb_dev * _sqrt0(var)  # band edges from the middle, (upper - lower) / 2
    out[0] = rsi
    out[1] = atr / c * 100.0
    out[2] = (c - ema_fast) / unit
    out[3] = (c - ema_slow) / unit
    out[4] = (ema_fast - ema_slow) / unit
    out[5] = line / unit
    out[6] = signal / unit
    out[7] = hist / unit
    out[8] = 2.0 * half_width / middle * 100.0
    if half_width > 0.0:
        out[9] = (centred + half_width) / (2.0 * half_width)
    else:  # zero width: the close sits on the middle band; NaN before the band exists
        out[9] = 0.5 if half_width == 0.0 else np.nan
    out[10] = volume_z
    out[11] = realized_vol
    out[12] = (c - prev) / unit
    return unit


@njit(cache=True)
def indicator_batch_nb(o: F64, h: F64, low: F64, c: F64, v: F64, p: IndicatorParams) -> F64:
    """The family over a whole series from empty history: a loop over ``indicator_step_nb``."""
    s = _new_state_nb(p)
    ncols = len(INDICATOR_COLUMNS)
    out = np.empty((len(c), ncols))
    row = np.empty(ncols)  # one buffer: a view of out per row would cost a refcount per row
    for i in range(len(c)):
        indicator_step_nb(s, p, o[i], h[i], low[i], c[i], v[i], row)
        for k in range(ncols):
            out[i, k] = row[k]
    return out
