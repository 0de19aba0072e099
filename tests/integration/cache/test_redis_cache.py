"""RedisCache against real Redis servers: round trips, TTLs, and the cache going away and back."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar, cast

import pytest
import redis
import structlog

from slt.adapters.cache import CacheTtls, RedisCache, open_cache
from slt.errors import ConfigError
from tests.integration.cache.conftest import SHARED_REDIS_URL, FakeClock, RedisServer, free_port

PASSWORD = "redispass-8c2e4a6f0b"
T = TypeVar("T")
CANDLES = [
    (1_700_000_000_000 + i * 300_000, 0.1 + i, 0.2 + i * 3.3, 1 / 3, 67_123.456789012345, 1e-9 * i)
    for i in range(600)
]


def run(body: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(body())


def shared_cache(namespace: str) -> RedisCache:
    return RedisCache(SHARED_REDIS_URL, SHARED_REDIS_URL, namespace=namespace)


def warnings_and_infos(logs: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    return (
        [e["event"] for e in logs if e["log_level"] == "warning"],
        [e["event"] for e in logs if e["log_level"] == "info"],
    )


def test_latest_price_round_trips_floats_and_times_exactly(namespace: str) -> None:
    async def body() -> list[tuple[float, int] | None]:
        cache = shared_cache(namespace)
        try:
            await cache.set_latest_price("BTCUSDT", 0.1 + 0.2, 1_735_689_600_123)
            await cache.set_latest_price("PEPEUSDT", 1.2345678901234567e-05, 9_007_199_254_740_993)
            return [await cache.latest_price("BTCUSDT"), await cache.latest_price("PEPEUSDT")]
        finally:
            await cache.close()

    assert run(body) == [
        (0.30000000000000004, 1_735_689_600_123),
        (1.2345678901234567e-05, 9_007_199_254_740_993),
    ]


def test_latest_candles_round_trip_exactly_keeping_only_the_newest_rows(namespace: str) -> None:
    async def body() -> list[Any] | None:
        cache = shared_cache(namespace)
        try:
            await cache.set_latest_candles("BTCUSDT", "5m", CANDLES, keep=500)
            return await cache.latest_candles("BTCUSDT", "5m")
        finally:
            await cache.close()

    assert run(body) == CANDLES[-500:]


def test_json_query_results_round_trip(namespace: str) -> None:
    value = {"symbols": ["BTCUSDT", "ETHUSDT"], "equity": 10_234.567890123, "open": 3, "x": None}

    async def body() -> object:
        cache = shared_cache(namespace)
        try:
            await cache.set_json("dashboard:summary", value)
            return await cache.get_json("dashboard:summary")
        finally:
            await cache.close()

    assert run(body) == value


def test_entries_never_written_read_as_misses(namespace: str) -> None:
    async def body() -> list[object]:
        cache = shared_cache(namespace)
        try:
            return [
                await cache.latest_price("BTCUSDT"),
                await cache.latest_candles("BTCUSDT", "1h"),
                await cache.get_json("nothing"),
            ]
        finally:
            await cache.close()

    assert run(body) == [None, None, None]


def test_every_entry_is_namespaced_and_expires_after_its_configured_ttl(
    namespace: str, shared_redis: redis.Redis
) -> None:
    async def body() -> None:
        cache = RedisCache(
            SHARED_REDIS_URL, SHARED_REDIS_URL, namespace=namespace, ttls=CacheTtls()
        )
        try:
            await cache.set_latest_price("BTCUSDT", 65_000.5, 1)
            await cache.set_latest_candles("BTCUSDT", "5m", CANDLES[:3])
            await cache.set_json("q1", [1, 2])
            await cache.set_json("q2", [3], ttl_s=5)
        finally:
            await cache.close()

    run(body)
    ttls = {
        key.decode(): cast(int, shared_redis.ttl(key))
        for key in shared_redis.scan_iter(match=f"{namespace}:*")
    }
    assert namespace.startswith("slt:v1:")
    assert ttls.keys() == {
        f"{namespace}:price:BTCUSDT",
        f"{namespace}:candles:BTCUSDT:5m",
        f"{namespace}:query:q1",
        f"{namespace}:query:q2",
    }
    assert 55 <= ttls[f"{namespace}:price:BTCUSDT"] <= 60
    assert 86_000 <= ttls[f"{namespace}:candles:BTCUSDT:5m"] <= 86_400
    assert 25 <= ttls[f"{namespace}:query:q1"] <= 30
    assert 1 <= ttls[f"{namespace}:query:q2"] <= 5


@pytest.mark.parametrize("price", [math.nan, math.inf, -math.inf, 0.0, -1.0])
def test_nan_infinite_and_non_positive_prices_are_refused(namespace: str, price: float) -> None:
    async def body() -> None:
        cache = shared_cache(namespace)
        try:
            await cache.set_latest_price("BTCUSDT", price, 1)
        finally:
            await cache.close()

    with pytest.raises(ValueError, match="price must be finite and positive"):
        run(body)


def test_candles_with_nan_are_refused(namespace: str) -> None:
    rows = [(1, 1.0, 2.0, 0.5, math.nan, 10.0)]

    async def body() -> None:
        cache = shared_cache(namespace)
        try:
            await cache.set_latest_candles("BTCUSDT", "5m", rows)
        finally:
            await cache.close()

    with pytest.raises(ValueError, match="finite"):
        run(body)


def test_an_unreachable_redis_degrades_at_once_with_one_warning_and_no_password(
    clock: FakeClock,
) -> None:
    port = free_port()  # nothing listens there
    url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    display = f"redis://:***@127.0.0.1:{port}/0"

    async def body() -> list[object]:
        cache = open_cache(url, display, clock=clock)
        try:
            await cache.set_latest_price("BTCUSDT", 65_000.0, 1)
            results: list[object] = [await cache.latest_price("BTCUSDT") for _ in range(50)]
            results.append(await cache.latest_candles("BTCUSDT", "5m"))
            results.append(await cache.get_json("q"))
            await cache.set_json("q", {"a": 1})
            return results
        finally:
            await cache.close()

    with structlog.testing.capture_logs() as logs:
        start = time.perf_counter()
        results = run(body)
        elapsed_s = time.perf_counter() - start

    warnings, _ = warnings_and_infos(logs)
    assert results == [None] * 52
    assert warnings == ["redis cache is off, trading continues on the database alone"]
    assert logs[0]["url"] == display
    assert PASSWORD not in repr(logs)
    assert elapsed_s < 1.0


def test_a_redis_killed_mid_run_turns_calls_into_misses_with_exactly_one_warning(
    own_redis: RedisServer, clock: FakeClock
) -> None:
    async def body() -> tuple[object, list[object]]:
        cache = RedisCache(own_redis.url, own_redis.url, clock=clock)
        try:
            await cache.set_latest_price("BTCUSDT", 65_000.25, 7)
            before = await cache.latest_price("BTCUSDT")
            own_redis.kill()
            after: list[object] = []
            for _ in range(20):
                await cache.set_latest_price("BTCUSDT", 65_001.0, 8)
                after.append(await cache.latest_price("BTCUSDT"))
                clock.advance(1)  # 20 s in all: still inside the 30 s retry interval
            return before, after
        finally:
            await cache.close()

    with structlog.testing.capture_logs() as logs:
        before, after = run(body)

    warnings, infos = warnings_and_infos(logs)
    assert before == (65_000.25, 7)
    assert after == [None] * 20
    assert warnings == ["redis cache is off, trading continues on the database alone"]
    assert infos == []


def test_a_redis_that_stops_answering_costs_one_short_timeout_then_nothing(
    own_redis: RedisServer, clock: FakeClock
) -> None:
    async def body() -> tuple[list[object], float, float]:
        cache = RedisCache(own_redis.url, own_redis.url, clock=clock)
        try:
            await cache.set_latest_price("BTCUSDT", 65_000.25, 7)
            own_redis.pause()
            start = time.perf_counter()
            first = await cache.latest_price("BTCUSDT")
            first_s = time.perf_counter() - start
            start = time.perf_counter()
            rest = [await cache.latest_price("BTCUSDT") for _ in range(100)]
            rest_s = time.perf_counter() - start
            return [first, *rest], first_s, rest_s
        finally:
            await cache.close()

    with structlog.testing.capture_logs() as logs:
        results, first_s, rest_s = run(body)

    warnings, _ = warnings_and_infos(logs)
    assert results == [None] * 101
    assert 0.2 <= first_s < 0.6  # the 0.25 s read timeout
    assert rest_s < 0.05  # no network until the retry interval has passed
    assert warnings == ["redis cache is off, trading continues on the database alone"]


def test_a_restarted_redis_is_used_again_only_after_the_retry_interval_with_one_info_line(
    own_redis: RedisServer, clock: FakeClock
) -> None:
    async def body() -> list[object]:
        cache = RedisCache(own_redis.url, own_redis.url, clock=clock)
        try:
            await cache.set_latest_price("BTCUSDT", 65_000.25, 7)
            own_redis.kill()
            await cache.latest_price("BTCUSDT")  # finds it dead
            own_redis.start()
            clock.advance(29)
            await cache.set_latest_price("BTCUSDT", 65_002.5, 9)  # skipped: not yet retried
            too_early = await cache.latest_price("BTCUSDT")
            clock.advance(2)
            await cache.set_latest_price("BTCUSDT", 65_003.5, 10)
            back = await cache.latest_price("BTCUSDT")
            return [too_early, back, cache.is_up]
        finally:
            await cache.close()

    with structlog.testing.capture_logs() as logs:
        too_early, back, is_up = run(body)

    warnings, infos = warnings_and_infos(logs)
    assert too_early is None
    assert back == (65_003.5, 10)
    assert is_up is True
    assert warnings == ["redis cache is off, trading continues on the database alone"]
    assert infos == ["redis cache is back on"]


def test_a_url_that_is_not_a_redis_url_is_a_config_error_showing_only_the_masked_url() -> None:
    with pytest.raises(ConfigError) as caught:
        RedisCache(f"http://:{PASSWORD}@cache.example.com/0", "http://:***@cache.example.com/0")

    assert "http://:***@cache.example.com/0" in str(caught.value)
    assert PASSWORD not in str(caught.value)
