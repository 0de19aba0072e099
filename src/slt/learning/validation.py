"""Time-ordered validation: walk-forward folds and the embargo between learning and scoring."""

from __future__ import annotations

from dataclasses import dataclass

from slt.domain.features.config import FeatureConfig
from slt.domain.timeframes import DAY_MS, timeframe_ms
from slt.errors import SltError


class FoldError(SltError):
    """Walk-forward settings that leave no fold to test."""


@dataclass(frozen=True)
class Fold:
    """Learn from virtual trades closed before ``start_ms`` whose decision lies in
    ``[train_start_ms, start_ms)``; trade ``[start_ms, end_ms)``."""

    index: int
    train_start_ms: int
    start_ms: int
    end_ms: int


def confirmation_lag_ms(config: FeatureConfig) -> int:
    """The longest wait before a feature's event is confirmed: a swing needs ``swing_right``
    later candles (plus its own close) on its timeframe."""
    lags = [
        (p.structure.swing_right + 1) * timeframe_ms(p.timeframe)
        for p in (config.base, *config.context)
    ]
    return max(lags)


def embargo_ms(max_holding_ms: int, config: FeatureConfig) -> int:
    """Gap between the last label a model learns from and the first decision it is scored on:
    the longest holding time plus the longest feature confirmation lag."""
    return max_holding_ms + confirmation_lag_ms(config)


def walk_forward_folds(start_ms: int, end_ms: int, train_days: int, test_days: int) -> list[Fold]:
    """Consecutive test windows of ``test_days`` after a first ``train_days`` of learning; the
    last window may be shorter."""
    if train_days <= 0 or test_days <= 0:
        raise FoldError("--train-days and --test-days must be positive")
    first = start_ms + train_days * DAY_MS
    if first >= end_ms:
        raise FoldError(
            f"the span holds no test window: {train_days} training days reach past the end"
        )
    folds: list[Fold] = []
    fold_start = first
    while fold_start < end_ms:
        fold_end = min(fold_start + test_days * DAY_MS, end_ms)
        folds.append(Fold(len(folds), fold_start - train_days * DAY_MS, fold_start, fold_end))
        fold_start = fold_end
    return folds
