"""The retraining policy and the champion/challenger rule."""

from __future__ import annotations

import math

import pytest

from slt.learning.retraining import RetrainPolicy, WindowScores, judge

HOUR = 3_600_000


@pytest.mark.parametrize(
    ("closed", "last", "now", "due"),
    [
        (49, None, 0, False),  # not enough new virtual trades
        (50, None, 0, True),  # enough, never trained
        (50, 0, HOUR - 1, False),  # enough, but too soon
        (50, 0, HOUR, True),
    ],
)
def test_a_retrain_is_due_after_enough_new_trades_and_enough_time(
    closed: int, last: int | None, now: int, due: bool
) -> None:
    assert RetrainPolicy(min_new_trades=50, min_interval_ms=HOUR).due(closed, last, now) is due


def test_a_disabled_policy_is_never_due() -> None:
    assert not RetrainPolicy(enabled=False).due(10**6, None, 10**12)


def test_a_challenger_replaces_the_champion_only_when_better_on_log_loss_and_not_worse_on_auc() -> (
    None
):
    champion = WindowScores(500, 0.60, 0.66)
    assert judge(WindowScores(500, 0.61, 0.65), None).promote
    assert judge(WindowScores(500, 0.61, 0.65), champion).promote
    assert judge(WindowScores(500, 0.60, 0.65), champion).promote  # AUC equal: not worse
    worse_auc = judge(WindowScores(500, 0.59, 0.65), champion)
    assert not worse_auc.promote and "AUC 0.5900 is below the champion's 0.6000" in worse_auc.reason
    worse_loss = judge(WindowScores(500, 0.70, 0.66), champion)
    assert not worse_loss.promote and "log-loss" in worse_loss.reason
    one_class = judge(WindowScores(500, math.nan, 0.30), champion)
    assert one_class.promote  # no AUC in a one-class window: log-loss decides


def test_the_policy_comes_from_the_settings_and_disable_model_training_turns_it_off() -> None:
    from slt.runtime.config import Settings
    from slt.runtime.retrainer import policy_from

    policy = policy_from(Settings(retrain_min_trades=80, retrain_interval_minutes=15))
    assert (policy.min_new_trades, policy.min_interval_ms, policy.enabled) == (80, 900_000, True)
    assert policy_from(Settings(disable_model_training=True)).enabled is False
