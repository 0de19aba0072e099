"""The signal pipeline fed one candle at a time equals the batch pipeline bit for bit, on real
BTCUSDT 5m futures: features, the strategy, the ATR stop, the confidence, the model's P(win)
and its gate. Paper and live trading score each candle as the backtest of the same history."""

from __future__ import annotations

import numpy as np
import pytest

from slt.domain.features.matrix import compute_features
from slt.domain.series import Candles, Market, SeriesKey
from slt.domain.strategies.registry import builtin_strategy
from slt.domain.trading.params import StopRule
from slt.engine.pipeline import ModelGate, ScoredSignals, SignalStream, scored, with_model
from slt.engine.virtual import candle_outcomes
from slt.engine.walkforward import break_even_probability, examples_from_outcomes
from slt.learning.model import ModelParams, train_model
from slt.runtime.trading_config import TradingConfig
from tests.conftest import CATMAN_BTC_5M, real_ohlcv

pytestmark = pytest.mark.shared_data

ATR_STOPS = StopRule(atr=True, atr_multiple=2.0, atr_min_pct=0.3, atr_max_pct=5.0)


def _candles(n: int) -> Candles:
    raw = real_ohlcv(CATMAN_BTC_5M)
    rows = slice(0, n)
    return Candles.from_arrays(
        SeriesKey("BTCUSDT", Market.FUTURES, "5m"), raw.times_ms[rows], raw.open[rows],
        raw.high[rows], raw.low[rows], raw.close[rows], raw.volume[rows],
    )  # fmt: skip


def _streamed(candles: Candles, stream: SignalStream) -> ScoredSignals:
    rows = [
        stream.update(t, o, h, lo, c, v)
        for t, o, h, lo, c, v in zip(
            candles.open_time_ms.tolist(), candles.open.tolist(), candles.high.tolist(),
            candles.low.tolist(), candles.close.tolist(), candles.volume.tolist(), strict=True,
        )
    ]  # fmt: skip
    columns = list(zip(*rows, strict=True))
    return ScoredSignals(
        direction=np.array(columns[0], dtype=np.int8),
        score=np.array(columns[1]),
        stop_pct=np.array(columns[2]),
        confidence=np.array(columns[3]),
        gate=np.array(columns[4], dtype=np.bool_),
        p_win=np.array(columns[5]),
    )


def _assert_equal(stream: ScoredSignals, batch: ScoredSignals) -> None:
    for name in ScoredSignals.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(stream, name), getattr(batch, name), err_msg=name)


@pytest.mark.parametrize(
    ("name", "relaxed", "stops", "at_least"),
    [
        ("smc", False, ATR_STOPS, 150),
        ("smc", True, StopRule(), 1_000),
        ("ema_cross", False, ATR_STOPS, 1_000),
    ],
)
def test_the_pipeline_streamed_candle_by_candle_equals_the_batch_pipeline(
    name: str, relaxed: bool, stops: StopRule, at_least: int
) -> None:
    candles = _candles(40_000)
    strategy = builtin_strategy(name, relaxed)
    features = compute_features(candles) if strategy.uses_features else None
    batch = scored(strategy.signals(candles, features), candles, stops)
    assert np.count_nonzero(batch.direction) >= at_least
    assert np.isnan(batch.stop_pct).sum() >= (14 if stops.atr else 0)  # the ATR's warm-up
    _assert_equal(_streamed(candles, SignalStream(strategy, "5m", stops)), batch)


def test_a_trained_model_scores_and_gates_each_streamed_signal_as_in_the_batch() -> None:
    candles = _candles(40_000)
    features = compute_features(candles)
    strategy = builtin_strategy("ema_cross")
    signals = strategy.signals(candles, None)
    config = TradingConfig().engine()
    learn = np.where(np.arange(len(candles)) < 25_000, signals.direction, 0).astype(np.int8)
    outcomes = candle_outcomes(candles, learn, config, 0.1)
    examples, _ = examples_from_outcomes(
        features, outcomes, candles.open_time_ms + candles.key.timeframe_ms
    )
    model = train_model(examples, ModelParams(seed=3), embargo_ms=0)
    gate = ModelGate(model, break_even_probability(examples), "test-model")
    batch = with_model(scored(signals, candles, config.stops), features.values, gate)
    signalled = batch.direction != 0
    assert np.isfinite(batch.p_win[signalled]).all()
    assert 0 < batch.gate.sum() < signalled.sum()  # the model takes some, turns others down
    _assert_equal(_streamed(candles, SignalStream(strategy, "5m", config.stops, gate)), batch)
