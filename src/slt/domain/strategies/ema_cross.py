"""``ema_cross``: the textbook EMA crossover, the rule peers (backtesting.py, vectorbt,
freqtrade) are compared against. Needs only closes, so it skips the feature matrix.

Batch and stream run the same step kernel, ``ema_cross_step_nb``."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from slt.domain.features.matrix import FeatureMatrix
from slt.domain.features.schema import FeatureSchema
from slt.domain.series import F64, Candles
from slt.domain.strategies.base import Signals, StrategyError
from slt.domain.strategies.ema_cross_nb import (
    EmaCrossKernelParams,
    ema_cross_nb,
    ema_cross_state_nb,
    ema_cross_step_nb,
)
from slt.domain.strategies.stepping import NO_CANDLE_YET_MS, compiled_step, out_of_order

# Raw score of every crossover: confidence 0.75 after the engine's 0.5 + score / 2, Kelly 1x.
CROSS_SCORE = 0.5


@dataclass(frozen=True)
class EmaCrossParams:
    """EMA periods on closes, TA-Lib seeding (the first EMA value is the SMA of ``period`` bars)."""

    fast: int = 12
    slow: int = 26

    def __post_init__(self) -> None:
        if not 2 <= self.fast < self.slow:
            raise StrategyError(
                f"ema_cross needs 2 <= fast < slow, got fast={self.fast} slow={self.slow}"
            )

    def kernel(self) -> EmaCrossKernelParams:
        return EmaCrossKernelParams(fast=self.fast, slow=self.slow, score=CROSS_SCORE)


@dataclass(frozen=True)
class EmaCross:
    """Long when the fast EMA closes above the slow one after being at or below it; short mirror."""

    params: EmaCrossParams = field(default_factory=EmaCrossParams)

    @property
    def name(self) -> str:
        return "ema_cross"

    @property
    def uses_features(self) -> bool:
        return False

    def signals(self, candles: Candles, features: FeatureMatrix | None) -> Signals:
        close = np.ascontiguousarray(candles.close, dtype=np.float64)
        direction, score = ema_cross_nb(close, self.params.fast, self.params.slow, CROSS_SCORE)
        return Signals(direction, score)

    def stream(self, schema: FeatureSchema | None = None) -> EmaCrossStream:
        """Closes one at a time; ``schema`` is ignored (ema_cross reads no features)."""
        return EmaCrossStream(self.params)


class EmaCrossStream:
    """ema_cross fed one closed candle at a time: O(1), the batch kernel's step."""

    def __init__(self, params: EmaCrossParams) -> None:
        self._params = params.kernel()
        self._state = ema_cross_state_nb()
        self._step = compiled_step(ema_cross_step_nb, self._state, 1.0, self._params)
        self._last_time_ms = NO_CANDLE_YET_MS

    def update(
        self,
        open_time_ms: int,
        open: float,
        high: float,
        low: float,
        close: float,
        volume: float,
        features_row: F64 | None = None,
        reason: int = 0,
    ) -> tuple[int, float]:
        """(direction, score) of this closed candle; reads only its close."""
        if open_time_ms <= self._last_time_ms:
            raise out_of_order(open_time_ms, self._last_time_ms)
        self._last_time_ms = open_time_ms
        return self._step(self._state, float(close), self._params)
