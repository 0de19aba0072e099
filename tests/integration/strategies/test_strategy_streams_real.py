"""Every strategy fed one closed candle at a time on the real BTCUSDT 5m futures file gives its
batch signals bit for bit: the built-ins through their step kernels over the whole 143,900 bars
(warm-up included), user files through their replayed ``signals`` on a few thousand bars. And
smc's batch kernel follows a plain-Python reading of its rules on the real feature rows."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from slt.adapters.strategy_file import check_strategy, load_strategy_file
from slt.domain.features.config import FeatureConfig
from slt.domain.features.matrix import FeatureMatrix, FeatureStream, compute_features
from slt.domain.series import F64, Candles, Market, SeriesKey
from slt.domain.strategies.base import BatchStrategy, Strategy
from slt.domain.strategies.registry import builtin_strategy
from slt.domain.strategies.smc import Smc, SmcParams
from tests.conftest import CATMAN_BTC_5M, real_ohlcv
from tests.unit.strategies.smc_reference import reference

pytestmark = pytest.mark.shared_data

EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "my_strategy.py"
# User files replay their whole history on every candle, so they run on a window of the file,
# after the features' warm-up (about 64 days of 5m candles).
WINDOW = slice(30_000, 35_000)

# Long on a close above the highest high of the 24 candles before, short below the lowest low.
BREAKOUT = """
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from slt.domain.strategies.base import Signals

LOOKBACK = 24

class Breakout:
    name = "breakout"
    uses_features = False

    def signals(self, candles, features):
        n = len(candles)
        highest, lowest = np.full(n, np.nan), np.full(n, np.nan)
        if n > LOOKBACK:
            highest[LOOKBACK:] = sliding_window_view(candles.high, LOOKBACK).max(axis=1)[:-1]
            lowest[LOOKBACK:] = sliding_window_view(candles.low, LOOKBACK).min(axis=1)[:-1]
        direction = np.zeros(n, dtype=np.int8)
        direction[candles.close > highest] = 1
        direction[candles.close < lowest] = -1
        reach = np.where(direction > 0, candles.close / highest, lowest / candles.close) - 1.0
        score = np.where(direction != 0, np.clip(0.5 + 100.0 * np.nan_to_num(reach), 0, 1), 0)
        return Signals(direction, score)

strategy = Breakout()
"""


@cache
def candles() -> Candles:
    raw = real_ohlcv(CATMAN_BTC_5M)
    key = SeriesKey("BTCUSDT", Market.FUTURES, "5m")
    return Candles.from_arrays(
        key, raw.times_ms, raw.open, raw.high, raw.low, raw.close, raw.volume
    )


@cache
def batch_features() -> FeatureMatrix:
    return compute_features(candles())


@cache
def streamed_features() -> tuple[FeatureStream, tuple[tuple[F64, int], ...]]:
    """Every candle's feature row and reason, from the feature stream fed candle by candle."""
    series, stream = candles(), FeatureStream(FeatureConfig.for_timeframe("5m"))
    rows = tuple(
        stream.update(
            int(series.open_time_ms[i]),
            float(series.open[i]),
            float(series.high[i]),
            float(series.low[i]),
            float(series.close[i]),
            float(series.volume[i]),
        )
        for i in range(len(series))
    )
    return stream, rows


def stream_signals(strategy: Strategy, span: slice) -> tuple[np.ndarray, np.ndarray]:
    """Direction and score of the candles in ``span``, fed to a fresh stream one by one."""
    series = candles()
    feature_stream, rows = streamed_features()
    stream = strategy.stream(feature_stream.schema if strategy.uses_features else None)
    direction, score = [], []
    for i in range(*span.indices(len(series))):
        row, reason = rows[i] if strategy.uses_features else (None, 0)
        d, s = stream.update(
            int(series.open_time_ms[i]),
            float(series.open[i]),
            float(series.high[i]),
            float(series.low[i]),
            float(series.close[i]),
            float(series.volume[i]),
            row,
            reason,
        )
        direction.append(d)
        score.append(s)
    return np.array(direction, dtype=np.int8), np.array(score)


def batch_signals(strategy: BatchStrategy, span: slice) -> tuple[np.ndarray, np.ndarray]:
    """check_strategy on the candles of ``span`` alone (and their batch feature rows)."""
    features = batch_features()
    window = FeatureMatrix(
        features.schema,
        features.open_time_ms[span],
        features.reason[span],
        features.values[span],
    )
    signals = check_strategy(
        strategy, candles().take(span), window if strategy.uses_features else None
    )
    return signals.direction, signals.score


@pytest.mark.parametrize(
    ("name", "relaxed", "at_least"),
    [("smc", False, 1_000), ("smc", True, 7_000), ("ema_cross", False, 5_000)],
)
def test_a_builtin_strategy_streamed_over_the_whole_file_gives_its_batch_signals_bit_for_bit(
    name: str, relaxed: bool, at_least: int
) -> None:
    strategy = builtin_strategy(name, relaxed)
    batch = strategy.signals(candles(), batch_features() if strategy.uses_features else None)
    direction, score = stream_signals(strategy, slice(None))
    np.testing.assert_array_equal(direction, batch.direction)
    np.testing.assert_array_equal(score, batch.score)
    assert direction.dtype == batch.direction.dtype
    assert batch.count >= at_least


def test_the_feature_stream_feeds_rows_of_the_batch_schema() -> None:
    assert streamed_features()[0].schema == batch_features().schema


def test_the_documented_example_file_streams_exactly_like_its_batch_signals() -> None:
    strategy = load_strategy_file(EXAMPLE)
    direction, score = stream_signals(strategy, WINDOW)
    expected_direction, expected_score = batch_signals(strategy, WINDOW)
    np.testing.assert_array_equal(direction, expected_direction)
    np.testing.assert_array_equal(score, expected_score)
    assert np.count_nonzero(direction) >= 20


@pytest.mark.parametrize("history_limit", [None, 100])
def test_a_user_file_without_a_stream_streams_exactly_like_its_batch_signals(
    tmp_path: Path, history_limit: int | None
) -> None:
    path = tmp_path / "breakout.py"
    path.write_text(BREAKOUT)
    # A limit of 100 candles covers the 25 the rule looks at, so it stays exact.
    strategy = load_strategy_file(path, stream_history_limit=history_limit)
    direction, score = stream_signals(strategy, WINDOW)
    expected_direction, expected_score = batch_signals(strategy, WINDOW)
    np.testing.assert_array_equal(direction, expected_direction)
    np.testing.assert_array_equal(score, expected_score)
    assert np.count_nonzero(direction) >= 200


@pytest.mark.parametrize("relaxed", [False, True])
def test_smc_batch_signals_follow_the_plain_python_rules_on_real_feature_rows(
    relaxed: bool,
) -> None:
    features = batch_features()
    span = slice(20_000, 60_000)
    window = FeatureMatrix(
        features.schema, features.open_time_ms[span], features.reason[span], features.values[span]
    )
    params = SmcParams(relaxed=relaxed)
    signals = Smc(params).signals(candles().take(span), window)
    direction, score = reference(window, params)
    assert signals.direction.tolist() == direction
    assert signals.score.tolist() == score
    assert signals.count >= (1_500 if relaxed else 200)
