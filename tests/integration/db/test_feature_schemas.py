"""The feature schema registry on SQLite and real PostgreSQL: whatever stores data under a
feature schema hash registers what the hash means, once, in the same transaction."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.integration.db.conftest import on_database
from tests.integration.db.test_models import model
from tests.integration.db.test_virtual_trades import trade

from slt.adapters.db.experience import ExperienceStore
from slt.adapters.db.feature_schemas import FeatureSchemaStore
from slt.adapters.db.models import ModelStore
from slt.adapters.db.virtual_trades import VirtualTradeStore
from slt.adapters.db.writer import RecordWriter
from slt.domain.features.config import FeatureConfig
from slt.domain.features.schema import build_schema
from slt.domain.learning_records import Example, FeatureSchemaRecord
from slt.domain.records import RecordError

T0 = 1_704_067_200_000
SCHEMA = build_schema(FeatureConfig.for_timeframe("5m"))
HOURLY = build_schema(FeatureConfig.for_timeframe("1h"))
RECORD = FeatureSchemaRecord.of(SCHEMA, T0)


def test_a_schema_registered_twice_is_stored_once_with_its_description(db_url: URL) -> None:
    async def body(engine: AsyncEngine) -> tuple[dict[str, FeatureSchemaRecord], int]:
        store = FeatureSchemaStore(engine)
        await store.register(RECORD)
        await store.register(dataclasses.replace(RECORD, created_ms=T0 + 1))  # kept as first
        async with engine.connect() as connection:
            rows = await connection.exec_driver_sql("SELECT count(*) FROM feature_schemas")
            count = int(rows.scalar_one())
        return await store.get([SCHEMA.hash, HOURLY.hash, "unknown"]), count

    found, count = on_database(db_url, body)
    assert count == 1
    assert found == {SCHEMA.hash: RECORD}
    assert found[SCHEMA.hash].description == SCHEMA.described()


def test_a_description_that_does_not_hash_to_its_hash_is_refused(db_url: URL) -> None:
    wrong = dataclasses.replace(RECORD, feature_schema_hash=HOURLY.hash)

    async def body(engine: AsyncEngine) -> dict[str, FeatureSchemaRecord]:
        store = FeatureSchemaStore(engine)
        with pytest.raises(RecordError, match="does not hash to feature_schema_hash"):
            await store.register(wrong)
        return await store.get([HOURLY.hash])

    assert on_database(db_url, body) == {}


def test_virtual_trades_register_their_schema_in_the_same_transaction(db_url: URL) -> None:
    trades = [trade(k, feature_schema_hash=SCHEMA.hash) for k in range(1, 4)]
    bad = [*trades, trade(4, feature_schema_hash=SCHEMA.hash, return_pct=float("nan"))]

    async def body(engine: AsyncEngine) -> tuple[int, list[str], int, list[str]]:
        store, registry = VirtualTradeStore(engine), FeatureSchemaStore(engine)
        with pytest.raises(RecordError):
            await store.add_many(bad, schema=RECORD)
        refused = list(await registry.get([SCHEMA.hash]))
        written = await store.add_many(trades, schema=RECORD)
        await store.add_many(trades[:1], schema=RECORD)  # registered again: a no-op
        return await store.count(), refused, written, list(await registry.get([SCHEMA.hash]))

    count, refused, written, registered = on_database(db_url, body)
    assert refused == [] and written == 3 and count == 4
    assert registered == [SCHEMA.hash]


def test_records_of_another_hash_than_the_schema_given_are_refused_whole(db_url: URL) -> None:
    trades = [trade(1, feature_schema_hash=SCHEMA.hash), trade(2, feature_schema_hash="b" * 64)]

    async def body(engine: AsyncEngine) -> tuple[int, dict[str, FeatureSchemaRecord]]:
        store = VirtualTradeStore(engine)
        with pytest.raises(RecordError, match="came with the description of"):
            await store.add_many(trades, schema=RECORD)
        return await store.count(), await FeatureSchemaStore(engine).get([SCHEMA.hash])

    assert on_database(db_url, body) == (0, {})


def test_models_and_examples_register_their_schemas(db_url: URL) -> None:
    hourly = FeatureSchemaRecord.of(HOURLY, T0)
    example = Example(T0, np.array([1.0, np.nan]), SCHEMA.hash, True, 0.5, 0.3)

    async def body(engine: AsyncEngine) -> set[str]:
        hourly_model = dataclasses.replace(model("m1", T0), feature_schema_hash=HOURLY.hash)
        await ModelStore(engine).add(hourly_model, schema=hourly)
        await ExperienceStore(engine).add_many([example], schema=RECORD)
        return set(await FeatureSchemaStore(engine).get([SCHEMA.hash, HOURLY.hash]))

    assert on_database(db_url, body) == {SCHEMA.hash, HOURLY.hash}


def test_the_record_writer_stores_a_schema_submitted_with_its_examples_once(db_url: URL) -> None:
    example = Example(T0, np.array([1.0, np.nan]), SCHEMA.hash, True, 0.5, 0.3)

    async def body(engine: AsyncEngine) -> tuple[int, list[str]]:
        async with RecordWriter(engine, flush_interval_s=60) as writer:
            writer.submit(RECORD)
            await writer.record(example)
            writer.submit(RECORD)  # submitted again (a restarted loop): a no-op
            await writer.flush()
        return await ExperienceStore(engine).count(), list(
            await FeatureSchemaStore(engine).get([SCHEMA.hash])
        )

    assert on_database(db_url, body) == (1, [SCHEMA.hash])
