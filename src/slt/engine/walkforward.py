"""Walk-forward learning: for each fold, learn only from virtual trades closed before it, then
trade it with the engine, the model scoring each signal.

Every signal opens a virtual position (``virtual_outcomes``); its outcome is a label. Fold k's
model sees only examples whose label was known before fold k starts, so its scores on fold k
are out of sample. The ML-filtered strategy, the same strategy unfiltered and buy-and-hold
run over the same span with the same engine, costs and funding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from slt.domain.features.config import FeatureConfig
from slt.domain.features.matrix import FeatureMatrix
from slt.domain.metrics import compute_metrics, daily_returns
from slt.domain.results import BacktestResult, MarketData
from slt.domain.strategies.base import Signals
from slt.engine.backtest import ModelChange, run_portfolio
from slt.engine.config import EngineConfig
from slt.engine.pipeline import ScoredSignals, gated, scored
from slt.engine.virtual import VirtualOutcomes, candle_outcomes
from slt.errors import SltError
from slt.learning.dataset import (
    DIRECTION,
    Examples,
    InputSchema,
    build_examples,
    model_inputs,
)
from slt.learning.model import ConfidenceModel, ModelError, ModelParams, train_model
from slt.learning.scoring import (
    DeflatedSharpe,
    brier_score,
    calibration_table,
    deflated_sharpe,
    log_loss,
    roc_auc,
)
from slt.learning.validation import Fold, embargo_ms, walk_forward_folds

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Progress = Callable[[str, dict[str, Any]], None]


class WalkForwardError(SltError):
    """A walk-forward that cannot run on these inputs."""


@dataclass(frozen=True)
class WalkForwardSettings:
    train_days: int = 60
    test_days: int = 14
    model: ModelParams = field(default_factory=ModelParams)
    trials: int = 1  # configurations tried before this one, for the deflated Sharpe ratio


@dataclass(frozen=True)
class FoldResult:
    fold: Fold
    n_train: int
    model: ConfidenceModel | None
    skipped: str | None  # why no model was trained for this fold
    signal_index: I64  # the fold's signals (base-candle index)
    p_win: F64  # calibrated P(win) per signal (NaN without a model)
    expected_return_pct: F64
    won: npt.NDArray[np.bool_]  # the virtual outcome (labels, for scoring only)
    closed: npt.NDArray[np.bool_]
    traded: npt.NDArray[np.bool_]  # passed the filter
    break_even_p: float  # P(win) a signal had to beat, from the outcomes learned from


@dataclass(frozen=True)
class WalkForwardResult:
    folds: tuple[FoldResult, ...]
    filtered: BacktestResult
    unfiltered: BacktestResult
    buy_and_hold: BacktestResult
    outcomes: VirtualOutcomes
    examples: Examples
    embargo_ms: int
    deflated: DeflatedSharpe
    settings: WalkForwardSettings


def break_even_probability(examples: Examples) -> float:
    """The win rate at which the average win pays for the average loss, from past outcomes
    only: a signal is worth taking when the model's P(win) is above it."""
    wins = examples.return_pct[examples.return_pct > 0]
    losses = -examples.return_pct[examples.return_pct <= 0]
    if len(wins) == 0 or len(losses) == 0:
        return 1.0  # nothing to compare: trade nothing
    average_win, average_loss = float(wins.mean()), float(losses.mean())
    return average_loss / (average_win + average_loss)


def examples_from_outcomes(
    features: FeatureMatrix, outcomes: VirtualOutcomes, decision_ms: I64
) -> tuple[Examples, InputSchema]:
    """The closed virtual trades as training examples: the feature row each signal saw at its
    candle's close (``decision_ms``), plus its direction; outcomes become labels only."""
    schema = InputSchema(features.schema.names, features.schema.hash)
    closed = np.flatnonzero(outcomes.closed)
    examples = build_examples(
        features.values,
        (*features.schema.names, DIRECTION),
        schema,
        outcomes.signal_index[closed],
        outcomes.direction[closed],
        outcomes.won[closed],
        outcomes.return_pct[closed],
        outcomes.reward[closed],
        decision_ms[outcomes.signal_index[closed]],
        outcomes.exit_time_ms[closed],
    )
    return examples, schema


