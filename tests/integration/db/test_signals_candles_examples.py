"""Signals, live candles (through the Redis cache) and the experience buffer, on both backends."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.integration.cache.conftest import SHARED_REDIS_URL
from tests.integration.cache.conftest import namespace as namespace  # the fixture
from tests.integration.db.conftest import on_database

from slt.adapters.cache.cache import NullCache, RedisCache
from slt.adapters.db.experience import ExampleBatch, ExperienceStore
from slt.adapters.db.market_data import CandleStore
from slt.adapters.db.signals import SignalStore
from slt.domain.learning_records import Example, SignalRecord
from slt.domain.records import RecordError
from slt.domain.trading_records import Candle

T0 = 1_704_067_200_000
FIVE_MIN = 300_000


def signal(k: int, **changes: object) -> SignalRecord:
    base = SignalRecord(
        time_ms=T0 + k * FIVE_MIN, symbol="ETHUSDT", timeframe="5m", direction=1 if k % 2 else -1,
        raw_score=0.7, confidence=0.6, features=np.array([k, np.nan, 2.5]),
        feature_schema_hash="s" * 64, strategy="smc", model_version="none",
    )  # fmt: skip
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def candle(k: int) -> Candle:
    price = 2_000.0 + k
    return Candle("ETHUSDT", "futures", "5m", T0 + k * FIVE_MIN, price, price + 3.5, price - 2.25,
                  price + 1.125, 10.5 * k)  # fmt: skip


def test_signals_round_trip_and_a_repeated_signal_is_kept_once(db_url: URL) -> None:
    written = [signal(k) for k in range(6)]

    async def body(engine: AsyncEngine) -> list[SignalRecord]:
        store = SignalStore(engine)
        await store.add_many(written)
        await store.add_many(written[:2])  # same candle, same strategy: a retry, not a new one
        return await store.between("ETHUSDT", T0 + FIVE_MIN, T0 + 5 * FIVE_MIN, "smc")

    read = on_database(db_url, body)
    assert [s.time_ms for s in read] == [s.time_ms for s in written[1:5]]
    np.testing.assert_array_equal(read[0].features, written[1].features)  # NaN kept
    assert dataclasses.replace(read[0], features=written[1].features) == written[1]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"confidence": math.nan}, "confidence must be a finite number"),
        ({"raw_score": 1.5}, "raw_score must lie in [0, 1]"),
        ({"timeframe": "7m"}, "timeframe must be one of"),
        ({"features": np.array([1.0, math.inf])}, "features hold an infinite value"),
        ({"strategy": "s" * 65}, "65 characters long"),
    ],
)
def test_bad_signals_are_refused_whole(
    db_url: URL, changes: dict[str, object], message: str
) -> None:
    async def body(engine: AsyncEngine) -> tuple[str, int]:
        store = SignalStore(engine)
        with pytest.raises(RecordError) as caught:
            await store.add_many([signal(0), signal(1, **changes)])
        return str(caught.value), len(await store.between("ETHUSDT", 0, 2 * T0))

    error, count = on_database(db_url, body)
    assert message in error and "signal ETHUSDT" in error
    assert count == 0


def test_candles_are_stored_once_and_read_newest_last_without_a_cache(db_url: URL) -> None:
    async def body(engine: AsyncEngine) -> list[tuple[int, float, float, float, float, float]]:
        store = CandleStore(engine, NullCache())
        await store.add_many([candle(k) for k in range(10)])
        await store.add_many([candle(k) for k in range(8, 12)])
        return await store.latest("ETHUSDT", "5m", 3)

    rows = on_database(db_url, body)
    assert [r[0] for r in rows] == [T0 + k * FIVE_MIN for k in (9, 10, 11)]
    assert rows[-1][1:] == (2_011.0, 2_014.5, 2_008.75, 2_012.125, 115.5)


def test_candle_writes_fill_the_redis_cache_with_the_latest_price_and_candles(
    db_url: URL, namespace: str
) -> None:
    async def body(engine: AsyncEngine) -> object:
        cache = RedisCache(SHARED_REDIS_URL, "redis://127.0.0.1:6379/0", namespace=namespace)
        try:
            store = CandleStore(engine, cache)
            await store.add_many([candle(k) for k in range(5)])
            return (
                await cache.latest_price("ETHUSDT"),
                await cache.latest_candles("ETHUSDT", "5m"),
                await store.latest("ETHUSDT", "5m", 5),
            )
        finally:
            await cache.close()

    price, cached, latest = on_database(db_url, body)  # type: ignore[misc]
    assert price == (2_005.125, T0 + 5 * FIVE_MIN)  # the close, known at the candle's close
    assert cached == latest and len(latest) == 5


def test_bad_candles_are_refused(db_url: URL) -> None:
    bad = dataclasses.replace(candle(1), high=1_000.0)

    async def body(engine: AsyncEngine) -> str:
        with pytest.raises(RecordError) as caught:
            await CandleStore(engine).add_many([candle(0), bad])
        return str(caught.value)

    assert "high/low do not enclose open and close" in on_database(db_url, body)


def test_examples_come_back_oldest_first_and_one_schema_at_a_time(db_url: URL) -> None:
    examples = [
        Example(T0 + k, np.array([k, -k], dtype=np.float64), "a" * 64, k % 2 == 0, 0.1 * k,
                0.5 * k, 1.0 + k)
        for k in range(5)
    ] + [Example(T0 + 9, np.array([1.0, 2.0, 3.0]), "b" * 64, True, 1.0, 1.0)]  # fmt: skip

    async def body(engine: AsyncEngine) -> tuple[ExampleBatch, str, int]:
        store = ExperienceStore(engine)
        await store.add_many(examples[:5])
        await store.add_many(examples[5:])
        batch = await store.newest(3, feature_schema_hash="a" * 64)
        with pytest.raises(RecordError) as caught:
            await store.newest(10)
        return batch, str(caught.value), await store.count()

    batch, mixed, count = on_database(db_url, body)
    assert batch.time_ms.tolist() == [T0 + 2, T0 + 3, T0 + 4]
    assert batch.features.tolist() == [[2.0, -2.0], [3.0, -3.0], [4.0, -4.0]]
    assert batch.won.tolist() == [True, False, True] and batch.weight.tolist() == [3.0, 4.0, 5.0]
    assert "several feature schemas" in mixed
    assert count == 6
