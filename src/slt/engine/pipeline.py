"""From a strategy's signals to what the portfolio reducer decides on: stop distance,
confidence and the model's gate, per candle.

One mapping serves the backtest, walk-forward, paper and live trading: a raw score becomes a
confidence of 0.5 + score / 2 until a model scores the signal; a model's calibrated P(win)
becomes the Kelly confidence relative to the break-even win rate, and the signal trades only
above it. Every signal, traded or not, is still followed as a virtual position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from slt.domain.features.indicators_nb import atr_nb
from slt.domain.series import Candles
from slt.domain.strategies.base import Signals
from slt.engine.config import StopRule

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
    the ATR warms up: no trade)."""
    if not stops.atr:
        return np.full(len(candles), stops.stop_loss_pct)
    atr = atr_nb(candles.high, candles.low, candles.close, stops.atr_period)
    pct = stops.atr_multiple * atr / candles.close * 100.0
    clipped: F64 = np.clip(pct, stops.atr_min_pct, stops.atr_max_pct)
    return clipped


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
    rows = np.flatnonzero(gate)
    for k in rows:
        confidence[k] = sizing_confidence(p_win[k : k + 1], float(p_break_even[k]))[0]
    return ScoredSignals(
        direction=base.direction,
        score=base.score,
        stop_pct=base.stop_pct,
        confidence=confidence,
        gate=gate & (base.direction != 0),
        p_win=p_win,
    )