def run_walkforward(
    data: MarketData,
    features: FeatureMatrix,
    feature_config: FeatureConfig,
    signals: Signals,
    config: EngineConfig,
    settings: WalkForwardSettings,
    end_ms: int,
    progress: Progress | None = None,
) -> WalkForwardResult:
    """``data.start_ms`` is where learning starts; the first fold starts ``train_days`` later."""
    candles = data.candles
    if len(features) != len(candles) or len(signals) != len(candles):
        raise WalkForwardError("features and signals must have one row per candle")
    report = progress or (lambda _event, _fields: None)
    tf = candles.key.timeframe_ms
    folds = walk_forward_folds(data.start_ms, end_ms, settings.train_days, settings.test_days)
    decision_ms: I64 = candles.open_time_ms + tf
    in_span = (candles.open_time_ms >= data.start_ms) & (candles.open_time_ms < end_ms)
    direction = np.where(in_span, signals.direction, 0).astype(np.int8)
    outcomes = candle_outcomes(candles, direction, config, data.rules.tick_size, data.minute)
    examples, _schema = examples_from_outcomes(features, outcomes, decision_ms)
    embargo = embargo_ms(config.exits.max_holding_ms, feature_config)
    p_win_all = np.full(len(candles), np.nan)
    p_star_all = np.full(len(candles), np.nan)
    results = []
    for fold in folds:
        learnable = examples.closed_before(fold.start_ms)
        learnable = learnable.subset(
            np.flatnonzero(learnable.decision_time_ms >= fold.train_start_ms)
        )
        model, skipped = None, None
        try:
            model = train_model(learnable, settings.model, embargo)
        except ModelError as exc:
            skipped = str(exc)
        p_star = break_even_probability(learnable)
        mine = (decision_ms[outcomes.signal_index] >= fold.start_ms) & (
            decision_ms[outcomes.signal_index] < fold.end_ms
        )
        rows = np.flatnonzero(mine)
        index = outcomes.signal_index[rows]
        if model is not None and len(rows):
            p_win, expected = model.predict(
                model_inputs(features.values[index], outcomes.direction[rows])
            )
        else:
            p_win, expected = np.full(len(rows), np.nan), np.full(len(rows), np.nan)
        traded = np.nan_to_num(p_win, nan=0.0) > p_star
        p_win_all[index] = p_win
        p_star_all[index] = p_star
        results.append(
            FoldResult(
                fold,
                len(learnable),
                model,
                skipped,
                index,
                p_win,
                expected,
                outcomes.won[rows],
                outcomes.closed[rows],
                traded,
                p_star,
            )
        )
        report(
            "fold",
            {
                "fold": fold.index + 1,
                "of": len(folds),
                "learning_count": len(learnable),
                "cumulative_score": float(learnable.reward.sum()),
            },
        )
    span = _until(replace(data, start_ms=folds[0].start_ms), end_ms)
    before_end = candles.open_time_ms < end_ms
    base = scored(signals, candles, config.stops)
    everything = ScoredSignals(
        *(getattr(base, f)[before_end] for f in ScoredSignals.__dataclass_fields__)
    )
    span_direction = np.where(in_span[before_end], everything.direction, 0).astype(np.int8)
    unfiltered_signals = replace(everything, direction=span_direction)
    filtered_signals = gated(unfiltered_signals, p_win_all[before_end], p_star_all[before_end])
    changes = [ModelChange(f.start_ms, k + 1) for k, f in enumerate(folds)]
    filtered, _, _ = run_portfolio([span], [filtered_signals], config, model_changes=changes)
    unfiltered, _, _ = run_portfolio([span], [unfiltered_signals], config)
    hold = buy_and_hold(unfiltered)
    deflated = deflated_sharpe(daily_returns(filtered), settings.trials)
    return WalkForwardResult(
        tuple(results), filtered, unfiltered, hold, outcomes, examples, embargo,
        deflated, settings,
    )  # fmt: skip


def _until(data: MarketData, end_ms: int) -> MarketData:
    keep = data.candles.open_time_ms < end_ms
    return replace(data, candles=data.candles.take(keep))


def buy_and_hold(like: BacktestResult) -> BacktestResult:
    """Bought at the first bar's close and held to the end, without costs or funding."""
    close = like.close
    equity = like.initial_equity * close / close[0] if len(close) else close
    return replace(
        like, trades=(), equity=np.asarray(equity, dtype=np.float64),
        in_position=np.ones(len(close), dtype=np.bool_),
    )  # fmt: skip


def window(result: BacktestResult, start_ms: int, end_ms: int) -> BacktestResult:
    """The part of a run inside ``[start_ms, end_ms)``, starting from the equity it had then."""
    bars = (result.bar_open_time_ms >= start_ms) & (result.bar_open_time_ms < end_ms)
    first = int(np.argmax(bars)) if bars.any() else 0
    initial = float(result.equity[first - 1]) if first > 0 else result.initial_equity
    return replace(
        result,
        initial_equity=initial,
        trades=tuple(t for t in result.trades if start_ms <= t.entry_time_ms < end_ms),
        equity_time_ms=result.equity_time_ms[bars],
        equity=result.equity[bars],
        in_position=result.in_position[bars],
        close=result.close[bars],
        bar_open_time_ms=result.bar_open_time_ms[bars],
    )


def strategy_summary(result: BacktestResult, trades: int | None = None) -> dict[str, Any]:
    m = compute_metrics(result)
    return {
        "return_pct": m["total_return_pct"],
        "sharpe": m["sharpe"],
        "max_drawdown_pct": m["max_drawdown_pct"],
        "trades": m["n_trades"] if trades is None else trades,
    }


def prediction_scores(won: npt.NDArray[np.bool_], p_win: F64) -> dict[str, Any]:
    """AUC, Brier, log-loss and the calibration table of out-of-sample predictions."""
    known = np.isfinite(p_win)
    y, p = won[known], p_win[known]
    if len(y) == 0:
        return {"n": 0, "auc": None, "brier": None, "log_loss": None, "calibration": []}
    auc = roc_auc(y, p)
    return {
        "n": len(y),
        "auc": None if np.isnan(auc) else auc,
        "brier": brier_score(y, p),
        "log_loss": log_loss(y, p),
        "calibration": [asdict(b) for b in calibration_table(y, p)],
    }
