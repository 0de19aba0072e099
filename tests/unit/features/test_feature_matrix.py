"""Bad input, warm-up bookkeeping and the schema hash of the feature matrix."""

from __future__ import annotations

import numpy as np
import pytest

from slt.domain.features.config import FeatureConfig, FeatureConfigError
from slt.domain.features.matrix import FeatureStream, compute_arrays, compute_features
from slt.domain.features.multiframe_nb import (
    REASON_BAD_CANDLE,
    REASON_CONTEXT_WARMUP,
    REASON_OK,
    REASON_WARMUP,
    REASON_WARMUP_AFTER_RESTART,
)
from slt.domain.features.schema import build_schema
from slt.domain.synthetic import random_walk_candles
from slt.errors import InvalidSeriesError

HOURLY = FeatureConfig.for_timeframe("1h")


def _columns(n: int = 3_000, timeframe: str = "1h") -> list[np.ndarray]:
    c = random_walk_candles(timeframe=timeframe, n=n)
    return [c.open_time_ms, c.open, c.high, c.low, c.close, c.volume]


def test_a_history_shorter_than_the_warmup_gives_only_invalid_rows_without_error() -> None:
    matrix = compute_arrays(HOURLY, *(c[:50] for c in _columns()))
    assert (matrix.reason == REASON_WARMUP).all()
    assert np.isnan(matrix.values).all()


def test_an_empty_history_gives_an_empty_matrix() -> None:
    matrix = compute_arrays(HOURLY, *(c[:0] for c in _columns()))
    assert len(matrix) == 0 and matrix.values.shape == (0, len(matrix.schema.columns))


def test_rows_wait_for_the_daily_context_after_the_base_warmup() -> None:
    matrix = compute_arrays(HOURLY, *_columns())
    reasons = matrix.reason
    first_context = int(np.argmax(reasons == REASON_CONTEXT_WARMUP))
    first_ok = int(np.argmax(reasons == REASON_OK))
    assert 0 < first_context < first_ok
    assert (reasons[first_ok:] == REASON_OK).all()


@pytest.mark.parametrize(
    ("column", "value"),
    [(1, np.nan), (4, np.inf), (4, 0.0), (3, -5.0), (5, -1.0), (2, 1.0)],
    ids=[
        "nan-open",
        "inf-close",
        "zero-close",
        "negative-low",
        "negative-volume",
        "high-below-low",
    ],
)
def test_a_bad_candle_gives_an_invalid_row_and_restarts_the_warmup(
    column: int, value: float
) -> None:
    cols = _columns()
    clean = compute_arrays(HOURLY, *cols)
    bad_row = 2_500
    cols[column] = cols[column].copy()
    cols[column][bad_row] = value
    matrix = compute_arrays(HOURLY, *cols)
    assert matrix.reason[bad_row] == REASON_BAD_CANDLE
    assert np.isnan(matrix.values[bad_row]).all()
    assert (matrix.reason[bad_row + 1 :] == REASON_WARMUP_AFTER_RESTART).all()
    assert np.array_equal(matrix.values[:bad_row], clean.values[:bad_row], equal_nan=True)


def test_a_gap_in_the_candles_restarts_the_warmup_with_its_own_reason() -> None:
    cols = [np.delete(c, 2_400) for c in _columns()]
    matrix = compute_arrays(HOURLY, *cols)
    assert matrix.reason[2_399] == REASON_OK  # the last candle before the hole
    assert (matrix.reason[2_400:] == REASON_WARMUP_AFTER_RESTART).all()


def test_unsorted_or_off_grid_times_are_refused_with_a_clear_error() -> None:
    cols = _columns(200)
    swapped = cols[0].copy()
    swapped[[10, 11]] = swapped[[11, 10]]
    with pytest.raises(InvalidSeriesError, match="strictly increasing"):
        compute_arrays(HOURLY, swapped, *cols[1:])
    with pytest.raises(InvalidSeriesError, match="grid"):
        compute_arrays(HOURLY, cols[0] + 1, *cols[1:])


def test_the_stream_refuses_a_candle_it_has_already_seen() -> None:
    stream = FeatureStream(HOURLY)
    stream.update(3_600_000, 1.0, 2.0, 0.5, 1.5, 10.0)
    with pytest.raises(InvalidSeriesError, match="time order"):
        stream.update(3_600_000, 1.0, 2.0, 0.5, 1.5, 10.0)


def test_config_for_the_wrong_timeframe_is_refused() -> None:
    candles = random_walk_candles(timeframe="5m", n=100)
    with pytest.raises(InvalidSeriesError, match="config is for 1h"):
        compute_features(candles, HOURLY)
    with pytest.raises(FeatureConfigError, match="whole multiple"):
        FeatureConfig.for_timeframe("15m", context=("20m",))


def test_five_minute_base_reads_daily_hourly_and_fifteen_minute_context() -> None:
    names = build_schema(FeatureConfig.for_timeframe("5m")).names
    assert {"rsi", "d1_trend", "h1_rsi", "m15_trend"} <= set(names)
    assert not any(n.startswith("m5_") for n in names)
    one_minute = build_schema(FeatureConfig.for_timeframe("1m")).names
    assert "m5_rsi" in one_minute


def test_the_schema_hash_is_stable_and_changes_with_any_parameter() -> None:
    assert build_schema(HOURLY).hash == build_schema(FeatureConfig.for_timeframe("1h")).hash
    base = HOURLY.base
    changed = FeatureConfig(
        base=type(base)(
            base.timeframe,
            base.indicators._replace(rsi_period=15),
            base.structure,
            base.fvg,
            base.levels,
        ),
        context=HOURLY.context,
    )
    assert build_schema(changed).hash != build_schema(HOURLY).hash
    assert build_schema(FeatureConfig.for_timeframe("5m")).hash != build_schema(HOURLY).hash
