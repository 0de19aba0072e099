"""Resampling candles to a higher timeframe, with buckets aligned like Binance's."""

from __future__ import annotations

from dataclasses import replace

from slt.domain.resample_nb import resample_ohlcv_nb
from slt.domain.series import Candles
from slt.domain.timeframes import bucket_offset_ms, timeframe_ms
from slt.errors import SltError


def resample(candles: Candles, timeframe: str, *, complete_only: bool = False) -> Candles:
    """Aggregate to ``timeframe``; a first bucket the data starts inside and a trailing bucket
    that has not closed are dropped: neither would equal the exchange's candle.

    Buckets with holes inside keep the candles that exist (the exchange builds its own candle
    from the trades that happened); ``complete_only`` drops them instead.
    """
    base_ms = candles.key.timeframe_ms
    target_ms = timeframe_ms(timeframe)
    if target_ms < base_ms or target_ms % base_ms:
        raise SltError(
            f"cannot resample {candles.key.timeframe} to {timeframe}: the target must be a "
            "whole multiple of the source timeframe"
        )
    key = replace(candles.key, timeframe=timeframe)
    if len(candles) == 0:
        return Candles.empty(key)
    t, o, h, low, c, v, counts = resample_ohlcv_nb(
        candles.open_time_ms,
        candles.open,
        candles.high,
        candles.low,
        candles.close,
        candles.volume,
        base_ms,
        target_ms,
        bucket_offset_ms(target_ms),
    )
    out = Candles(key, t, o, h, low, c, v)
    if complete_only:
        out = out.take(counts == target_ms // base_ms)
    return out
