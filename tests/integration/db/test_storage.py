"""Opening the data layer from settings: the schema check at start-up and an optional Redis
that may be absent without stopping anything."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import structlog
from pydantic import SecretStr
from tests.integration.cache.conftest import free_port
from tests.integration.db.test_signals_candles_examples import candle

from slt.adapters.db.migrate import SchemaVersionError
from slt.runtime.config import Settings
from slt.runtime.storage import open_storage


def test_an_unmigrated_database_is_refused_with_the_command_to_run(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, db_auto_migrate=False)

    with pytest.raises(SchemaVersionError) as caught:
        asyncio.run(open_storage(settings))

    assert "run `slt db upgrade`" in str(caught.value)
    assert "SLT_DB_AUTO_MIGRATE=true" in str(caught.value)


def test_with_auto_migrate_and_an_unreachable_redis_storage_works_on_the_database_alone(
    tmp_path: Path,
) -> None:
    password = "s3cret-pw"
    settings = Settings(
        data_dir=tmp_path,
        db_auto_migrate=True,
        redis_url=SecretStr(f"redis://:{password}@127.0.0.1:{free_port()}/0"),
    )

    async def body() -> list[tuple[int, float, float, float, float, float]]:
        storage = await open_storage(settings)
        try:
            await storage.candles.add_many([candle(k) for k in range(3)])
            await storage.candles.add_many([candle(3)])
            return await storage.candles.latest("ETHUSDT", "5m", 10)
        finally:
            await storage.close()

    with structlog.testing.capture_logs() as logs:
        rows = asyncio.run(body())

    assert len(rows) == 4
    warnings = [e["event"] for e in logs if e["log_level"] == "warning"]
    assert warnings == ["redis cache is off, trading continues on the database alone"]
    assert password not in repr(logs)
    assert (tmp_path / "slt.sqlite").exists()
