"""Calendar levels: the previous UTC day's and ISO week's high and low, and the trading session.

A candle opening at t closes at t + tf_ms; at that close, the UTC day (week, from Monday
00:00 UTC) containing t is complete when t + tf_ms is the period's end. The "previous" day at
a candle is the latest complete day whose end <= t + tf_ms, so at the close of a day's last
candle that very day becomes the previous day. A period counts only if it was observed from
its first candle: after a reset the current period is partial and never becomes "previous".
The candle length must divide the period (every Binance timeframe up to 1d divides a day and a
week); otherwise no candle closes exactly at the period's end and its columns stay NaN.
The session is a partition of the UTC day by the hour of the candle's open time.

Columns (NaN = no complete period observed since the last reset, or ATR not known yet):
- prev_day_high_dist_atr: (previous complete UTC day's high - close) / ATR.
- prev_day_low_dist_atr: (close - previous complete UTC day's low) / ATR.
- prev_week_high_dist_atr: (previous complete ISO week's high - close) / ATR (weeks open Monday).
- prev_week_low_dist_atr: (close - previous complete ISO week's low) / ATR (weeks open Monday).
- prev_day_high_dist_pct: (previous complete UTC day's high - close) / close, in percent.
- prev_day_low_dist_pct: (close - previous complete UTC day's low) / close, in percent.
- session: trading session by the UTC hour of the open time: 0 Asia [00, 07), 1 London [07, 12),
  2 New York [12, 20), 3 late US / pre-Asia [20, 24).
- day_of_week: UTC weekday of the open time, 0 = Monday .. 6 = Sunday.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from slt.domain.series import F64, I64
from slt.domain.timeframes import DAY_MS, HOUR_MS, WEEK_MS, WEEK_OFFSET_MS

# Version of this family's values: bump it when a change alters any value it computes, never
# for a refactor that keeps them all (the golden-value test tells which; docs/features.md).
FAMILY_VERSION = 1

LEVELS_COLUMNS: tuple[str, ...] = (
    "prev_day_high_dist_atr",
    "prev_day_low_dist_atr",
    "prev_week_high_dist_atr",
    "prev_week_low_dist_atr",
    "prev_day_high_dist_pct",
    "prev_day_low_dist_pct",
    "session",
    "day_of_week",
)
_NCOLS = len(LEVELS_COLUMNS)

# Rows of the state arrays: 0 the UTC day, 1 the ISO week.
_LENGTH_MS = (DAY_MS, WEEK_MS)
_OFFSET_MS = (0, WEEK_OFFSET_MS)
# Float slots: running high and low of the current period, high and low of the previous one.
_HIGH = 0
_LOW = 1
_PREV_HIGH = 2
_PREV_LOW = 3
# Integer slots: index of the current period, observed from its first candle, one is open.
_INDEX = 0
_FROM_START = 1
_OPEN = 2
# Session boundaries in UTC hours (exclusive upper ends of sessions 0, 1, 2).
_LONDON_HOUR = 7
_NEW_YORK_HOUR = 12
_LATE_HOUR = 20


class LevelsParams(NamedTuple):
    tf_ms: int = 300_000  # length of the candles fed to the step (dividing a day)


class LevelsState(NamedTuple):
    hilo: F64  # (2, 4): high, low of the current period; high, low of the previous complete one
    period: I64  # (2, 3): current period index, observed from its first candle, one is open


def levels_state(p: LevelsParams) -> LevelsState:
    if p.tf_ms <= 0:
        raise ValueError(f"calendar levels need a positive candle length, got tf_ms={p.tf_ms}")
    return _new_state_nb()


def levels_warmups(p: LevelsParams) -> tuple[int, ...]:
    """From any start, one whole day (week) is complete within two days (weeks) of candles."""
    day = math.ceil(2 * DAY_MS / p.tf_ms)
    week = math.ceil(2 * WEEK_MS / p.tf_ms)
    return (day, day, week, week, day, day, 0, 0)


@njit(cache=True)
def levels_reset_nb(s: LevelsState) -> None:
    s.hilo[:] = np.nan
    s.period[:] = 0


# Speed (143,900 5m candles: ~22 ms before, ~2 ms now): the step touches the state only as
# ``s.x[...]``, passes no array to a helper and has no raise path (error_model="numpy": a zero
# close, which the input contract rules out, would give inf rather than raise), so numba prunes
# every reference-count pair; and the period index takes a division only when a period starts.
@njit(cache=True, error_model="numpy")
def levels_step_nb(
    s: LevelsState,
    p: LevelsParams,
    time_ms: np.int64,
    h: float,
    low: float,
    c: float,
    atr: float,
    out: F64,
) -> None:
    """One closed candle (open time ``time_ms``) in; its LEVELS_COLUMNS row written to ``out``.

    Per period row (day, week): fold the candle into the open period, or start a new one; at the
    period's last close, promote it to "previous". The period index is found by a division only
    when a period starts; otherwise the candle is checked against the open period's bounds."""
    for r in range(2):
        length = _LENGTH_MS[r]
        offset = _OFFSET_MS[r]
        start = s.period[r, _INDEX] * length + offset
        if s.period[r, _OPEN] == 0 or time_ms < start or time_ms >= start + length:
            index = (time_ms - offset) // length
            start = index * length + offset
            s.period[r, _INDEX] = index
            s.period[r, _FROM_START] = 1 if time_ms == start else 0
            s.period[r, _OPEN] = 1
            s.hilo[r, _HIGH] = h
            s.hilo[r, _LOW] = low
        else:
            s.hilo[r, _HIGH] = max(s.hilo[r, _HIGH], h)
            s.hilo[r, _LOW] = min(s.hilo[r, _LOW], low)
        if time_ms + p.tf_ms == start + length:
            if s.period[r, _FROM_START] == 1:
                s.hilo[r, _PREV_HIGH] = s.hilo[r, _HIGH]
                s.hilo[r, _PREV_LOW] = s.hilo[r, _LOW]
            s.period[r, _OPEN] = 0
    day_high = s.hilo[0, _PREV_HIGH]
    day_low = s.hilo[0, _PREV_LOW]
    if np.isfinite(atr) and atr > 0.0:
        out[0] = (day_high - c) / atr
        out[1] = (c - day_low) / atr
        out[2] = (s.hilo[1, _PREV_HIGH] - c) / atr
        out[3] = (c - s.hilo[1, _PREV_LOW]) / atr
    else:
        for i in range(4):
            out[i] = np.nan
    out[4] = (day_high - c) / c * 100.0
    out[5] = (c - day_low) / c * 100.0
    # The day row now holds the day of time_ms: its start gives the time of day without a division.
    day = s.period[0, _INDEX]
    ms_of_day = time_ms - day * DAY_MS
    if ms_of_day < _LONDON_HOUR * HOUR_MS:
        out[6] = 0.0
    elif ms_of_day < _NEW_YORK_HOUR * HOUR_MS:
        out[6] = 1.0
    elif ms_of_day < _LATE_HOUR * HOUR_MS:
        out[6] = 2.0
    else:
        out[6] = 3.0
    # 1970-01-01 (day 0) was a Thursday, weekday 3 when Monday is 0.
    out[7] = float((day + 3) % 7)


@njit(cache=True)
def _new_state_nb() -> LevelsState:
    """An empty-history state, for the Python wrapper and the batch alike."""
    s = LevelsState(
        hilo=np.empty((2, 4), dtype=np.float64), period=np.empty((2, 3), dtype=np.int64)
    )
    levels_reset_nb(s)
    return s


@njit(cache=True)
def levels_batch_nb(time_ms: I64, h: F64, low: F64, c: F64, atr: F64, p: LevelsParams) -> F64:
    """Rows of LEVELS_COLUMNS for a gap-free run of candles: the step function in a loop."""
    n = len(c)
    out = np.empty((n, _NCOLS), dtype=np.float64)
    s = _new_state_nb()
    # One scratch row, copied out: a view out[i] per candle would cost two atomic refcounts.
    row = np.empty(_NCOLS, dtype=np.float64)
    for i in range(n):
        levels_step_nb(s, p, time_ms[i], h[i], low[i], c[i], atr[i], row)
        for j in range(_NCOLS):
            out[i, j] = row[j]
    return out
