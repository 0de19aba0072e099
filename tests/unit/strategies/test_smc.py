"""smc on hand-made feature rows: which confluence makes a long, a short or nothing."""

from __future__ import annotations

import numpy as np
import pytest

from slt.domain.features.config import FeatureConfig
from slt.domain.features.matrix import FeatureMatrix
from slt.domain.features.schema import build_schema
from slt.domain.strategies.base import Signals, StrategyError
from slt.domain.strategies.smc import Smc, SmcParams, smc_columns
from slt.domain.strategies.smc_nb import SmcColumns
from tests.unit.strategies.feature_rows import candles_of, feature_matrix

BULL_BIAS = {"d1_trend": 1.0, "h1_trend": 1.0, "m15_trend": 1.0}
BEAR_BIAS = {"d1_trend": -1.0, "h1_trend": -1.0, "m15_trend": -1.0}
# d1 15 + h1 10 + m15 10 + h1 discount 10 + break 10 = 55 points: exactly the strict minimum.
LONG_SETUP = {**BULL_BIAS, "h1_premium_discount": 0.3, "choch": 1.0}
SHORT_SETUP = {**BEAR_BIAS, "h1_premium_discount": 0.7, "bos": -1.0}


def run(matrix: FeatureMatrix, *, relaxed: bool = False) -> Signals:
    return Smc(SmcParams(relaxed=relaxed)).signals(candles_of(np.ones(len(matrix))), matrix)


def test_bullish_bias_discount_and_a_bullish_choch_give_a_long_scored_by_its_factors() -> None:
    signals = run(feature_matrix(BULL_BIAS, LONG_SETUP))
    assert signals.direction.tolist() == [0, 1]
    assert signals.score.tolist() == [0.0, 0.55]
    assert signals.direction.dtype == np.int8


def test_bearish_bias_premium_and_a_bearish_bos_give_a_short() -> None:
    signals = run(feature_matrix(BEAR_BIAS, SHORT_SETUP))
    assert signals.direction.tolist() == [0, -1]
    assert signals.score.tolist() == [0.0, 0.55]


def test_every_long_factor_present_scores_one() -> None:
    before = {**BULL_BIAS, "fvg_bull_age": 4.0, "ob_bull_age": 7.0}
    everything = {
        **BULL_BIAS,
        "d1_premium_discount": 0.2,
        "h1_premium_discount": 0.2,
        "m15_premium_discount": 0.2,
        "premium_discount": 0.2,
        "h1_fvg_bull_dist_atr": 0.3,
        "h1_liq_buy_dist_atr": 2.0,
        "bos": 1.0,
        "liq_sweep": 1.0,
        "fvg_bull_touched": 1.0,
        "fvg_bull_age": 5.0,
        "ob_bull_touched": 1.0,
        "ob_bull_age": 8.0,
    }
    signals = run(feature_matrix(before, everything))
    assert signals.direction.tolist() == [0, 1]
    assert signals.score[1] == 1.0


def test_no_trigger_on_the_base_candle_gives_no_signal() -> None:
    setup = {**LONG_SETUP, "choch": 0.0, "m15_premium_discount": 0.1, "premium_discount": 0.1}
    assert run(feature_matrix(setup, setup), relaxed=True).count == 0


def test_a_bullish_trigger_against_a_bearish_hourly_trend_gives_no_long() -> None:
    against = {**LONG_SETUP, "h1_trend": -1.0}
    assert run(feature_matrix(against, against), relaxed=True).count == 0


def test_strict_mode_needs_the_daily_trend_not_against_the_trade() -> None:
    # d1 against: h1 10 + m15 10 + h1, m15, base discount 20 + break 10 = 50 points.
    setup = {**LONG_SETUP, "d1_trend": -1.0, "m15_premium_discount": 0.2, "premium_discount": 0.2}
    matrix = feature_matrix(setup, setup)
    assert run(matrix).count == 0
    assert run(matrix, relaxed=True).direction.tolist() == [1, 1]
    assert run(matrix, relaxed=True).score.tolist() == [0.5, 0.5]


def test_strict_mode_needs_discount_on_the_hourly_or_fifteen_minute_chart() -> None:
    setup = {**LONG_SETUP, "h1_premium_discount": 0.8, "d1_premium_discount": 0.1}
    setup |= {"premium_discount": 0.1}
    matrix = feature_matrix(setup)
    assert run(matrix).count == 0
    assert run(matrix, relaxed=True).direction.tolist() == [1]


def test_relaxed_mode_accepts_a_new_bullish_gap_as_the_trigger() -> None:
    setup = {**LONG_SETUP, "choch": 0.0, "fvg_new": 1.0, "m15_premium_discount": 0.1}
    matrix = feature_matrix(setup)
    assert run(matrix).count == 0
    assert run(matrix, relaxed=True).direction.tolist() == [1]


