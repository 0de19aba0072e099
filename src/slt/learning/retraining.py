"""When to retrain, and whether a new model replaces the champion.

A retrain is due when at least ``min_new_trades`` virtual trades closed since the last one and
``min_interval_ms`` passed. The challenger learns from everything closed before the most recent
window (minus the embargo); both it and the champion are scored on that window, which neither
learned from, and the challenger replaces the champion only if it is better on log-loss and
not worse on AUC.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from slt.learning.dataset import Examples
from slt.learning.model import ModelError, ModelParams, load_model, train_model
from slt.learning.scoring import log_loss, roc_auc


@dataclass(frozen=True)
class RetrainPolicy:
    min_new_trades: int = 50
    min_interval_ms: int = 60 * 60_000
    enabled: bool = True

    def due(self, closed_since_last: int, last_train_ms: int | None, now_ms: int) -> bool:
        if not self.enabled or closed_since_last < self.min_new_trades:
            return False
        return last_train_ms is None or now_ms - last_train_ms >= self.min_interval_ms


@dataclass(frozen=True)
class WindowScores:
    n: int
    auc: float  # NaN with one class in the window
    log_loss: float


@dataclass(frozen=True)
class Verdict:
    promote: bool
    reason: str


def judge(challenger: WindowScores, champion: WindowScores | None) -> Verdict:
    """Champion/challenger rule on the most recent out-of-sample window."""
    if champion is None:
        return Verdict(True, "no champion yet")
    if not challenger.log_loss < champion.log_loss:
        return Verdict(
            False,
            f"log-loss {challenger.log_loss:.4f} is not below the champion's "
            f"{champion.log_loss:.4f}",
        )
    both = math.isfinite(challenger.auc) and math.isfinite(champion.auc)
    if both and challenger.auc < champion.auc:
        return Verdict(
            False, f"AUC {challenger.auc:.4f} is below the champion's {champion.auc:.4f}"
        )
    return Verdict(True, "better log-loss, AUC not worse")


@dataclass(frozen=True)
class RetrainResult:
    model: bytes
    challenger: WindowScores
    champion: WindowScores | None
    verdict: Verdict
    n_learned: int
    cumulative_reward: float
    train_start_ms: int
    train_end_ms: int
    worker_pid: int  # the process that trained: not the trading loop's


def _scores(won: np.ndarray, p: np.ndarray) -> WindowScores:
    return WindowScores(len(won), roc_auc(won, p), log_loss(won, p))


def retrain(
    examples: Examples,
    params: ModelParams,
    embargo_ms: int,
    champion: bytes | None,
    window_fraction: float = 0.2,
) -> RetrainResult:
    """Train a challenger and judge it against ``champion`` (stored bytes); runs in a worker
    process, so everything in and out is plain data."""
    if len(examples) < params.min_examples:
        raise ModelError(
            f"{len(examples)} closed virtual trades of this feature schema are stored, at least "
            f"{params.min_examples} are needed (`slt walkforward --store` or paper trading adds "
            "them)"
        )
    n_window = max(1, round(len(examples) * window_fraction))
    window = examples.subset(np.arange(len(examples) - n_window, len(examples)))
    window_start = int(window.decision_time_ms[0])
    learnable = examples.closed_before(window_start - embargo_ms)
    model = train_model(learnable, params, embargo_ms)
    challenger = _scores(window.won, model.confidence(window.inputs))
    held: WindowScores | None = None
    if champion is not None:
        try:
            current = load_model(champion, examples.schema.feature_schema_hash)
            held = _scores(window.won, current.confidence(window.inputs))
        except ModelError:
            held = None  # a champion of another feature engine cannot defend its title
    return RetrainResult(
        model=model.to_bytes(),
        challenger=challenger,
        champion=held,
        verdict=judge(challenger, held),
        n_learned=len(learnable),
        cumulative_reward=float(learnable.reward.sum()),
        train_start_ms=int(learnable.decision_time_ms[0]),
        train_end_ms=int(learnable.exit_time_ms.max()),
        worker_pid=os.getpid(),
    )
