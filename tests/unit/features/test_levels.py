"""Calendar levels on hand-made hourly and daily candles: when a day or week becomes "previous",
which periods count, and the session and weekday codes."""

from __future__ import annotations

import numpy as np
import pytest

from slt.domain.features.levels_nb import (
    LEVELS_COLUMNS,
    LevelsParams,
    levels_batch_nb,
    levels_reset_nb,
    levels_state,
    levels_step_nb,
    levels_warmups,
)
from slt.domain.series import F64, I64
from slt.domain.timeframes import DAY_MS, HOUR_MS, WEEK_MS

MONDAY = 1_704_067_200_000  # 2024-01-01 00:00 UTC, a Monday


def _hours(start_ms: int, n: int) -> I64:
    return start_ms + HOUR_MS * np.arange(n, dtype=np.int64)


def _run(
    times: I64, high: F64, low: F64, close: F64, tf_ms: int = HOUR_MS, atr: float = 2.0
) -> F64:
    atrs = np.full(len(times), atr)
    return levels_batch_nb(times, high, low, close, atrs, LevelsParams(tf_ms=tf_ms))


def _col(out: F64, name: str) -> F64:
    return out[:, LEVELS_COLUMNS.index(name)]


def _two_days() -> tuple[I64, F64, F64, F64]:
    """48 hourly candles from Monday 00:00; Monday's high is 110 (10:00), its low 90 (15:00)."""
    times = _hours(MONDAY, 48)
    close = np.full(48, 100.0)
    high = close + 1.0
    low = close - 1.0
    high[10] = 110.0
    low[15] = 90.0
    return times, high, low, close


def test_previous_day_high_is_visible_from_the_close_of_the_days_last_candle() -> None:
    times, high, low, close = _two_days()

    out = _run(times, high, low, close)

    high_dist = _col(out, "prev_day_high_dist_atr")
    assert np.isnan(high_dist[:23]).all()  # Monday 22:00 closes at 23:00: Monday is not over
    assert high_dist[23] == (110.0 - 100.0) / 2.0  # Monday 23:00 closes at Tuesday 00:00
    assert (_col(out, "prev_day_low_dist_atr")[23:47] == (100.0 - 90.0) / 2.0).all()
    assert (_col(out, "prev_day_high_dist_pct")[23:47] == 10.0).all()
    assert (_col(out, "prev_day_low_dist_pct")[23:47] == 10.0).all()


def test_the_day_just_closed_replaces_the_previous_day_at_its_own_last_candle() -> None:
    times, high, low, close = _two_days()
    high[30] = 120.0  # Tuesday 06:00

    out = _run(times, high, low, close)

    pct = _col(out, "prev_day_high_dist_pct")
    assert pct[46] == 10.0  # Tuesday 22:00: still Monday
    assert pct[47] == 20.0  # Tuesday 23:00 closes Tuesday


def test_a_day_joined_after_its_first_candle_never_becomes_the_previous_day() -> None:
    times, high, low, close = _two_days()

    out = _run(times[1:], high[1:], low[1:], close[1:])  # from Monday 01:00

    pct = _col(out, "prev_day_high_dist_pct")
    assert np.isnan(pct[:-1]).all()
    assert pct[-1] == 1.0  # Tuesday, complete, high 101


def test_previous_week_opens_on_monday_utc_and_appears_at_sundays_last_close() -> None:
    n = 2 * 7 * 24
    times = _hours(MONDAY, n)
    close = np.full(n, 100.0)
    high = close + 1.0
    low = close - 1.0
    high[6 * 24 + 20] = 130.0  # Sunday 20:00 belongs to the week of Monday 2024-01-01
    low[7 * 24] = 80.0  # the next Monday 00:00 belongs to the next week

    out = _run(times, high, low, close)

    week_high = _col(out, "prev_week_high_dist_atr")
    week_low = _col(out, "prev_week_low_dist_atr")
    sunday_last = 7 * 24 - 1
    assert np.isnan(week_high[:sunday_last]).all()
    assert (week_high[sunday_last:-1] == (130.0 - 100.0) / 2.0).all()
    assert (week_low[sunday_last:-1] == (100.0 - 99.0) / 2.0).all()
    assert week_low[-1] == (100.0 - 80.0) / 2.0  # the second week, closed by the last candle


