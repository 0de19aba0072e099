"""Which database to use: SQLite in the data directory by default, PostgreSQL from DATABASE_URL.

Cloud hosts hand out ``postgresql://user:pass@host/db?sslmode=require``; asyncpg takes ``ssl``
instead of libpq's ``sslmode``, so the URL is translated. Errors never show the password.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from slt.errors import ConfigError

SQLITE_FILE = "slt.sqlite"
_POSTGRES = (
    "postgres",
    "postgresql",
    "postgresql+asyncpg",
    "postgresql+psycopg2",
    "postgresql+psycopg",
)
_SQLITE = ("sqlite", "sqlite+aiosqlite", "sqlite+pysqlite")
_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def database_url(raw: str | None, data_dir: Path) -> URL:
    """The async SQLAlchemy URL: ``sqlite+aiosqlite`` or ``postgresql+asyncpg``."""
    if not raw:
        return URL.create("sqlite+aiosqlite", database=str(Path(data_dir) / SQLITE_FILE))
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigError("DATABASE_URL is not a database URL") from None
    if url.drivername in _SQLITE:
        return url.set(drivername="sqlite+aiosqlite")
    if url.drivername not in _POSTGRES:
        raise ConfigError(
            f"DATABASE_URL: unsupported database {url.drivername!r} (use postgresql:// or sqlite://)"
        )
    query = dict(url.query)
    sslmode = query.pop("sslmode", None)
    if sslmode is not None:
        mode = sslmode if isinstance(sslmode, str) else sslmode[-1]
        if mode not in _SSLMODES:
            raise ConfigError(f"DATABASE_URL: unknown sslmode {mode!r}")
        query["ssl"] = mode
    return url.set(drivername="postgresql+asyncpg", query=query)


def shown(url: URL) -> str:
    """The URL for messages and logs: the password is masked."""
    return url.render_as_string(hide_password=True)
