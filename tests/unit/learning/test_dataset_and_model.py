"""Model inputs are the feature engine's columns plus direction, nothing else; models train
deterministically, calibrate on later data and refuse another feature engine."""

from __future__ import annotations

import numpy as np
import pytest

from slt.learning.dataset import DIRECTION, Examples, InputSchema, LeakError, build_examples
from slt.learning.model import ModelError, ModelParams, load_model, train_model

NAMES = ("rsi", "atr_pct", "return_atr")
SCHEMA = InputSchema(NAMES, "a" * 64)
HOUR = 3_600_000


def examples(n: int = 2_000, seed: int = 0, extra: str | None = None) -> Examples:
    """Wins more likely for longs when rsi is low: something learnable."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, len(NAMES)))
    direction = np.where(rng.random(n) < 0.5, 1, -1).astype(np.int8)
    won = rng.random(n) < 1 / (1 + np.exp(1.5 * values[:, 0] * direction))
    returns = np.where(won, 3.0, -1.5)
    decided = np.arange(n, dtype=np.int64) * 300_000
    names: tuple[str, ...] = (*NAMES, DIRECTION)
    if extra is not None:
        values = np.column_stack([values, returns])
        names = (*NAMES, extra, DIRECTION)
    return build_examples(
        values, names, SCHEMA, np.arange(n), direction, won, returns, returns / 1.5,
        decided, decided + 2 * HOUR,
    )  # fmt: skip


@pytest.mark.parametrize("column", ["return_pct", "exit_price", "pnl", "won", "reward"])
def test_an_outcome_column_among_the_inputs_is_refused(column: str) -> None:
    with pytest.raises(LeakError, match=f"input column '{column}' looks like a trade outcome"):
        examples(extra=column)


def test_a_column_the_feature_engine_did_not_make_is_refused() -> None:
    with pytest.raises(LeakError, match=r"extra: \['my_signal'\]"):
        examples(extra="my_signal")


def test_feature_columns_named_like_outcomes_are_accepted_when_the_schema_has_them() -> None:
    assert len(examples()) == 2_000  # "return_atr" is a feature (the last candle's return)


def test_a_label_dated_before_its_decision_is_refused() -> None:
    with pytest.raises(LeakError, match="dated before its decision"):
        build_examples(
            np.zeros((1, 3)), (*NAMES, DIRECTION), SCHEMA, np.array([0]),
            np.array([1], np.int8), np.array([True]), np.array([1.0]), np.array([1.0]),
            np.array([10]), np.array([5]),
        )  # fmt: skip


def test_training_learns_the_signal_and_the_same_seed_gives_the_same_model() -> None:
    data = examples()
    first = train_model(data, ModelParams(n_estimators=60, threads=1), embargo_ms=4 * HOUR)
    second = train_model(data, ModelParams(n_estimators=60, threads=1), embargo_ms=4 * HOUR)
    fresh = examples(seed=1)
    p_first, expected = first.predict(fresh.inputs)
    p_second, _ = second.predict(fresh.inputs)

    assert first.to_bytes() == second.to_bytes()
    np.testing.assert_array_equal(p_first, p_second)
    assert ((p_first > 0.5) == fresh.won).mean() > 0.65
    assert np.corrcoef(expected, fresh.return_pct)[0, 1] > 0.3


def test_the_trees_never_see_labels_that_overlap_the_calibration_slice() -> None:
    data = examples()
    model = train_model(data, ModelParams(n_estimators=20, threads=1), embargo_ms=4 * HOUR)
    summary = model.summary
    assert summary.n_calibration == 400
    # two-hour labels and a four-hour embargo before the first calibration decision
    assert summary.n_purged == (2 * HOUR + 4 * HOUR) // 300_000
    assert summary.n_fit + summary.n_purged + summary.n_calibration == len(data)


def test_a_stored_model_reloads_identically_and_refuses_another_feature_schema() -> None:
    data = examples()
    model = train_model(data, ModelParams(n_estimators=20, threads=1), embargo_ms=HOUR)
    stored = model.to_bytes()

    again = load_model(stored, "a" * 64)
    np.testing.assert_array_equal(again.predict(data.inputs)[0], model.predict(data.inputs)[0])
    with pytest.raises(ModelError, match="trained on feature schema aaaaaaaaaaaa, the running"):
        load_model(stored, "b" * 64)
    with pytest.raises(ModelError, match="not a stored confidence model"):
        load_model(b"garbage", "a" * 64)


def test_too_few_examples_or_a_single_class_is_refused_with_the_reason() -> None:
    with pytest.raises(ModelError, match="at least 50 are needed"):
        train_model(examples(n=20), ModelParams(threads=1), embargo_ms=HOUR)
    data = examples()
    one_class = Examples(
        data.inputs, np.zeros(len(data), bool), data.return_pct, data.reward,
        data.decision_time_ms, data.exit_time_ms, data.schema,
    )  # fmt: skip
    with pytest.raises(ModelError, match="single class"):
        train_model(one_class, ModelParams(threads=1), embargo_ms=HOUR)


def test_a_model_trained_on_two_threads_scores_on_one() -> None:
    """One signal is one row: OpenMP workers left spinning after a call would take the core a
    retrain worker runs on. Training, and big research batches, use the threads asked for."""
    import json

    data = examples()
    model = train_model(data, ModelParams(n_estimators=20, threads=2), embargo_ms=HOUR)
    again = load_model(model.to_bytes(), "a" * 64)
    batch = np.repeat(data.inputs, 3, axis=0)  # 6,000 rows: scored on two threads
    np.testing.assert_array_equal(
        model.predict(batch)[0], np.repeat(model.confidence(data.inputs), 3)
    )
    for booster in (model.classifier, model.regressor, again.classifier, again.regressor):
        config = json.loads(booster.save_config())
        assert config["learner"]["generic_param"]["nthread"] == "1"
    np.testing.assert_array_equal(again.confidence(data.inputs), model.confidence(data.inputs))
