from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slt.domain.resample import resample
from slt.domain.series import Candles, Market, SeriesKey
from slt.domain.synthetic import random_walk_candles
from slt.errors import SltError


def _pandas_reference(c: Candles, rule: str) -> pd.DataFrame:
    frame = pd.DataFrame(
        {"open": c.open, "high": c.high, "low": c.low, "close": c.close, "volume": c.volume},
        index=pd.to_datetime(c.open_time_ms, unit="ms", utc=True),
    )
    out = frame.resample(rule, label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    return out.dropna(subset=["open"])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 400), drop=st.integers(0, 30))
def test_resampling_matches_a_pandas_reference_with_holes(seed: int, n: int, drop: int) -> None:
    candles = random_walk_candles(timeframe="1m", n=n, seed=seed, start_ms=1_704_067_260_000)
    rng = np.random.default_rng(seed)
    keep = np.ones(n, dtype=bool)
    keep[rng.choice(n, size=min(drop, n - 1), replace=False)] = False
    candles = candles.take(keep)
    ours = resample(candles, "15m")
    ref = _pandas_reference(candles, "15min")
    # The reference keeps partial first and trailing buckets; we drop those.
    starts = ref.index.as_unit("ms").asi8
    last_close = candles.open_time_ms[-1] + 60_000
    ref = ref[((starts + 900_000) <= last_close) & (starts >= candles.open_time_ms[0])]
    assert ours.open_time_ms.tolist() == (ref.index.as_unit("ms").asi8).tolist()
    for name in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(getattr(ours, name), ref[name].to_numpy())
    np.testing.assert_allclose(ours.volume, ref["volume"].to_numpy(), rtol=1e-12)


def test_an_unclosed_trailing_bucket_is_dropped() -> None:
    candles = random_walk_candles(timeframe="5m", n=14)  # 00:00..01:05: the 01:00 hour is open
    hours = resample(candles, "1h")
    assert hours.open_time_ms.tolist() == [candles.open_time_ms[0]]


def test_daily_to_weekly_buckets_open_on_monday() -> None:
    # 2024-01-01 was a Monday.
    candles = random_walk_candles(timeframe="1d", n=15, start_ms=1_704_067_200_000 - 3 * 86_400_000)
    weeks = resample(candles, "1w")
    assert (pd.to_datetime(weeks.open_time_ms, unit="ms").day_of_week == 0).all()
    assert weeks.open_time_ms.tolist() == [1_704_067_200_000]  # partial weeks either side dropped
    assert weeks.open[0] == candles.open[3]


def test_complete_only_drops_buckets_with_holes() -> None:
    candles = random_walk_candles(timeframe="5m", n=36, outage=(14, 2))
    assert len(resample(candles, "1h")) == 3
    assert len(resample(candles, "1h", complete_only=True)) == 2


def test_resampling_to_a_non_multiple_timeframe_is_refused() -> None:
    candles = random_walk_candles(timeframe="5m", n=10)
    with pytest.raises(SltError, match="whole multiple"):
        resample(candles, "7m")


def test_resampling_an_empty_series_gives_an_empty_series() -> None:
    empty = Candles.empty(SeriesKey("BTCUSDT", Market.FUTURES, "1m"))
    assert len(resample(empty, "5m")) == 0
