"""Our fair value gaps and calendar levels against smartmoneyconcepts 0.0.27 on the full CATMAN
BTC and ETH 5m files: where they agree exactly, and every place they differ, with the reason.

smc is a research library that computes on the whole frame at once; the differences pinned here
are the ones a causal, per-candle engine must not copy (see docs/features.md, "Peers").
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
from numba import njit
from smartmoneyconcepts import smc

from slt.adapters.importers.readers import RawRows
from slt.domain.features.fvg_nb import FvgParams, FvgState, fvg_reset_nb, fvg_step_nb
from slt.domain.features.levels_nb import (
    LEVELS_COLUMNS,
    LevelsParams,
    LevelsState,
    levels_batch_nb,
    levels_reset_nb,
    levels_step_nb,
)
from slt.domain.series import F64, I64
from slt.domain.timeframes import DAY_MS, MINUTE_MS, WEEK_MS
from tests.conftest import CATMAN_BTC_5M, CATMAN_ETH_5M, real_ohlcv

pytestmark = pytest.mark.shared_data

TF_MS = 5 * MINUTE_MS
DAY_BARS = DAY_MS // TF_MS
WEEK_BARS = WEEK_MS // TF_MS
MAX_AGE = FvgParams().max_age
# A pool with more slots than a gap can live bars never evicts: every gap's whole life is seen.
UNBOUNDED = FvgParams(max_age=MAX_AGE, capacity=MAX_AGE + 1)
FILES = {"btc": CATMAN_BTC_5M, "eth": CATMAN_ETH_5M}


@cache
def _rows(name: str) -> RawRows:
    return real_ohlcv(FILES[name])


def _frame(rows: RawRows, indexed_by_time: bool) -> pd.DataFrame:
    columns = {
        "open": rows.open,
        "high": rows.high,
        "low": rows.low,
        "close": rows.close,
        "volume": rows.volume,
    }
    index = pd.to_datetime(rows.times_ms, unit="ms") if indexed_by_time else None
    return pd.DataFrame(columns, index=index)


@cache
def _smc_fvg(name: str) -> pd.DataFrame:
    return smc.fvg(_frame(_rows(name), indexed_by_time=False))


@njit(cache=True)
def _gap_log(o: F64, h: F64, low: F64, c: F64, p: FvgParams) -> tuple[I64, I64, F64, F64, I64]:
    """Every gap the step creates: bar, direction (+1/-1), top, bottom, read from its state, and
    the bar of its first touch (-1 if it left the pool untouched). Needs capacity > max_age."""
    n = len(c)
    s = FvgState(
        prev=np.empty((2, 4)),
        pool=np.empty((2, p.capacity, 3)),
        meta=np.empty((2, p.capacity, 3), dtype=np.int64),
        clock=np.empty(1, dtype=np.int64),
    )
    fvg_reset_nb(s)
    row = np.empty(16)
    bars = np.empty(n, dtype=np.int64)
    dirs = np.empty(n, dtype=np.int64)
    tops = np.empty(n)
    bottoms = np.empty(n)
    touch = np.full(n, -1, dtype=np.int64)
    slot_gap = np.full((2, p.capacity), -1, dtype=np.int64)
    m = 0
    for t in range(n):
        fvg_step_nb(s, p, o[t], h[t], low[t], c[t], np.nan, row)
        for d in range(2):
            for k in range(p.capacity):
                g = slot_gap[d, k]
                if g >= 0 and touch[g] < 0:
                    if s.meta[d, k, 1] == bars[g]:
                        touch[g] = s.meta[d, k, 2]
                    elif t - bars[g] <= p.max_age:
                        touch[g] = t  # filled at t and its slot reused at once: touched at t
                if s.meta[d, k, 0] == 1 and s.meta[d, k, 1] == t:
                    bars[m] = t
                    dirs[m] = 1 if d == 0 else -1
                    tops[m] = s.pool[d, k, 0]
                    bottoms[m] = s.pool[d, k, 1]
                    slot_gap[d, k] = m
                    m += 1
    return bars[:m], dirs[:m], tops[:m], bottoms[:m], touch[:m]


@cache
def _our_gaps(name: str) -> tuple[I64, I64, F64, F64, I64]:
    r = _rows(name)
    return _gap_log(r.open, r.high, r.low, r.close, UNBOUNDED)


@pytest.mark.parametrize("name", ["btc", "eth"])
def test_every_smc_gap_is_our_gap_one_candle_later_with_the_same_zone(name: str) -> None:
    theirs = _smc_fvg(name)
    bars, dirs, tops, bottoms, _ = _our_gaps(name)
    middle = np.flatnonzero(theirs["FVG"].notna().to_numpy())

    assert np.array_equal(bars, middle + 1)
    assert np.array_equal(dirs, theirs["FVG"].to_numpy()[middle])
    assert np.array_equal(tops, theirs["Top"].to_numpy()[middle])
    assert np.array_equal(bottoms, theirs["Bottom"].to_numpy()[middle])
    assert len(bars) > 30_000


@pytest.mark.parametrize("name", ["btc", "eth"])
def test_smc_mitigation_is_our_first_touch_while_the_gap_is_at_most_max_age_old(
    name: str,
) -> None:
    theirs = _smc_fvg(name)
    bars, _, _, _, touch = _our_gaps(name)
    mitigated = theirs["MitigatedIndex"].to_numpy()[bars - 1].astype(np.int64)  # 0 = never

    within = (mitigated > 0) & (mitigated - bars <= MAX_AGE)
    expected = np.where(within, mitigated, -1)

    assert np.array_equal(touch, expected)
    assert within.mean() > 0.95  # nearly every gap is touched within max_age


@pytest.mark.parametrize("name", ["btc", "eth"])
def test_smc_writes_the_future_mitigation_bar_back_on_the_gaps_middle_candle(name: str) -> None:
    theirs = _smc_fvg(name)
    middle = np.flatnonzero(theirs["FVG"].notna().to_numpy())
    mitigated = theirs["MitigatedIndex"].to_numpy()[middle]

    touched = mitigated > 0

    # Known on row j only from candle j + 2 on: a column built from it would read the future.
    assert (mitigated[touched] >= middle[touched] + 2).all()


@njit(cache=True)
def _previous_levels(time_ms: I64, h: F64, low: F64, c: F64, p: LevelsParams) -> F64:
    """Previous day high, low and previous week high, low after each candle, from the state."""
    s = LevelsState(hilo=np.empty((2, 4)), period=np.empty((2, 3), dtype=np.int64))
    levels_reset_nb(s)
    row = np.empty(8)
    out = np.empty((len(c), 4))
    for t in range(len(c)):
        levels_step_nb(s, p, time_ms[t], h[t], low[t], c[t], np.nan, row)
        out[t, 0] = s.hilo[0, 2]
        out[t, 1] = s.hilo[0, 3]
        out[t, 2] = s.hilo[1, 2]
        out[t, 3] = s.hilo[1, 3]
    return out


def _ours_and_smc(name: str, period: str) -> tuple[I64, F64, F64]:
    r = _rows(name)
    ours = _previous_levels(r.times_ms, r.high, r.low, r.close, LevelsParams(tf_ms=TF_MS))
    theirs = smc.previous_high_low(_frame(r, indexed_by_time=True), period)
    pair = ours[:, :2] if period == "1D" else ours[:, 2:]
    return r.times_ms, pair, theirs[["PreviousHigh", "PreviousLow"]].to_numpy()


def _lagged(values: F64, bars: int) -> F64:
    out = np.full_like(values, np.nan)
    out[bars:] = values[:-bars]
    return out


@pytest.mark.parametrize("name", ["btc", "eth"])
def test_smc_previous_day_is_ours_from_00_05_to_23_50_and_a_day_staler_at_00_00_and_23_55(
    name: str,
) -> None:
    times, ours, theirs = _ours_and_smc(name, "1D")
    minute_of_day = times % DAY_MS // MINUTE_MS
    edge = (minute_of_day == 0) | (minute_of_day == 24 * 60 - 5)

    # smc rounds its levels to float32; so do we before comparing.
    expected = np.where(edge[:, None], _lagged(ours, DAY_BARS), ours).astype(np.float32)

    assert np.array_equal(theirs, expected, equal_nan=True)
    assert np.isfinite(theirs[DAY_BARS + 1 :]).all()


@pytest.mark.parametrize("name", ["btc", "eth"])
def test_smc_previous_week_is_ours_only_on_sundays_and_a_week_staler_otherwise(name: str) -> None:
    times, ours, theirs = _ours_and_smc(name, "1W")
    weekday = (times // DAY_MS + 3) % 7
    minute_of_day = times % DAY_MS // MINUTE_MS
    sunday_inner = (weekday == 6) & (minute_of_day != 0) & (minute_of_day != 24 * 60 - 5)
    expected = np.where(sunday_inner[:, None], ours, _lagged(ours, WEEK_BARS))
    known = np.isfinite(expected[:, 0])

    assert np.array_equal(theirs[known], expected[known].astype(np.float32))
    assert sunday_inner.mean() == pytest.approx(1 / 7, abs=0.01)


@pytest.mark.parametrize("name", ["btc", "eth"])
def test_smc_counts_the_partial_first_week_as_a_previous_week(name: str) -> None:
    # The files open on Sunday 2023-01-01 00:00: smc's first "previous week" is that one day.
    r = _rows(name)
    times, ours, theirs = _ours_and_smc(name, "1W")
    first_day = slice(0, DAY_BARS)
    smc_first = np.flatnonzero(np.isfinite(theirs[:, 0]))[0]
    ours_first = np.flatnonzero(np.isfinite(ours[:, 0]))[0]

    assert theirs[smc_first, 0] == np.float32(r.high[first_day].max())
    assert theirs[smc_first, 1] == np.float32(r.low[first_day].min())
    assert pd.Timestamp(int(times[smc_first]), unit="ms") == pd.Timestamp("2023-01-08 00:05")
    # Ours waits for the first whole ISO week, Monday 01-02 to Sunday 01-08, at its last close.
    assert pd.Timestamp(int(times[ours_first]), unit="ms") == pd.Timestamp("2023-01-08 23:55")


SESSIONS = {
    0: ("00:00", "06:55"),
    1: ("07:00", "11:55"),
    2: ("12:00", "19:55"),
    3: ("20:00", "23:55"),
}


@cache
def _three_weeks() -> tuple[pd.DataFrame, F64]:
    r = _rows("btc")
    part = slice(10_000, 10_000 + 3 * WEEK_BARS)
    times, h, low, c = r.times_ms[part], r.high[part], r.low[part], r.close[part]
    ours = levels_batch_nb(times, h, low, c, np.full(len(c), np.nan), LevelsParams(tf_ms=TF_MS))
    frame = _frame(r, indexed_by_time=True).iloc[part]
    return frame, ours[:, LEVELS_COLUMNS.index("session")]


@pytest.mark.parametrize("code", sorted(SESSIONS))
def test_our_session_equals_smcs_custom_session_over_the_same_open_times(code: int) -> None:
    frame, session = _three_weeks()
    start, end = SESSIONS[code]

    active = smc.sessions(frame, "Custom", start_time=start, end_time=end)["Active"].to_numpy()

    assert np.array_equal(active == 1, session == code)


def test_smc_named_sessions_overlap_and_include_the_candle_opening_at_their_end() -> None:
    frame, session = _three_weeks()
    hour = frame.index.hour.to_numpy()
    minute = frame.index.minute.to_numpy()

    london = smc.sessions(frame, "London")["Active"].to_numpy() == 1
    new_york = smc.sessions(frame, "New York")["Active"].to_numpy() == 1

    assert np.array_equal(london, ((hour >= 7) & (hour < 16)) | ((hour == 16) & (minute == 0)))
    assert np.array_equal(new_york, ((hour >= 13) & (hour < 22)) | ((hour == 22) & (minute == 0)))
    assert (london & new_york).sum() == 3 * 7 * (3 * 12 + 1)  # 13:00 .. 16:00 on 21 days
    assert (session[london & (hour == 16)] == 2).all()  # ours: the 16:00 candle is New York's


def test_smc_previous_day_after_a_missing_day_is_the_last_day_with_data() -> None:
    # Hourly candles on Monday and Tuesday 2024-01-01/02, none on Wednesday, then Thursday.
    hours = [*range(48), *range(72, 96)]
    index = pd.to_datetime("2024-01-01") + pd.to_timedelta(hours, unit="h")
    high = np.where(np.arange(len(hours)) // 24 == 1, 120.0, 110.0)
    frame = pd.DataFrame(
        {"open": 100.0, "high": high, "low": 90.0, "close": 100.0, "volume": 1.0}, index=index
    )

    theirs = smc.previous_high_low(frame, "1D")

    # Thursday 12:00 reads Tuesday: pandas drops the empty Wednesday before smc counts periods.
    assert theirs["PreviousHigh"].iloc[48 + 12] == 120.0


def test_smc_counts_a_partial_first_day_as_a_previous_day() -> None:
    r = _rows("btc")
    part = slice(100, 100 + 3 * DAY_BARS)  # from 2023-01-01 08:20
    frame = _frame(r, indexed_by_time=True).iloc[part]
    times, h, low, c = r.times_ms[part], r.high[part], r.low[part], r.close[part]

    theirs = smc.previous_high_low(frame, "1D")["PreviousHigh"].to_numpy()
    ours = _previous_levels(times, h, low, c, LevelsParams(tf_ms=TF_MS))[:, 0]

    next_day_00_05 = DAY_BARS - 100 + 1
    assert theirs[next_day_00_05] == np.float32(h[: DAY_BARS - 100].max())
    assert np.isnan(ours[next_day_00_05])  # ours waits for 2023-01-02, a whole day
