from __future__ import annotations

import numpy as np

from slt.domain.quality import check_candles, check_funding, find_gaps

M = 60_000


def _ohlcv(n: int) -> tuple[np.ndarray, ...]:
    o = np.full(n, 100.0)
    return o, o + 1, o - 1, o.copy(), np.full(n, 5.0)


def test_gaps_are_found_with_their_number_of_missing_candles() -> None:
    t = np.array([0, 1, 2, 6, 7, 9], dtype=np.int64) * M
    gaps = find_gaps(t, M)
    assert [(g.after_ms, g.next_ms, g.missing) for g in gaps] == [
        (2 * M, 6 * M, 3),
        (7 * M, 9 * M, 1),
    ]


def test_a_clean_series_has_no_problems_and_no_gaps() -> None:
    t = np.arange(50, dtype=np.int64) * M
    report = check_candles(t, *_ohlcv(50), M)
    assert report.problems == {}
    assert (report.n_gaps, report.missing, report.rows) == (0, 0, 50)


def test_check_counts_every_kind_of_integrity_problem() -> None:
    t = np.array([0, 1, 1, 3, 2, 5, 6], dtype=np.int64) * M  # one duplicate, one step back
    o, h, low, c, v = _ohlcv(7)
    h[0] = 99.0  # high below open
    low[5] = -1.0  # negative price and low below close, counted once as inconsistent
    c[6] = np.nan
    v[1] = -3.0
    report = check_candles(t, o, h, low, c, v, M)
    assert report.problems == {
        "duplicates": 1,
        "non_monotonic": 1,
        "ohlc_inconsistent": 1,
        "non_positive_prices": 1,
        "negative_volume": 1,
        "nan_values": 1,
    }


def test_longest_gaps_are_listed_longest_first() -> None:
    t = np.array([0, 2, 10, 11, 15], dtype=np.int64) * M
    report = check_candles(t, *_ohlcv(5), M)
    assert [g.missing for g in report.longest_gaps] == [7, 3, 1]
    assert report.missing == 11


def test_funding_check_counts_non_finite_rates_and_eight_hour_gaps() -> None:
    h8 = 8 * 60 * M
    t = np.array([0, 1, 2, 4], dtype=np.int64) * h8
    report = check_funding(t, np.array([1e-4, np.nan, np.inf, 1e-4]), h8)
    assert report.nan_values == 2
    assert report.missing == 1
