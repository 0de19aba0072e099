"""Migrations run forward and back on SQLite and on real PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import URL

from slt.adapters.db import migrate
from slt.adapters.db.connect import create_engine
from slt.adapters.db.tables import metadata

TABLES = {
    "signals", "market_data", "virtual_positions", "virtual_trades", "ml_models",
    "experience_buffer", "account_state", "orders", "fills", "positions", "equity_snapshots",
    "feature_schemas",
}  # fmt: skip


def _schema(url: URL) -> dict[str, set[str]]:
    """Table name -> index names, as the database reports them."""

    async def read() -> dict[str, set[str]]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync: {
                        name: {i["name"] or "" for i in inspect(sync).get_indexes(name)}
                        for name in inspect(sync).get_table_names()
                    }
                )
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_upgrade_creates_every_table_with_its_indexes_and_records_the_version(db_url: URL) -> None:
    asyncio.run(migrate.upgrade(db_url))
    schema = _schema(db_url)
    assert set(schema) - {"alembic_version"} == TABLES
    for table in metadata.tables.values():
        assert {i.name for i in table.indexes} == schema[table.name], table.name
    assert "ix_virtual_trades_exit_time_ms" in schema["virtual_trades"]
    found = asyncio.run(migrate.status(db_url))
    assert found.current == found.head == migrate.head_revision()


def test_downgrade_to_base_empties_the_schema_and_upgrade_restores_it(db_url: URL) -> None:
    asyncio.run(migrate.upgrade(db_url))
    asyncio.run(migrate.downgrade(db_url, "base"))
    assert set(_schema(db_url)) <= {"alembic_version"}
    assert asyncio.run(migrate.status(db_url)).current is None
    asyncio.run(migrate.upgrade(db_url))
    assert set(_schema(db_url)) - {"alembic_version"} == TABLES


def test_start_up_refuses_an_old_schema_and_names_the_command_to_run(db_url: URL) -> None:
    with pytest.raises(migrate.SchemaVersionError, match="slt db upgrade"):
        asyncio.run(migrate.ensure_schema(db_url, auto_migrate=False))
    assert asyncio.run(migrate.status(db_url)).current is None


def test_start_up_migrates_when_configured_to(db_url: URL) -> None:
    found = asyncio.run(migrate.ensure_schema(db_url, auto_migrate=True))
    assert found.up_to_date
    assert set(_schema(db_url)) - {"alembic_version"} == TABLES


def test_the_migrations_build_exactly_the_schema_the_tables_declare(db_url: URL) -> None:
    asyncio.run(migrate.upgrade(db_url))

    async def diff() -> list[object]:
        engine = create_engine(db_url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(sync, opts={"compare_type": True}), metadata
                    )
                )
        finally:
            await engine.dispose()

    assert asyncio.run(diff()) == []


def test_revision_0002_keeps_rows_written_under_0001_and_steps_back_cleanly(db_url: URL) -> None:
    """Fills and positions get keys from their ids; duplicate account snapshots merge."""
    asyncio.run(migrate.upgrade(db_url, "0001"))

    async def fill_0001_tables() -> None:
        engine = create_engine(db_url)
        try:
            async with engine.begin() as conn:
                await conn.exec_driver_sql(
                    "INSERT INTO orders (id, mode, symbol, kind, purpose, side, quantity, "
                    "reduce_only, status, created_ms, updated_ms) VALUES "
                    "('o1', 'paper', 'BTCUSDT', 'market', 'entry', 1, 1, false, 'filled', 1, 1)"
                )
                await conn.exec_driver_sql(
                    "INSERT INTO fills (order_id, time_ms, price, quantity, fee, liquidation) "
                    "VALUES ('o1', 2, 100, 1, 0.05, false)"
                )
                for _ in range(2):
                    await conn.exec_driver_sql(
                        "INSERT INTO account_state (time_ms, mode, equity, balance, margin) "
                        "VALUES (5, 'paper', 10, 10, 0)"
                    )
        finally:
            await engine.dispose()

    async def read(sql: str) -> list[tuple[object, ...]]:
        engine = create_engine(db_url)
        try:
            async with engine.connect() as conn:
                return [tuple(r) for r in (await conn.exec_driver_sql(sql)).all()]
        finally:
            await engine.dispose()

    asyncio.run(fill_0001_tables())
    asyncio.run(migrate.upgrade(db_url))
    assert asyncio.run(read("SELECT order_id, fill_id FROM fills")) == [("o1", "legacy-1")]
    assert asyncio.run(read("SELECT count(*) FROM account_state")) == [(1,)]
    asyncio.run(migrate.downgrade(db_url, "0001"))
    assert asyncio.run(read("SELECT order_id, time_ms FROM fills")) == [("o1", 2)]
    assert asyncio.run(migrate.status(db_url)).current == "0001"


def test_revision_0003_adds_the_feature_schema_registry_beside_0002_rows_and_removes_it(
    db_url: URL,
) -> None:
    """Virtual trades stored before 0003 keep their (now unknown) schema hashes."""
    asyncio.run(migrate.upgrade(db_url, "0002"))

    async def sql(statement: str) -> list[tuple[object, ...]]:
        engine = create_engine(db_url)
        try:
            async with engine.begin() as conn:
                result = await conn.exec_driver_sql(statement)
                return [tuple(r) for r in result.all()] if result.returns_rows else []
        finally:
            await engine.dispose()

    asyncio.run(
        sql(
            "INSERT INTO virtual_trades (symbol, direction, entry_time_ms, entry_price, "
            "stop_loss_pct, take_profit_pct, exit_time_ms, exit_price, exit_reason, return_pct, "
            "reward, won, features, feature_schema_hash, model_version) VALUES ('BTCUSDT', 1, 1, "
            "100, 1.5, 3, 2, 101, 'take_profit', 1, 0.5, true, '', '820a948b23cb7b01', 'none')"
        )
    )
    assert "feature_schemas" not in _schema(db_url)
    asyncio.run(migrate.upgrade(db_url))
    assert "feature_schemas" in _schema(db_url)
    assert asyncio.run(sql("SELECT count(*) FROM feature_schemas")) == [(0,)]
    assert asyncio.run(sql("SELECT feature_schema_hash FROM virtual_trades")) == [
        ("820a948b23cb7b01",)
    ]
    asyncio.run(migrate.downgrade(db_url, "0002"))
    assert "feature_schemas" not in _schema(db_url)
    assert asyncio.run(migrate.status(db_url)).current == "0002"


def test_revision_0004_gives_0003_rows_an_empty_run_id_and_fills_their_orders_mode(
    db_url: URL,
) -> None:
    """Stepping back keeps one snapshot per (mode, time) and puts run ids in position keys."""
    asyncio.run(migrate.upgrade(db_url, "0003"))

    async def sql(*statements: str) -> list[tuple[object, ...]]:
        engine = create_engine(db_url)
        try:
            async with engine.begin() as conn:
                for statement in statements:
                    result = await conn.exec_driver_sql(statement)
                return [tuple(r) for r in result.all()] if result.returns_rows else []
        finally:
            await engine.dispose()

    asyncio.run(
        sql(
            "INSERT INTO orders (id, mode, symbol, kind, purpose, side, quantity, reduce_only, "
            "status, created_ms, updated_ms) VALUES "
            "('o1', 'live', 'BTCUSDT', 'market', 'entry', 1, 1, false, 'filled', 1, 1)",
            "INSERT INTO fills (order_id, time_ms, price, quantity, fee, liquidation, fill_id) "
            "VALUES ('o1', 2, 100, 1, 0.05, false, 't1')",
            "INSERT INTO positions (mode, symbol, side, quantity, entry_price, leverage, margin, "
            "opened_ms, status, position_key) VALUES "
            "('live', 'BTCUSDT', 1, 1, 100, 1, 100, 2, 'open', '7')",
            "INSERT INTO equity_snapshots (mode, time_ms, equity, cash, unrealized_pnl) "
            "VALUES ('live', 5, 10, 10, 0)",
        )
    )
    asyncio.run(migrate.upgrade(db_url))
    assert asyncio.run(sql("SELECT mode, run_id FROM fills")) == [("live", "")]
    assert asyncio.run(sql("SELECT run_id FROM orders UNION ALL SELECT run_id FROM positions")) == [
        ("",),
        ("",),
    ]
    asyncio.run(
        sql(
            "INSERT INTO equity_snapshots (mode, run_id, time_ms, equity, cash, unrealized_pnl) "
            "VALUES ('live', 'b', 5, 11, 11, 0)",
            "INSERT INTO positions (mode, symbol, side, quantity, entry_price, leverage, margin, "
            "opened_ms, status, position_key, run_id) VALUES "
            "('live', 'BTCUSDT', 1, 1, 100, 1, 100, 3, 'open', '7', 'b')",
        )
    )
    asyncio.run(migrate.downgrade(db_url, "0003"))
    assert asyncio.run(sql("SELECT time_ms, equity FROM equity_snapshots")) in (
        [(5, 11)],
        [(5, 11.0)],
    )
    keys = asyncio.run(sql("SELECT position_key FROM positions ORDER BY opened_ms"))
    assert keys == [("7",), ("b-7",)]
    assert asyncio.run(sql("SELECT order_id, fill_id FROM fills")) == [("o1", "t1")]
    assert asyncio.run(migrate.status(db_url)).current == "0003"
