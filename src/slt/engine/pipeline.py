"""From a strategy's signals to what the portfolio reducer decides on: stop distance,
confidence and the model's gate, per candle.

One mapping serves the backtest, walk-forward, paper and live trading: a raw score becomes a
confidence of 0.5 + score / 2 until a model scores the signal; a model's calibrated P(win)
becomes the Kelly confidence relative to the break-even win rate, and the signal trades only
above it. Every signal, traded or not, is still followed as a virtual position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from slt.domain.features.config import FeatureConfig
from slt.domain.features.jit import compiled_entry
from slt.domain.features.matrix import FeatureStream
from slt.domain.series import Candles
from slt.domain.strategies.base import Signals, Strategy
from slt.domain.trading.params import StopRule
from slt.domain.trading.stops_nb import stop_distances_nb, stop_state, stop_step_nb
from slt.learning.dataset import model_inputs

F64 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int8]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class ScoredSignals:
    """Per candle: the strategy's direction and raw score, the stop distance in percent (NaN:
    no entry), the confidence sizing reads, whether it may trade, and the model's P(win)
    (NaN without a model)."""

    direction: I8
    score: F64
    stop_pct: F64
    confidence: F64
    gate: Bools
    p_win: F64

    def __len__(self) -> int:
        return len(self.direction)


def confidence_from_score(score: F64) -> F64:
    """Before any model: score 0.5 -> confidence 0.75 -> Kelly 1x."""
    confidence: F64 = 0.5 + np.asarray(score, dtype=np.float64) / 2.0
    return confidence


def sizing_confidence(p_win: F64, p_break_even: float) -> F64:
    """Kelly sizing's confidence from P(win): 0.5 (no size) at break-even, 1.0 (twice the risk)
    at certainty, so the engine's multiplier (conf - 0.5) x 4 reads the model's edge."""
    span = max(1.0 - p_break_even, 1e-9)
    confidence: F64 = np.clip(0.5 + 0.5 * (p_win - p_break_even) / span, 0.0, 1.0)
    return confidence


def stop_distances(stops: StopRule, candles: Candles) -> F64:
    """Stop distance per candle in percent: fixed, or a multiple of ATR within bounds (NaN while
    the ATR warms up: no trade); the loop over ``stop_step_nb``, as the stream calls it."""
    distances: F64 = stop_distances_nb(
        np.ascontiguousarray(candles.high, dtype=np.float64),
        np.ascontiguousarray(candles.low, dtype=np.float64),
        np.ascontiguousarray(candles.close, dtype=np.float64),
        stops,
    )
    return distances


def scored(signals: Signals, candles: Candles, stops: StopRule) -> ScoredSignals:
    """Signals as the reducer takes them, before any model: every signal may trade."""
    n = len(signals)
    return ScoredSignals(
        direction=np.ascontiguousarray(signals.direction, dtype=np.int8),
        score=np.ascontiguousarray(signals.score, dtype=np.float64),
        stop_pct=stop_distances(stops, candles),
        confidence=confidence_from_score(signals.score),
        gate=np.ones(n, dtype=np.bool_),
        p_win=np.full(n, np.nan),
    )


def gated(base: ScoredSignals, p_win: F64, p_break_even: F64) -> ScoredSignals:
    """The model's verdict per candle: trade where P(win) beats the break-even win rate (both
    NaN where no model scored the candle: no trade), sized by the edge."""
    known = np.isfinite(p_win) & np.isfinite(p_break_even)
    gate = known & (np.nan_to_num(p_win, nan=0.0) > np.nan_to_num(p_break_even, nan=1.0))
    confidence = base.confidence.copy()
    for k in np.flatnonzero(gate):
        confidence[k] = sizing_confidence(p_win[k : k + 1], float(p_break_even[k]))[0]
    return ScoredSignals(
        direction=base.direction,
        score=base.score,
        stop_pct=base.stop_pct,
        confidence=confidence,
        gate=gate & (base.direction != 0),
        p_win=p_win,
    )


class ConfidenceScorer(Protocol):
    """What a trained model offers the pipeline: calibrated P(win) of input rows."""

    def confidence(self, inputs: F64) -> F64: ...


class ModelGate(NamedTuple):
    """A model in force and the win rate its signals must beat (from the outcomes it learned
    from), with its version's name for the virtual positions it stamps."""

    model: ConfidenceScorer
    p_break_even: float
    version: str


class SignalRow(NamedTuple):
    direction: int
    score: float
    stop_pct: float
    confidence: float
    gate: bool
    p_win: float


def with_model(base: ScoredSignals, features: F64, gate: ModelGate) -> ScoredSignals:
    """The model's P(win) on every signal of ``base`` (feature rows and direction, as it
    learned them), and the gate and sizing it implies."""
    rows = np.flatnonzero(base.direction != 0)
    p_win = np.full(len(base), np.nan)
    if len(rows):
        p_win[rows] = gate.model.confidence(model_inputs(features[rows], base.direction[rows]))
    return gated(base, p_win, np.full(len(base), gate.p_break_even))


class SignalStream:
    """The pipeline one closed candle at a time: features, the strategy's step, the stop's
    step, then the model, with the batch pipeline's arithmetic, so a live session scores each
    candle exactly as a backtest of the same history does."""

    def __init__(
        self,
        strategy: Strategy,
        timeframe: str,
        stops: StopRule,
        gate: ModelGate | None = None,
        *,
        with_features: bool = False,
    ) -> None:
        # ``with_features``: a session that learns keeps every signal's feature row, and a
        # model may be swapped in later.
        needs_features = strategy.uses_features or gate is not None or with_features
        self.features = (
            FeatureStream(FeatureConfig.for_timeframe(timeframe)) if needs_features else None
        )
        schema = self.features.schema if self.features and strategy.uses_features else None
        self._strategy = strategy.stream(schema)
        self._reads_features = strategy.uses_features
        self._stops = stops
        self._stop_state = stop_state()
        self._stop = compiled_entry(stop_step_nb, self._stop_state, 1.0, 1.0, 1.0, stops)
        self.gate = gate
        self.row: F64 | None = None  # the last candle's feature row (the model's inputs)

    def update(
        self, open_time_ms: int, open_: float, high: float, low: float, close: float,
        volume: float,
    ) -> SignalRow:  # fmt: skip
        reason = 0
        row = None
        if self.features is not None:
            row, reason = self.features.update(open_time_ms, open_, high, low, close, volume)
        self.row = row
        direction, score = self._strategy.update(
            open_time_ms, open_, high, low, close, volume,
            row if self._reads_features else None, reason,
        )  # fmt: skip
        stop_pct = float(self._stop(self._stop_state, high, low, close, self._stops))
        confidence = 0.5 + score / 2.0
        if self.gate is None:
            return SignalRow(direction, score, stop_pct, confidence, True, math.nan)
        p_win = math.nan
        if direction != 0 and row is not None:
            p_win = float(self.gate.model.confidence(model_inputs(row[None, :], [direction]))[0])
        p_star = self.gate.p_break_even
        passes = direction != 0 and math.isfinite(p_win) and p_win > p_star
        if passes:
            confidence = float(sizing_confidence(np.array([p_win]), p_star)[0])
        return SignalRow(direction, score, stop_pct, confidence, passes, p_win)
