"""NullCache, the cache when REDIS_URL is unset: it misses, stores nothing, and checks input."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable
from typing import Any

import pytest

from slt.adapters.cache import CacheTtls, NullCache, open_cache


def run(call: Awaitable[Any]) -> Any:
    async def body() -> Any:
        return await call

    return asyncio.run(body())


def test_open_cache_without_a_url_gives_the_null_cache() -> None:
    assert isinstance(open_cache(None, ""), NullCache)
    assert isinstance(open_cache("", ""), NullCache)


def test_null_cache_misses_everything_it_was_asked_to_store() -> None:
    cache = NullCache()

    async def body() -> list[object]:
        await cache.set_latest_price("BTCUSDT", 65_000.0, 1)
        await cache.set_latest_candles("BTCUSDT", "5m", [(1, 1.0, 2.0, 0.5, 1.5, 10.0)])
        await cache.set_json("q", {"a": 1}, ttl_s=5)
        found = [
            await cache.latest_price("BTCUSDT"),
            await cache.latest_candles("BTCUSDT", "5m"),
            await cache.get_json("q"),
        ]
        await cache.close()
        return found

    assert asyncio.run(body()) == [None, None, None]


@pytest.mark.parametrize("price", [math.nan, math.inf, -math.inf, 0.0, -2.5])
def test_null_cache_refuses_nan_infinite_and_non_positive_prices(price: float) -> None:
    with pytest.raises(ValueError, match="price must be finite and positive"):
        run(NullCache().set_latest_price("BTCUSDT", price, 1))


def test_null_cache_refuses_candles_out_of_order() -> None:
    rows = [(2, 1.0, 2.0, 0.5, 1.5, 10.0), (1, 1.0, 2.0, 0.5, 1.5, 10.0)]

    with pytest.raises(ValueError, match="strictly ascending"):
        run(NullCache().set_latest_candles("BTCUSDT", "5m", rows))


def test_null_cache_refuses_json_with_nan() -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        run(NullCache().set_json("q", {"equity": math.nan}))


@pytest.mark.parametrize("symbol", ["", "BTC USDT", "X" * 65])
def test_null_cache_refuses_empty_spaced_or_over_long_symbols(symbol: str) -> None:
    with pytest.raises(ValueError, match="symbol"):
        run(NullCache().latest_price(symbol))


def test_a_negative_time_is_refused() -> None:
    with pytest.raises(ValueError, match="time_ms"):
        run(NullCache().set_latest_price("BTCUSDT", 1.0, -1))


def test_ttls_default_to_a_minute_a_day_and_half_a_minute() -> None:
    assert CacheTtls() == CacheTtls(price_s=60.0, candles_s=86_400.0, query_s=30.0)


def test_a_zero_ttl_is_refused() -> None:
    with pytest.raises(ValueError, match="price_s"):
        CacheTtls(price_s=0)
