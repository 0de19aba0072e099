"""What a strategy is: a pure function from candles (and their feature rows) to signals.

Row i of the output may depend only on candles 0..i and feature rows 0..i; it is decided at the
close of candle i and acted on at the open of candle i + 1. The engine turns a raw score into a
confidence of 0.5 + score / 2 until a trained model scores the signals.

Backtests call ``signals`` on the whole history; paper and live trading open a ``stream`` and
feed it one closed candle at a time. Both give the same direction and score for every candle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from slt.domain.features.matrix import FeatureMatrix
from slt.domain.features.schema import FeatureSchema
from slt.domain.series import F64, Candles
from slt.errors import SltError

LONG = 1
SHORT = -1
NO_SIGNAL = 0


class StrategyError(SltError):
    """A strategy that cannot be built, loaded or run, or whose output breaks the contract."""


@dataclass(frozen=True)
class Signals:
    """Per base candle: +1 long, -1 short, 0 none; a raw score in [0, 1], 0.0 with no signal."""

    direction: npt.NDArray[np.int8]
    score: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.direction)

    @property
    def count(self) -> int:
        """How many candles carry a signal."""
        return int(np.count_nonzero(self.direction))


class StrategyStream(Protocol):
    """A strategy fed one closed candle at a time, in time order, each candle once."""

    def update(
        self,
        open_time_ms: int,
        open: float,
        high: float,
        low: float,
        close: float,
        volume: float,
        features_row: F64 | None,
        reason: int,
    ) -> tuple[int, float]:
        """(direction, score) of this candle, equal to its row of the batch ``signals``.

        ``features_row`` and ``reason`` are what ``FeatureStream.update`` returned for the candle
        (reason 0 = valid); None and 0 for a strategy that does not use features.
        """
        ...


class BatchStrategy(Protocol):
    """What a user's strategy file has to provide: the whole history in, one signal per candle."""

    @property
    def name(self) -> str: ...

    @property
    def uses_features(self) -> bool:
        """True: ``signals`` needs the FeatureMatrix; False: candles suffice (features is None)."""
        ...

    def signals(self, candles: Candles, features: FeatureMatrix | None) -> Signals: ...


class Strategy(BatchStrategy, Protocol):
    """The whole surface the engine needs; built-ins and loaded user files implement the same."""

    def stream(self, schema: FeatureSchema | None) -> StrategyStream:
        """A fresh stream, as if at the first candle of a batch run. ``schema`` is the schema of
        the feature rows it will be fed (None when ``uses_features`` is False)."""
        ...
