"""The walk-forward report as plain data: per fold and overall, model scores beside the
ML-filtered strategy, the same strategy unfiltered and buy-and-hold."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from slt.domain.clock import format_utc_ms
from slt.engine.walkforward import (
    FoldResult,
    WalkForwardResult,
    prediction_scores,
    strategy_summary,
    window,
)
from slt.learning.scoring import SIGNIFICANT_DSR

REPORT_KIND = "walkforward"
REPORT_VERSION = 1


def _strategies(result: WalkForwardResult, start_ms: int, end_ms: int) -> dict[str, Any]:
    return {
        "ml_filtered": strategy_summary(window(result.filtered, start_ms, end_ms)),
        "unfiltered": strategy_summary(window(result.unfiltered, start_ms, end_ms)),
        "buy_and_hold": strategy_summary(window(result.buy_and_hold, start_ms, end_ms), 1),
    }


def _fold(result: WalkForwardResult, f: FoldResult) -> dict[str, Any]:
    model = f.model
    return {
        "fold": f.fold.index + 1,
        "train_start": format_utc_ms(f.fold.train_start_ms),
        "start": format_utc_ms(f.fold.start_ms),
        "end": format_utc_ms(f.fold.end_ms),
        "virtual_trades_learned": f.n_train,
        "model": None if model is None else asdict(model.summary),
        "skipped": f.skipped,
        "signals": len(f.signal_index),
        "signals_traded": int(f.traded.sum()),
        "break_even_p_win": f.break_even_p,
        "scores": prediction_scores(f.won[f.closed], f.p_win[f.closed]),
        "strategies": _strategies(result, f.fold.start_ms, f.fold.end_ms),
    }


def walkforward_report(result: WalkForwardResult, run: dict[str, Any]) -> dict[str, Any]:
    """Everything report.json holds; ``run`` says what was run (symbol, span, config, data)."""
    folds = result.folds
    start, end = folds[0].fold.start_ms, folds[-1].fold.end_ms
    closed = np.concatenate([f.closed for f in folds])
    won = np.concatenate([f.won for f in folds])[closed]
    p_win = np.concatenate([f.p_win for f in folds])[closed]
    examples = result.examples
    return {
        "kind": REPORT_KIND,
        "version": REPORT_VERSION,
        "run": run,
        "overall": {
            "start": format_utc_ms(start),
            "end": format_utc_ms(end),
            "virtual_trades": len(examples),
            "virtual_trades_won": int(examples.won.sum()),
            "cumulative_reward": float(examples.reward.sum()),
            "folds_with_model": sum(f.model is not None for f in folds),
            "embargo_hours": result.embargo_ms / 3_600_000,
            "scores": prediction_scores(won, p_win),
            "strategies": _strategies(result, start, end),
            "deflated_sharpe_ml_filtered": {
                **asdict(result.deflated),
                "threshold": SIGNIFICANT_DSR,
            },
        },
        "folds": [_fold(result, f) for f in folds],
        "equity": {
            "time_ms": result.filtered.equity_time_ms.tolist(),
            "ml_filtered": result.filtered.equity.tolist(),
            "unfiltered": result.unfiltered.equity.tolist(),
            "buy_and_hold": result.buy_and_hold.equity.tolist(),
        },
    }
