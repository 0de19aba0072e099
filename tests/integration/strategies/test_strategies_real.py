"""The built-in strategies on the real BTCUSDT and ETHUSDT 5m futures files (143,900 bars each):
signal counts, relaxed mode, causality, TA-Lib agreement and speed."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import talib

from slt.domain.features.matrix import FeatureMatrix, compute_features
from slt.domain.series import Candles, Market, SeriesKey
from slt.domain.strategies.base import Signals, Strategy
from slt.domain.strategies.registry import builtin_strategy
from tests.conftest import CATMAN_BTC_5M, CATMAN_ETH_5M, real_ohlcv

pytestmark = pytest.mark.shared_data

CUTS = (70_001, 100_000, 131_313)


@cache
def candles(path: Path) -> Candles:
    raw = real_ohlcv(path)
    key = SeriesKey(path.name.split("_")[0] + "USDT", Market.FUTURES, "5m")
    return Candles.from_arrays(
        key, raw.times_ms, raw.open, raw.high, raw.low, raw.close, raw.volume
    )


@cache
def features(path: Path) -> FeatureMatrix:
    return compute_features(candles(path))


def prefix(series: Candles, stop: int) -> Candles:
    return Candles(
        series.key,
        series.open_time_ms[:stop],
        series.open[:stop],
        series.high[:stop],
        series.low[:stop],
        series.close[:stop],
        series.volume[:stop],
    )


def smc(path: Path, relaxed: bool) -> Signals:
    return builtin_strategy("smc", relaxed).signals(candles(path), features(path))


def fastest_ms(run: Callable[[], object], repeats: int = 20) -> float:
    run()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return min(times) * 1e3


@pytest.mark.parametrize("path", [CATMAN_BTC_5M, CATMAN_ETH_5M])
def test_strict_smc_signals_a_few_hundred_to_a_few_thousand_times(path: Path) -> None:
    signals = smc(path, relaxed=False)
    assert 300 <= signals.count <= 3_000
    assert (signals.direction == 1).sum() > 0 and (signals.direction == -1).sum() > 0


@pytest.mark.parametrize("path", [CATMAN_BTC_5M, CATMAN_ETH_5M])
def test_relaxed_smc_gives_several_times_more_signals_including_every_strict_one(
    path: Path,
) -> None:
    strict, relaxed = smc(path, relaxed=False), smc(path, relaxed=True)
    chosen = strict.direction != 0
    assert relaxed.count >= 3 * strict.count
    assert np.array_equal(relaxed.direction[chosen], strict.direction[chosen])
    assert np.array_equal(relaxed.score[chosen], strict.score[chosen])


@pytest.mark.parametrize("relaxed", [False, True])
def test_smc_signals_only_on_valid_feature_rows_with_scores_in_range(relaxed: bool) -> None:
    signals = smc(CATMAN_BTC_5M, relaxed)
    chosen = signals.direction != 0
    assert features(CATMAN_BTC_5M).valid[chosen].all()
    assert (signals.score[chosen] >= (0.45 if relaxed else 0.55)).all()
    assert (signals.score[chosen] <= 1.0).all()
    assert (signals.score[~chosen] == 0.0).all()


@pytest.mark.parametrize("relaxed", [False, True])
def test_smc_on_a_prefix_of_the_history_gives_the_first_rows_of_the_full_run(
    relaxed: bool,
) -> None:
    full = smc(CATMAN_BTC_5M, relaxed)
    strategy = builtin_strategy("smc", relaxed)
    for stop in CUTS:
        part = prefix(candles(CATMAN_BTC_5M), stop)
        signals = strategy.signals(part, compute_features(part))
        assert np.array_equal(signals.direction, full.direction[:stop])
        assert np.array_equal(signals.score, full.score[:stop])


def test_ema_cross_on_a_prefix_of_the_history_gives_the_first_rows_of_the_full_run() -> None:
    strategy = builtin_strategy("ema_cross")
    full = strategy.signals(candles(CATMAN_BTC_5M), None)
    for stop in (30, *CUTS):
        signals = strategy.signals(prefix(candles(CATMAN_BTC_5M), stop), None)
        assert np.array_equal(signals.direction, full.direction[:stop])
        assert np.array_equal(signals.score, full.score[:stop])


@pytest.mark.parametrize("path", [CATMAN_BTC_5M, CATMAN_ETH_5M])
def test_ema_cross_signals_exactly_where_talib_emas_cross(path: Path) -> None:
    close = candles(path).close
    fast, slow = talib.EMA(close, 12), talib.EMA(close, 26)
    above = fast > slow
    below = fast < slow
    expected = np.zeros(len(close), dtype=np.int8)
    expected[1:][above[1:] & (fast[:-1] <= slow[:-1])] = 1
    expected[1:][below[1:] & (fast[:-1] >= slow[:-1])] = -1
    signals = builtin_strategy("ema_cross").signals(candles(path), None)
    assert np.array_equal(signals.direction, expected)
    assert 5_000 < signals.count < 6_000


def test_ema_cross_takes_well_under_five_milliseconds_on_the_whole_history() -> None:
    strategy, series = builtin_strategy("ema_cross"), candles(CATMAN_BTC_5M)
    assert fastest_ms(lambda: strategy.signals(series, None)) < 5.0


@pytest.mark.parametrize("relaxed", [False, True])
def test_smc_takes_well_under_fifty_milliseconds_on_the_whole_history(relaxed: bool) -> None:
    strategy: Strategy = builtin_strategy("smc", relaxed)
    series, matrix = candles(CATMAN_BTC_5M), features(CATMAN_BTC_5M)
    assert fastest_ms(lambda: strategy.signals(series, matrix)) < 50.0
