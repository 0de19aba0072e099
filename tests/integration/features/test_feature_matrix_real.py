"""The whole feature matrix on real Binance candles: streaming equals batch, nothing looks ahead,
and higher-timeframe context appears only when its candle has closed."""

from __future__ import annotations

import numpy as np
import pytest

from slt.domain.features.causality import prefix_violations, warmup_violations
from slt.domain.features.config import FeatureConfig
from slt.domain.features.matrix import FeatureMatrix, FeatureStream, compute_arrays
from slt.domain.features.multiframe_nb import REASON_OK
from slt.domain.features.schema import tf_params
from slt.domain.features.timeframe_nb import TF_COLUMNS, TF_NCOLS, tf_state, tf_step_nb
from slt.domain.resample import resample
from slt.domain.series import Candles, Kind, Market, SeriesKey
from slt.domain.timeframes import HOUR_MS, MINUTE_MS
from tests.conftest import CATMAN_BTC_1H, CATMAN_BTC_5M, CATMAN_ETH_5M, real_ohlcv

pytestmark = pytest.mark.shared_data


def _matrix(path, start: int = 0, stop: int | None = None, *, mask: bool = True) -> FeatureMatrix:
    raw = real_ohlcv(path)
    tf = "1h" if "1h" in path.name else "5m"
    cols = (raw.times_ms, raw.open, raw.high, raw.low, raw.close, raw.volume)
    return compute_arrays(
        FeatureConfig.for_timeframe(tf), *(c[start:stop] for c in cols), mask_invalid=mask
    )


def _bit_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b, equal_nan=True))


@pytest.mark.parametrize("path", [CATMAN_BTC_5M, CATMAN_BTC_1H])
def test_streaming_one_candle_at_a_time_reproduces_every_batch_value(path) -> None:
    raw = real_ohlcv(path)
    n = 10_000
    tf = "1h" if path is CATMAN_BTC_1H else "5m"
    batch = _matrix(path, 0, n, mask=False)
    stream = FeatureStream(FeatureConfig.for_timeframe(tf), mask_invalid=False)
    rows = np.empty_like(batch.values)
    reasons = np.empty(n, dtype=np.int8)
    for i in range(n):
        rows[i], reasons[i] = stream.update(
            int(raw.times_ms[i]), raw.open[i], raw.high[i], raw.low[i], raw.close[i], raw.volume[i]
        )
    assert _bit_equal(rows, batch.values)
    assert np.array_equal(reasons, batch.reason)
    assert np.isfinite(batch.values).sum() > 0.5 * batch.values.size


def test_one_hour_base_has_valid_rows_once_daily_context_has_warmed_up() -> None:
    matrix = _matrix(CATMAN_BTC_1H)
    valid = matrix.valid
    first_valid = int(np.argmax(valid))
    assert valid[first_valid:].all()  # the file is gap-free: once valid, always valid
    assert 24 * 40 < first_valid < 24 * 120  # daily structure needs about two months
    assert np.isnan(matrix.values[~valid]).all()


@pytest.mark.parametrize("path", [CATMAN_BTC_5M, CATMAN_ETH_5M])
def test_no_feature_changes_when_the_future_is_cut_off(path) -> None:
    raw = real_ohlcv(path)
    full = _matrix(path).values
    config = FeatureConfig.for_timeframe("5m")
    cols = (raw.times_ms, raw.open, raw.high, raw.low, raw.close, raw.volume)

    def compute(start: int, stop: int) -> np.ndarray:
        return compute_arrays(config, *(c[start:stop] for c in cols)).values

    rng = np.random.default_rng(7)
    rows = [*sorted(rng.integers(20000, len(full), size=8).tolist()), len(full) - 1]
    names = _matrix(path, 0, 10).schema.names
    assert prefix_violations(compute, full, rows, names) == []


def test_a_shorter_history_gives_the_same_values_after_each_columns_warmup() -> None:
    raw = real_ohlcv(CATMAN_BTC_5M)
    n = 60_000
    cols = (raw.times_ms, raw.open, raw.high, raw.low, raw.close, raw.volume)
    config = FeatureConfig.for_timeframe("5m")

    def compute(start: int, stop: int) -> np.ndarray:
        return compute_arrays(config, *(c[start:stop] for c in cols), mask_invalid=False).values

    full = compute(0, n)
    schema = _matrix(CATMAN_BTC_5M, 0, 10).schema
    found = warmup_violations(compute, full, [1, 3_001, 17_777], schema.warmup_rows(), schema.names)
    assert found == [], "\n".join(str(v) for v in found[:20])


