"""Database backends for the data-layer tests: a SQLite file and a real PostgreSQL database.

PostgreSQL tests use the server on 127.0.0.1:5432 (trust auth): each test gets a database of
its own, created from the ``test`` database and dropped afterwards. Without a server they
skip with the reason; CI (.ci/run) starts it, so there they always run.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from slt.adapters.db import migrate
from slt.adapters.db.connect import create_engine
from slt.adapters.db.urls import database_url

T = TypeVar("T")

PG_ADMIN = "postgresql://root@127.0.0.1:5432/test"


async def _admin(sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect("postgresql://root@127.0.0.1:5432/test", timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[URL]:
    if request.param == "sqlite":
        yield database_url(None, tmp_path)
        return
    name = f"slt_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (TimeoutError, OSError) as exc:
        pytest.skip(f"PostgreSQL not reachable on 127.0.0.1:5432 ({exc}); CI starts it")
    try:
        yield database_url(f"postgresql://root@127.0.0.1:5432/{name}", tmp_path)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def on_database(url: URL, body: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Migrate ``url`` to the newest schema, then run ``body`` with an engine on it."""

    async def go() -> T:
        await migrate.upgrade(url)
        engine = create_engine(url)
        try:
            return await body(engine)
        finally:
            await engine.dispose()

    return asyncio.run(go())
