"""The whole feature row of one base candle: base timeframe plus higher-timeframe context.

Higher-timeframe candles are aggregated from the base candles as they close. A context value
reaches the base row only once the higher candle that produced it has closed, that is on the
base candle whose close time equals the higher candle's close. A gap in the base candles or a
bad candle restarts every timeframe from empty history: indicators bridged across missing data
would look plausible and be wrong.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from slt.domain.features.jit import inline_jit, step_jit
from slt.domain.features.timeframe_nb import (
    TF_NCOLS,
    TfParams,
    TfState,
    tf_reset_nb,
    tf_step_nb,
)
from slt.domain.series import F64, I64

# Version of the multi-timeframe composition: how higher-timeframe candles are formed, when
# their rows reach the base row (here and in timeframe_nb) and when a row is valid. Bump it when
# a change alters any of that, never for a refactor that keeps every value (the golden-value
# test tells which; docs/features.md). Which context columns there are is a parameter.
FAMILY_VERSION = 1

# Why a row is not usable; 0 means valid. Names and texts live in schema.py.
REASON_OK = 0
REASON_WARMUP = 1
REASON_WARMUP_AFTER_RESTART = 2
REASON_BAD_CANDLE = 3
REASON_CONTEXT_WARMUP = 4

# Slots of MtfState.clock.
_LAST_TIME = 0
_HAS_LAST = 1
_BASE_BARS = 2
_RESTARTED = 3

# Slots of MtfState.bucket rows: open time of the forming higher candle, whether it started at
# its first base candle (only such candles are complete), whether one is forming.
_B_OPEN = 0
_B_FROM_START = 1
_B_FORMING = 2


class MtfParams(NamedTuple):
    base: TfParams
    context: tuple[TfParams, ...]  # at least one entry; only the first n_context are used
    n_context: int
    base_tf_ms: int
    base_warmup: int
    context_tf_ms: I64
    context_offset_ms: I64
    context_warmup: I64  # in bars of each context timeframe
    context_select: I64  # (n_context, width): TF column index per output slot, -1 pads
    context_out: I64  # first output column of each context block
    mask_invalid: bool  # write NaN on invalid rows (off only to inspect warm-up values)


class MtfState(NamedTuple):
    base: TfState
    context: tuple[TfState, ...]
    bucket: I64  # (n, 3)
    forming: F64  # (n, 5): open, high, low, close, volume of the forming higher candle
    context_row: F64  # (n, TF_NCOLS): row of the last closed higher candle
    context_bars: I64  # (n,) closed higher candles since the last restart
    clock: I64  # (4,)


@step_jit
def _good_candle(o: float, h: float, low: float, c: float, v: float) -> bool:
    if not (np.isfinite(o) and np.isfinite(h) and np.isfinite(low) and np.isfinite(c)):
        return False
    if not (np.isfinite(v) and v >= 0.0):
        return False
    if o <= 0.0 or h <= 0.0 or low <= 0.0 or c <= 0.0:
        return False
    return low <= min(o, c) and h >= max(o, c)


@step_jit
def mtf_reset_nb(s: MtfState, p: MtfParams) -> None:
    tf_reset_nb(s.base)
    for j in range(p.n_context):
        tf_reset_nb(s.context[j])
    s.bucket[:] = 0
    s.forming[:] = np.nan
    s.context_row[:] = np.nan
    s.context_bars[:] = 0
    s.clock[_HAS_LAST] = 0
    s.clock[_BASE_BARS] = 0


@step_jit
def _fold_nb(
    b: I64,
    f: F64,
    bucket: np.int64,
    t: np.int64,
    o: float,
    h: float,
    low: float,
    c: float,
    v: float,
) -> None:
    """Fold one base candle into the forming higher candle of ``bucket``."""
    if b[_B_FORMING] == 0 or b[_B_OPEN] != bucket:
        b[_B_OPEN] = bucket
        b[_B_FROM_START] = 1 if t == bucket else 0
        b[_B_FORMING] = 1
        f[0] = o
        f[1] = h
        f[2] = low
        f[3] = c
        f[4] = v
    else:
        f[1] = max(f[1], h)
        f[2] = min(f[2], low)
        f[3] = c
        f[4] += v


@inline_jit
def mtf_step_nb(
    s: MtfState,
    p: MtfParams,
    t: np.int64,
    o: float,
    h: float,
    low: float,
    c: float,
    v: float,
    out: F64,
) -> int:
    """One closed base candle in; its full feature row written to ``out``; returns the reason
    code (REASON_OK when the row is valid; invalid rows are all NaN)."""
    clock = s.clock
    if not _good_candle(o, h, low, c, v):
        mtf_reset_nb(s, p)
        clock[_RESTARTED] = 1
        out[:] = np.nan
        return REASON_BAD_CANDLE
    if clock[_HAS_LAST] == 1 and t != clock[_LAST_TIME] + p.base_tf_ms:
        mtf_reset_nb(s, p)
        clock[_RESTARTED] = 1
    clock[_LAST_TIME] = t
    clock[_HAS_LAST] = 1

    tf_step_nb(s.base, p.base, t, o, h, low, c, v, out[:TF_NCOLS])
    row = clock[_BASE_BARS]
    clock[_BASE_BARS] += 1

    context_ready = True
    width = p.context_select.shape[1]
    for j in range(p.n_context):
        tf = p.context_tf_ms[j]
        bucket = (t - p.context_offset_ms[j]) // tf * tf + p.context_offset_ms[j]
        b = s.bucket[j]
        f = s.forming[j]
        _fold_nb(b, f, bucket, t, o, h, low, c, v)
        if t + p.base_tf_ms == bucket + tf:
            # Only a candle that started at its first base candle is complete; the tuple of
            # context states is touched only here, when a higher candle closes.
            if b[_B_FROM_START] == 1:
                tf_step_nb(
                    s.context[j],
                    p.context[j],
                    bucket,
                    f[0],
                    f[1],
                    f[2],
                    f[3],
                    f[4],
                    s.context_row[j],
                )
                s.context_bars[j] += 1
            b[_B_FORMING] = 0
        start = TF_NCOLS + p.context_out[j]
        closed = s.context_bars[j]
        for m in range(width):
            col = p.context_select[j, m]
            if col < 0:
                break
            out[start + m] = s.context_row[j, col] if closed > 0 else np.nan
        if closed - 1 < p.context_warmup[j]:
            context_ready = False

    reason = REASON_OK
    if row < p.base_warmup:
        reason = REASON_WARMUP
    elif not context_ready:
        reason = REASON_CONTEXT_WARMUP
    if reason != REASON_OK:
        if clock[_RESTARTED] == 1:
            reason = REASON_WARMUP_AFTER_RESTART
        if p.mask_invalid:
            out[:] = np.nan
    return reason


@step_jit
def mtf_run_nb(
    s: MtfState,
    p: MtfParams,
    times: I64,
    o: F64,
    h: F64,
    low: F64,
    c: F64,
    v: F64,
    out: F64,
    reasons: np.ndarray,
) -> None:
    """The batch path: the streaming step, once per candle."""
    for i in range(len(times)):
        reasons[i] = mtf_step_nb(s, p, times[i], o[i], h[i], low[i], c[i], v[i], out[i])