def test_the_prefix_check_catches_a_feature_that_peeks_one_candle_ahead() -> None:
    raw = real_ohlcv(CATMAN_BTC_5M)
    config = FeatureConfig.for_timeframe("5m")
    cols = (raw.times_ms, raw.open, raw.high, raw.low, raw.close, raw.volume)

    def leaking(start: int, stop: int) -> np.ndarray:
        values = compute_arrays(config, *(c[start:stop] for c in cols), mask_invalid=False).values
        values[:, 0] = np.append(values[1:, 0], np.nan)  # row t sees row t+1
        return values

    full = leaking(0, 30_000)
    names = _matrix(CATMAN_BTC_5M, 0, 10).schema.names
    found = prefix_violations(leaking, full, [25_000], names)
    assert [v.column for v in found] == [names[0]]


def test_the_warmup_check_catches_a_feature_with_unbounded_memory() -> None:
    raw = real_ohlcv(CATMAN_BTC_5M)

    def cumulative(start: int, stop: int) -> np.ndarray:
        return np.cumsum(raw.volume[start:stop])[:, None]

    full = cumulative(0, 5_000)
    found = warmup_violations(cumulative, full, [100], [500], ["cumulative_volume"])
    assert found and found[0].column == "cumulative_volume"


def test_hourly_context_appears_on_the_five_minute_row_that_closes_the_hour() -> None:
    n = 30_000
    matrix = _matrix(CATMAN_BTC_5M, 0, n, mask=False)
    rsi = matrix.column("h1_rsi")
    changes = np.flatnonzero(np.diff(rsi) != 0) + 1
    changes = changes[np.isfinite(rsi[changes])]
    minute_of_hour = (matrix.open_time_ms[changes] % HOUR_MS) // MINUTE_MS
    assert len(changes) > 100
    assert set(minute_of_hour.tolist()) == {55}  # the 5m candle opening at :55 closes the hour


def test_hourly_context_equals_the_timeframe_engine_run_on_resampled_hourly_candles() -> None:
    raw = real_ohlcv(CATMAN_BTC_5M)
    n = 30_000
    key = SeriesKey("BTCUSDT", Market.FUTURES, "5m", Kind.CANDLES)
    candles = Candles.from_arrays(
        key,
        raw.times_ms[:n],
        raw.open[:n],
        raw.high[:n],
        raw.low[:n],
        raw.close[:n],
        raw.volume[:n],
    )
    hourly = resample(candles, "1h", complete_only=True)
    config = FeatureConfig.for_timeframe("5m")
    h1 = next(c for c in config.context if c.timeframe == "1h")
    params = tf_params(h1)
    state = tf_state(params)
    expected = np.empty((len(hourly), TF_NCOLS))
    for i in range(len(hourly)):
        tf_step_nb(
            state,
            params,
            np.int64(hourly.open_time_ms[i]),
            hourly.open[i],
            hourly.high[i],
            hourly.low[i],
            hourly.close[i],
            hourly.volume[i],
            expected[i],
        )
    matrix = _matrix(CATMAN_BTC_5M, 0, n, mask=False)
    closing_rows = np.searchsorted(
        matrix.open_time_ms, hourly.open_time_ms + HOUR_MS - 5 * MINUTE_MS
    )
    for name in ("rsi", "trend", "premium_discount", "fvg_bull_dist_atr"):
        got = matrix.column(f"h1_{name}")[closing_rows]
        assert _bit_equal(got, expected[:, TF_COLUMNS.index(name)]), name


def test_every_row_of_a_gap_free_file_is_valid_after_the_warmup() -> None:
    matrix = _matrix(CATMAN_BTC_5M)
    first = int(np.argmax(matrix.valid))
    assert (matrix.reason[first:] == REASON_OK).all()
    assert np.isfinite(matrix.column("rsi")[first:]).all()
    assert np.isfinite(matrix.column("d1_trend")[first:]).all()
