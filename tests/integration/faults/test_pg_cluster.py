"""The private PostgreSQL cluster: a crashed server comes back with every committed row."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from slt.adapters.db import migrate
from slt.adapters.db.urls import database_url
from tests.support.pg_cluster import PrivateCluster


async def _execute(url: str, sql: str) -> None:
    connection = await asyncpg.connect(url, timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _fetch(url: str, sql: str) -> list[tuple[object, ...]]:
    connection = await asyncpg.connect(url, timeout=5)
    try:
        return [tuple(row) for row in await connection.fetch(sql)]
    finally:
        await connection.close()


def test_a_committed_row_survives_an_immediate_stop_and_is_recovered_from_wal(
    private_pg: PrivateCluster,
) -> None:
    asyncio.run(_execute(private_pg.url, "CREATE TABLE fills (id int PRIMARY KEY, qty text)"))
    asyncio.run(_execute(private_pg.url, "INSERT INTO fills VALUES (1, '0.125')"))

    private_pg.stop("immediate")
    with pytest.raises(OSError):
        asyncio.run(_fetch(private_pg.url, "SELECT 1"))
    private_pg.start()

    assert asyncio.run(_fetch(private_pg.url, "SELECT id, qty FROM fills")) == [(1, "0.125")]
    log = private_pg.server_log()
    assert "not properly shut down; automatic recovery in progress" in log
    assert "redo starts at" in log  # the row came back by replaying WAL, not from a checkpoint


def test_a_restart_keeps_the_url_and_the_data(private_pg: PrivateCluster) -> None:
    url = private_pg.url
    asyncio.run(_execute(url, "CREATE TABLE marks AS SELECT 7 AS price"))

    private_pg.restart()

    assert private_pg.url == url
    assert asyncio.run(_fetch(url, "SELECT price FROM marks")) == [(7,)]


def test_a_created_database_takes_the_schema_migrations(
    private_pg: PrivateCluster, tmp_path: Path
) -> None:
    url = private_pg.create_database("slt_fault")

    asyncio.run(migrate.upgrade(database_url(url, tmp_path)))

    tables = asyncio.run(_fetch(url, "SELECT tablename FROM pg_tables WHERE tablename = 'fills'"))
    assert tables == [("fills",)]


def test_the_cluster_is_stopped_and_deleted_when_the_test_body_fails() -> None:
    with pytest.raises(ZeroDivisionError), PrivateCluster() as cluster:
        url, folder = cluster.url, cluster.directory
        assert folder.is_dir()
        _ = 1 / 0

    assert not folder.exists()
    with pytest.raises(OSError):
        asyncio.run(_fetch(url, "SELECT 1"))
