"""An example strategy file: RSI reversals in the direction of the hourly trend.

Run it with:  slt backtest --symbol BTCUSDT --start 2024-01-01 --end 2024-05-01 \
                  --report-dir reports/rsi --strategy-file docs/examples/my_strategy.py

Long when the 5m RSI crosses back up through ``oversold`` while the last closed hour's trend is
up; short when it crosses back down through ``overbought`` while that trend is down. The score
grows with how far the RSI had stretched on the bar before, so deeper reversals count for more.
Row i reads only feature rows i - 1 and i, both known at the close of candle i, so paper and
live trading can stream it unchanged: the loader replays ``signals`` on the candles so far and
gets, for each new candle, the row the backtest computed (docs/strategies.md, "Your strategy in
paper and live trading").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from slt.domain.features.matrix import FeatureMatrix
from slt.domain.series import Candles
from slt.domain.strategies.base import Signals


@dataclass(frozen=True)
class RsiReversal:
    oversold: float = 30.0
    overbought: float = 70.0
    name: str = "rsi_reversal"
    uses_features: bool = True  # the engine computes the feature matrix and passes it in

    def signals(self, candles: Candles, features: FeatureMatrix | None) -> Signals:
        assert features is not None  # uses_features=True: the engine always passes them
        rsi = features.column("rsi")
        h1_trend = features.column("h1_trend")
        before = np.concatenate(([np.nan], rsi[:-1]))  # the previous bar's RSI, causal
        valid = features.valid  # invalid rows (warm-up, gaps) are NaN: no signal there
        long = valid & (before < self.oversold) & (rsi >= self.oversold) & (h1_trend > 0)
        short = valid & (before > self.overbought) & (rsi <= self.overbought) & (h1_trend < 0)
        direction = np.zeros(len(rsi), dtype=np.int8)
        direction[long] = 1
        direction[short] = -1
        # 0.5 at the threshold, up to 1.0 when the RSI had reached 10 (or 90) on the bar before.
        stretch = np.where(long, self.oversold - before, before - self.overbought)
        score = np.where(direction != 0, np.clip(0.5 + stretch / 40.0, 0.5, 1.0), 0.0)
        return Signals(direction, score)


strategy = RsiReversal()
