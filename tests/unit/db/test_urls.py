"""DATABASE_URL as users and cloud hosts write it becomes the async URL the engine needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from slt.adapters.db.urls import database_url, shown
from slt.errors import ConfigError


def test_without_database_url_the_database_is_sqlite_in_the_data_directory(tmp_path: Path) -> None:
    url = database_url(None, tmp_path)
    assert url.drivername == "sqlite+aiosqlite"
    assert url.database == str(tmp_path / "slt.sqlite")


def test_a_cloud_postgres_url_with_sslmode_require_becomes_asyncpg_with_ssl() -> None:
    url = database_url("postgres://app:s3cret@db.example.com:5432/trading?sslmode=require", Path())
    assert url.drivername == "postgresql+asyncpg"
    assert dict(url.query) == {"ssl": "require"}
    assert url.password == "s3cret"


def test_shown_urls_mask_the_password() -> None:
    url = database_url("postgresql://app:s3cret@db.example.com/trading", Path())
    assert "s3cret" not in shown(url) and "***" in shown(url)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("mysql://app:s3cret@host/db", "unsupported database 'mysql'"),
        ("postgresql://app:s3cret@host/db?sslmode=sometimes", "unknown sslmode"),
        ("not a url", "not a database URL"),
    ],
)
def test_unusable_database_urls_are_refused_without_showing_the_password(
    raw: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        database_url(raw, Path())
    assert "s3cret" not in str(caught.value)
