"""``ema_cross``: the textbook EMA crossover, the rule peers (backtesting.py, vectorbt,
freqtrade) are compared against. Needs only closes, so it skips the feature matrix."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from slt.domain.features.matrix import FeatureMatrix
from slt.domain.series import Candles
from slt.domain.strategies.base import Signals, StrategyError
from slt.domain.strategies.ema_cross_nb import ema_cross_nb

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
