"""A deterministic synthetic market for demos and tests that must not depend on real data."""

from __future__ import annotations

import numpy as np

from slt.domain.series import Candles, FundingRates, Kind, Market, SeriesKey
from slt.domain.timeframes import HOUR_MS, timeframe_ms


def random_walk_candles(
    symbol: str = "BTCUSDT",
    market: Market = Market.FUTURES,
    timeframe: str = "5m",
    *,
    start_ms: int = 1_704_067_200_000,
    n: int = 8_640,
    start_price: float = 42_000.0,
    volatility: float = 0.002,
    seed: int = 7,
    outage: tuple[int, int] | None = None,
) -> Candles:
    """Geometric random walk with realistic OHLC; same seed, same candles, on any machine.

    ``outage=(first_row, rows)`` removes rows as a real exchange outage would.
    """
    rng = np.random.default_rng(seed)
    step = timeframe_ms(timeframe)
    returns = rng.normal(0.0, volatility, n)
    close = start_price * np.exp(np.cumsum(returns))
    open_ = np.concatenate(([start_price], close[:-1]))
    wick = np.abs(rng.normal(0.0, volatility / 2, (2, n)))
    high = np.maximum(open_, close) * (1 + wick[0])
    low = np.minimum(open_, close) * (1 - wick[1])
    volume = rng.lognormal(mean=3.0, sigma=0.5, size=n)
    times = start_ms + step * np.arange(n, dtype=np.int64)
    candles = Candles.from_arrays(
        SeriesKey(symbol, market, timeframe),
        times,
        open_.round(2),
        high.round(2),
        low.round(2),
        close.round(2),
        volume.round(3),
    )
    if outage is not None:
        keep = np.ones(n, dtype=bool)
        keep[outage[0] : outage[0] + outage[1]] = False
        candles = candles.take(keep)
    return candles


def random_funding(
    symbol: str = "BTCUSDT", *, start_ms: int = 1_704_067_200_000, n: int = 90, seed: int = 7
) -> FundingRates:
    """8-hourly funding rates around Binance's 0.01% baseline."""
    rng = np.random.default_rng(seed + 1)
    rate = np.clip(0.0001 + rng.normal(0, 0.00005, n), -0.00075, 0.003).round(8)
    times = start_ms + 8 * HOUR_MS * np.arange(n, dtype=np.int64)
    return FundingRates.from_arrays(
        SeriesKey(symbol, Market.FUTURES, "8h", Kind.FUNDING), times, rate
    )