def test_relaxed_mode_still_needs_its_lower_minimum_score() -> None:
    # h1 10 + break 10 + m15 10 = 30 points < 45.
    setup = {"h1_trend": 1.0, "m15_trend": 1.0, "bos": 1.0}
    assert run(feature_matrix(setup), relaxed=True).count == 0


def test_a_fresh_touch_of_the_same_bullish_gap_is_a_trigger() -> None:
    base = {**BULL_BIAS, "h1_premium_discount": 0.3, "premium_discount": 0.2}
    touched = {**base, "fvg_bull_touched": 1.0, "fvg_bull_age": 11.0}
    signals = run(feature_matrix(base, touched))
    # d1 15 + h1 10 + m15 10 + h1 discount 10 + base discount 5 + gap touch 5.
    assert signals.direction.tolist() == [0, 1]
    assert signals.score[1] == 0.55


def test_a_touched_gap_that_is_not_the_one_of_the_previous_candle_is_no_trigger() -> None:
    base = {**BULL_BIAS, "h1_premium_discount": 0.3, "premium_discount": 0.2}
    other_gap = {**base, "fvg_bull_touched": 1.0, "fvg_bull_age": 40.0}
    still_touched = {**base, "fvg_bull_touched": 1.0, "fvg_bull_age": 41.0}
    assert run(feature_matrix(base, other_gap, still_touched)).count == 0


def test_a_sell_side_liquidity_sweep_is_a_long_trigger_and_a_buy_side_one_a_short() -> None:
    long_row = {**BULL_BIAS, "h1_premium_discount": 0.3, "liq_sweep": 1.0}
    short_row = {**BEAR_BIAS, "h1_premium_discount": 0.7, "liq_sweep": -1.0}
    wrong_way = {**BULL_BIAS, "h1_premium_discount": 0.3, "liq_sweep": -1.0}
    signals = run(feature_matrix(long_row, short_row, wrong_way))
    assert signals.direction.tolist() == [1, -1, 0]


def test_an_invalid_feature_row_gives_no_signal() -> None:
    signals = run(feature_matrix(LONG_SETUP, LONG_SETUP, invalid=(0,)), relaxed=True)
    assert signals.direction.tolist() == [0, 1]


def test_every_strict_signal_is_a_relaxed_signal_with_the_same_score() -> None:
    rng = np.random.default_rng(7)
    rows = []
    for _ in range(2000):
        rows.append(
            {
                "d1_trend": float(rng.choice([-1, 0, 1])),
                "h1_trend": float(rng.choice([-1, 0, 1])),
                "m15_trend": float(rng.choice([-1, 1])),
                "d1_premium_discount": float(rng.uniform(-0.5, 1.5)),
                "h1_premium_discount": float(rng.uniform(-0.5, 1.5)),
                "m15_premium_discount": float(rng.uniform(-0.5, 1.5)),
                "premium_discount": float(rng.uniform(-0.5, 1.5)),
                "bos": float(rng.choice([-1, 0, 0, 0, 1])),
                "choch": float(rng.choice([-1, 0, 0, 0, 1])),
                "liq_sweep": float(rng.choice([-1, 0, 0, 0, 1])),
                "fvg_new": float(rng.choice([-1, 0, 1])),
            }
        )
    matrix = feature_matrix(*rows)
    strict, relaxed = run(matrix), run(matrix, relaxed=True)
    chosen = strict.direction != 0
    assert 0 < strict.count < relaxed.count
    assert np.array_equal(relaxed.direction[chosen], strict.direction[chosen])
    assert np.array_equal(relaxed.score[chosen], strict.score[chosen])


def test_smc_without_a_feature_matrix_is_refused() -> None:
    with pytest.raises(StrategyError, match="needs the feature matrix"):
        Smc().signals(candles_of([1.0, 2.0]), None)


def test_smc_on_features_without_hourly_context_names_the_missing_columns() -> None:
    matrix = feature_matrix(LONG_SETUP, context=("1d",))
    with pytest.raises(StrategyError, match="h1_trend"):
        run(matrix)


def test_on_an_hourly_base_the_hourly_and_fifteen_minute_reads_use_the_base_columns() -> None:
    schema = build_schema(FeatureConfig.for_timeframe("1h"))
    matrix = FeatureMatrix(
        schema, np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros((0, len(schema.names)))
    )
    columns = smc_columns(matrix)
    assert columns.h1_trend == columns.m15_trend == schema.names.index("trend")
    assert columns.d1_trend == schema.names.index("d1_trend")
    assert set(SmcColumns._fields) == set(columns._asdict())


def test_a_relaxed_minimum_above_the_strict_minimum_is_refused() -> None:
    with pytest.raises(StrategyError, match="relaxed_min_score <= min_score"):
        SmcParams(min_score=0.4, relaxed_min_score=0.5)
