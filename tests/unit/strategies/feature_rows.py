"""Hand-made feature matrices for strategy tests: a neutral row plus the values a test sets."""

from __future__ import annotations

import numpy as np

from slt.domain.features.config import FeatureConfig
from slt.domain.features.matrix import FeatureMatrix
from slt.domain.features.schema import build_schema
from slt.domain.series import Candles, Market, SeriesKey

FIVE_MINUTES_MS = 300_000

# No trend, no trigger, neither discount nor premium (0.5), untouched zones of age 10.
NEUTRAL: dict[str, float] = {
    "trend": 0.0,
    "bos": 0.0,
    "choch": 0.0,
    "liq_sweep": 0.0,
    "fvg_new": 0.0,
    "ob_new": 0.0,
    "premium_discount": 0.5,
    "fvg_bull_touched": 0.0,
    "fvg_bull_age": 10.0,
    "fvg_bear_touched": 0.0,
    "fvg_bear_age": 10.0,
    "ob_bull_touched": 0.0,
    "ob_bull_age": 10.0,
    "ob_bear_touched": 0.0,
    "ob_bear_age": 10.0,
    "rsi": 50.0,
    "d1_trend": 0.0,
    "d1_premium_discount": 0.5,
    "h1_trend": 0.0,
    "h1_premium_discount": 0.5,
    "m15_trend": 0.0,
    "m15_premium_discount": 0.5,
}


def feature_matrix(
    *rows: dict[str, float], invalid: tuple[int, ...] = (), context: tuple[str, ...] | None = None
) -> FeatureMatrix:
    """One 5m row per dict (over NEUTRAL); rows listed in ``invalid`` get reason 1 and NaN."""
    schema = build_schema(FeatureConfig.for_timeframe("5m", context))
    names = schema.names
    values = np.full((len(rows), len(names)), np.nan)
    for i, row in enumerate(rows):
        for name, value in {**NEUTRAL, **row}.items():
            if name in names:
                values[i, names.index(name)] = value
    reason = np.zeros(len(rows), dtype=np.int8)
    for i in invalid:
        reason[i] = 1
        values[i] = np.nan
    times = np.arange(len(rows), dtype=np.int64) * FIVE_MINUTES_MS
    return FeatureMatrix(schema, times, reason, values)


def candles_of(close: np.ndarray | list[float]) -> Candles:
    """5m candles whose open, high and low equal the close (only closes matter here)."""
    c = np.asarray(close, dtype=np.float64)
    times = np.arange(len(c), dtype=np.int64) * FIVE_MINUTES_MS
    key = SeriesKey("BTCUSDT", Market.FUTURES, "5m")
    return Candles.from_arrays(key, times, c, c, c, c, np.ones(len(c)))
