"""Schema migrations (Alembic) run from Python: upgrade, downgrade, status, start-up check."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from slt.adapters.db.connect import create_engine
from slt.adapters.db.urls import shown
from slt.errors import SltError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class DatabaseUnavailableError(SltError):
    """The database cannot be reached or refused the connection."""


class SchemaVersionError(SltError):
    """The database schema is not the version this program needs."""


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _with_connection(connection: Any, action: str, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    if action == "upgrade":
        command.upgrade(config, revision)
    else:
        command.downgrade(config, revision)


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def upgrade(url: URL, revision: str = "head") -> None:
    await _run(url, "upgrade", revision)


async def downgrade(url: URL, revision: str) -> None:
    """``base`` removes every table."""
    await _run(url, "downgrade", revision)


async def _run(url: URL, action: str, revision: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_with_connection, action, revision)
    except (OSError, DBAPIError) as exc:
        raise _unavailable(url, exc) from None
    finally:
        await engine.dispose()


def _unavailable(url: URL, exc: Exception) -> DatabaseUnavailableError:
    """The driver's reason without the URL it may echo (the password stays out)."""
    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    if url.password:
        reason = reason.replace(str(url.password), "***")
    return DatabaseUnavailableError(f"cannot reach database {shown(url)}: {reason}")


async def status(url: URL) -> SchemaStatus:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            current = await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    except (OSError, DBAPIError) as exc:
        raise _unavailable(url, exc) from None
    finally:
        await engine.dispose()
    return SchemaStatus(current=current, head=head_revision())


async def ensure_schema(url: URL, auto_migrate: bool) -> SchemaStatus:
    """Start-up check: migrate when allowed, otherwise refuse with the command to run."""
    found = await status(url)
    if found.up_to_date:
        return found
    if auto_migrate:
        await upgrade(url)
        return await status(url)
    raise SchemaVersionError(
        f"database {shown(url)} is at schema {found.current or 'empty'}, this version needs "
        f"{found.head}: run `slt db upgrade` (or set SLT_DB_AUTO_MIGRATE=true)"
    )
