"""Walk-forward learning on generated markets: nothing learned where there is nothing to
learn, an edge found where one is planted, the same report for the same seed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from slt.adapters.report.report_json import json_safe
from slt.engine.walkforward import WalkForwardSettings, run_walkforward
from slt.engine.walkforward_report import walkforward_report
from slt.learning.model import ModelParams
from slt.runtime.trading_config import TradingConfig
from tests.integration.learning.markets import FEATURES, FIVE_MIN, START_MS, N, prepared

CONFIG = TradingConfig.model_validate({"costs": {"funding": False}}).engine()
SETTINGS = WalkForwardSettings(
    train_days=30, test_days=14, model=ModelParams(n_estimators=100, threads=1)
)
END_MS = START_MS + N * FIVE_MIN


def walk(edge: float, seed: int) -> dict[str, object]:
    data, features, signals = prepared(edge, seed)
    result = run_walkforward(data, features, FEATURES, signals, CONFIG, SETTINGS, END_MS)
    report: dict[str, object] = json_safe(walkforward_report(result, {"seed": seed}))
    return report


@pytest.mark.parametrize("seed", [11, 12])
def test_on_a_random_walk_the_out_of_sample_auc_is_a_coin_flip_and_nothing_is_significant(
    seed: int,
) -> None:
    overall = walk(0.0, seed)["overall"]
    assert isinstance(overall, dict)
    scores, deflated = overall["scores"], overall["deflated_sharpe_ml_filtered"]
    assert scores["n"] > 3_000  # enough out-of-sample predictions for the bound to mean much
    assert abs(scores["auc"] - 0.5) <= 0.05
    assert deflated["significant"] is False


def test_a_planted_edge_is_found_out_of_sample_and_the_filter_beats_the_raw_strategy() -> None:
    overall = walk(0.0005, 21)["overall"]
    assert isinstance(overall, dict)
    strategies = overall["strategies"]
    assert overall["scores"]["auc"] >= 0.6
    assert strategies["ml_filtered"]["return_pct"] > strategies["unfiltered"]["return_pct"]
    assert strategies["ml_filtered"]["trades"] > 0
    assert overall["deflated_sharpe_ml_filtered"]["significant"] is True


def test_the_same_seed_gives_the_same_models_and_the_same_report() -> None:
    first = json.dumps(walk(0.0003, 31), sort_keys=True)
    second = json.dumps(walk(0.0003, 31), sort_keys=True)
    assert first == second


def test_each_fold_learns_only_from_virtual_trades_closed_before_it() -> None:
    data, features, signals = prepared(0.0003, 41)
    result = run_walkforward(data, features, FEATURES, signals, CONFIG, SETTINGS, END_MS)
    for fold in result.folds:
        if fold.model is None:
            continue
        assert fold.model.summary.train_end_ms < fold.fold.start_ms
        known = result.examples.closed_before(fold.fold.start_ms)
        assert fold.n_train <= len(known)
        assert np.all(features.open_time_ms[fold.signal_index] + FIVE_MIN >= fold.fold.start_ms)