def test_atr_columns_are_missing_without_atr_but_percent_columns_are_not() -> None:
    times, high, low, close = _two_days()

    out = _run(times, high, low, close, atr=np.nan)

    assert np.isnan(_col(out, "prev_day_high_dist_atr")).all()
    assert (_col(out, "prev_day_high_dist_pct")[23:47] == 10.0).all()


@pytest.mark.parametrize(
    ("hh_mm", "session"),
    [
        ("00:00", 0),
        ("06:55", 0),
        ("07:00", 1),
        ("11:55", 1),
        ("12:00", 2),
        ("19:55", 2),
        ("20:00", 3),
        ("23:55", 3),
    ],
)
def test_session_is_set_by_the_utc_hour_of_the_open_time(hh_mm: str, session: int) -> None:
    hours, minutes = map(int, hh_mm.split(":"))
    t = np.array([MONDAY + hours * HOUR_MS + minutes * 60_000], dtype=np.int64)

    out = _run(t, np.array([101.0]), np.array([99.0]), np.array([100.0]), tf_ms=300_000)

    assert _col(out, "session")[0] == session


@pytest.mark.parametrize(
    ("t", "weekday"),
    [(0, 3), (MONDAY, 0), (MONDAY - 1, 6), (MONDAY + 6 * DAY_MS + 23 * HOUR_MS, 6)],
    ids=["epoch-thursday", "monday", "sunday-last-ms", "sunday-23h"],
)
def test_day_of_week_counts_from_monday_zero(t: int, weekday: int) -> None:
    times = np.array([t], dtype=np.int64)

    out = _run(times, np.array([101.0]), np.array([99.0]), np.array([100.0]))

    assert _col(out, "day_of_week")[0] == weekday


def test_daily_candles_make_each_day_its_own_previous_day_at_its_close() -> None:
    times = MONDAY + DAY_MS * np.arange(9, dtype=np.int64)
    close = np.full(9, 100.0)
    high = 100.0 + np.arange(1.0, 10.0)
    low = np.full(9, 99.0)

    out = _run(times, high, low, close, tf_ms=DAY_MS)

    assert np.array_equal(_col(out, "prev_day_high_dist_pct"), (high - close) / close * 100.0)
    week = _col(out, "prev_week_high_dist_atr")
    assert np.isnan(week[:6]).all() and (week[6:] == (107.0 - 100.0) / 2.0).all()


def test_a_candle_length_that_does_not_divide_the_day_completes_no_day() -> None:
    seven_minutes = 7 * 60_000
    times = MONDAY + seven_minutes * np.arange(3 * DAY_MS // seven_minutes, dtype=np.int64)
    close = np.full(len(times), 100.0)

    out = _run(times, close + 1.0, close - 1.0, close, tf_ms=seven_minutes)

    assert np.isnan(_col(out, "prev_day_high_dist_pct")).all()
    assert np.array_equal(_col(out, "day_of_week"), (times - MONDAY) // DAY_MS)
    assert np.array_equal(_col(out, "session")[:4], [0, 0, 0, 0])


def test_reset_makes_the_current_day_partial() -> None:
    times, high, low, close = _two_days()
    p = LevelsParams(tf_ms=HOUR_MS)
    s = levels_state(p)
    row = np.empty(len(LEVELS_COLUMNS))
    for i in range(30):
        levels_step_nb(s, p, times[i], high[i], low[i], close[i], 2.0, row)
    assert row[LEVELS_COLUMNS.index("prev_day_high_dist_pct")] == 10.0

    levels_reset_nb(s)
    for i in range(30, 48):
        levels_step_nb(s, p, times[i], high[i], low[i], close[i], 2.0, row)

    assert np.isnan(row[LEVELS_COLUMNS.index("prev_day_high_dist_pct")])


def test_warmups_are_two_days_and_two_weeks_of_candles() -> None:
    warm = dict(zip(LEVELS_COLUMNS, levels_warmups(LevelsParams(tf_ms=300_000)), strict=True))

    assert warm["prev_day_high_dist_atr"] == warm["prev_day_low_dist_pct"] == 2 * DAY_MS // 300_000
    assert warm["prev_week_low_dist_atr"] == 2 * WEEK_MS // 300_000
    assert warm["session"] == warm["day_of_week"] == 0
