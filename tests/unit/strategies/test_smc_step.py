"""smc as a step over explicit state: on hand-made rows the batch kernel, the step and the stream
agree bit for bit with a plain-Python reading of the documented rules."""

from __future__ import annotations

import numpy as np
import pytest

from slt.domain.features.matrix import FeatureMatrix
from slt.domain.strategies.base import StrategyError
from slt.domain.strategies.smc import Smc, SmcParams, smc_columns
from slt.domain.strategies.smc_nb import smc_state_nb, smc_step_nb
from slt.errors import InvalidSeriesError
from tests.unit.strategies.feature_rows import FIVE_MINUTES_MS, candles_of, feature_matrix
from tests.unit.strategies.smc_reference import LOCATION, reference


def random_rows(n: int, seed: int) -> FeatureMatrix:
    """Rows that reach every branch: both sides, NaNs, zones that age, get touched or change,
    and invalid rows between them."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, float]] = []
    ages = {zone: 5.0 for zone in ("fvg_bull", "fvg_bear", "ob_bull", "ob_bear")}
    touched = dict.fromkeys(ages, 0.0)
    for _ in range(n):
        row = {
            name: float(rng.choice([-1, 0, 1], p=[0.4, 0.2, 0.4]))
            for name in ("d1_trend", "h1_trend", "m15_trend")
        }
        for name in (*LOCATION, "h1_fvg_bull_dist_atr", "h1_fvg_bear_dist_atr"):
            row[name] = float(rng.uniform(-1.0, 2.0)) if rng.random() > 0.1 else np.nan
        for name in ("h1_liq_buy_dist_atr", "h1_liq_sell_dist_atr"):
            row[name] = float(rng.uniform(0.0, 8.0)) if rng.random() > 0.1 else np.nan
        for name in ("bos", "choch", "liq_sweep", "fvg_new"):
            row[name] = float(rng.choice([-1, 0, 1], p=[0.1, 0.8, 0.1]))
        for zone in ages:
            change = rng.random()
            if change < 0.1:  # a new nearest zone, touched or not
                ages[zone], touched[zone] = float(rng.integers(0, 30)), float(rng.random() < 0.3)
            else:  # the same zone, one bar older, maybe touched now
                ages[zone] += 1.0
                touched[zone] = 1.0 if touched[zone] or rng.random() < 0.15 else 0.0
            if rng.random() < 0.05:  # price left the zone: untouched again (a later touch)
                touched[zone] = 0.0
            row[f"{zone}_age"], row[f"{zone}_touched"] = ages[zone], touched[zone]
        rows.append(row)
    invalid = tuple(int(i) for i in rng.choice(n, size=n // 20, replace=False))
    return feature_matrix(*rows, invalid=invalid)


def stream_all(strategy: Smc, matrix: FeatureMatrix) -> list[tuple[int, float]]:
    stream = strategy.stream(matrix.schema)
    return [
        stream.update(i * FIVE_MINUTES_MS, 1.0, 1.0, 1.0, 1.0, 1.0, matrix.values[i].copy(), r)
        for i, r in enumerate(matrix.reason.tolist())
    ]


@pytest.mark.parametrize("relaxed", [False, True])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_batch_kernel_follows_the_documented_rules_on_random_rows(
    relaxed: bool, seed: int
) -> None:
    matrix, params = random_rows(3_000, seed), SmcParams(relaxed=relaxed)
    signals = Smc(params).signals(candles_of(np.ones(len(matrix))), matrix)
    direction, score = reference(matrix, params)
    assert signals.direction.tolist() == direction
    assert signals.score.tolist() == score
    assert signals.count > (100 if relaxed else 20)


@pytest.mark.parametrize("relaxed", [False, True])
def test_the_stream_gives_every_row_of_the_batch_signals(relaxed: bool) -> None:
    matrix, strategy = random_rows(3_000, 4), Smc(SmcParams(relaxed=relaxed))
    signals = strategy.signals(candles_of(np.ones(len(matrix))), matrix)
    rows = stream_all(strategy, matrix)
    assert rows == list(zip(signals.direction.tolist(), signals.score.tolist(), strict=True))
    assert all(type(d) is int and type(s) is float for d, s in rows)


def test_the_step_kernel_called_row_by_row_gives_the_reference() -> None:
    matrix, params = random_rows(500, 5), SmcParams(relaxed=True)
    columns, kernel_params, state = smc_columns(matrix), params.kernel(), smc_state_nb()
    stepped = [
        smc_step_nb(state, matrix.values[i], int(matrix.reason[i]), columns, kernel_params)
        for i in range(len(matrix))
    ]
    direction, score = reference(matrix, params)
    assert stepped == list(zip(direction, score, strict=True))


def test_a_gap_touched_right_after_an_invalid_row_is_no_fresh_touch() -> None:
    bias = {"d1_trend": 1.0, "h1_trend": 1.0, "m15_trend": 1.0, "h1_premium_discount": 0.3}
    untouched = {**bias, "premium_discount": 0.2, "fvg_bull_touched": 0.0, "fvg_bull_age": 10.0}
    touched = {**untouched, "fvg_bull_touched": 1.0, "fvg_bull_age": 12.0}
    matrix = feature_matrix(untouched, untouched, touched, invalid=(1,))
    assert Smc().signals(candles_of(np.ones(3)), matrix).count == 0
    assert [d for d, _ in stream_all(Smc(), matrix)] == [0, 0, 0]


def test_an_smc_stream_needs_the_schema_of_its_rows() -> None:
    with pytest.raises(StrategyError, match="FeatureSchema"):
        Smc().stream(None)


def test_an_smc_stream_refuses_a_row_of_another_width_or_none() -> None:
    matrix = feature_matrix({})
    stream = Smc().stream(matrix.schema)
    width = len(matrix.schema.names)
    with pytest.raises(StrategyError, match=rf"{width} columns \(got shape \(3,\)\)"):
        stream.update(0, 1.0, 1.0, 1.0, 1.0, 1.0, np.zeros(3), 0)
    with pytest.raises(StrategyError, match=r"\(got none\)"):
        stream.update(0, 1.0, 1.0, 1.0, 1.0, 1.0, None, 0)


def test_an_smc_stream_refuses_a_candle_out_of_time_order() -> None:
    matrix = feature_matrix({}, {})
    stream = Smc().stream(matrix.schema)
    stream.update(FIVE_MINUTES_MS, 1.0, 1.0, 1.0, 1.0, 1.0, matrix.values[0], 0)
    with pytest.raises(InvalidSeriesError, match="in time order"):
        stream.update(0, 1.0, 1.0, 1.0, 1.0, 1.0, matrix.values[1], 0)
