"""``slt db`` end to end on the default SQLite database in the data directory."""

from __future__ import annotations

import json

from tests.conftest import SltRunner


def test_db_upgrade_status_and_downgrade_to_base_on_the_default_sqlite(run_slt: SltRunner) -> None:
    before = json.loads(run_slt("db", "status", "--json").stdout)
    assert before["current"] is None and not before["up_to_date"]
    assert (
        before["database"].startswith("sqlite+aiosqlite:///") and "slt.sqlite" in before["database"]
    )
    upgraded = run_slt("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "schema at 0001" in upgraded.stdout
    after = json.loads(run_slt("db", "status", "--json").stdout)
    assert after["up_to_date"] and after["current"] == after["head"]
    emptied = run_slt("db", "downgrade", "base")
    assert emptied.returncode == 0, emptied.stderr
    assert json.loads(run_slt("db", "status", "--json").stdout)["current"] is None


def test_db_status_of_an_unreachable_database_says_so_without_the_password(
    run_slt: SltRunner,
) -> None:
    result = run_slt(
        "db", "status", "--json",
        env={"DATABASE_URL": "postgresql://root:hunter2@127.0.0.1:1/none?sslmode=disable"},
    )  # fmt: skip
    assert result.returncode == 2
    assert "cannot reach database postgresql+asyncpg://root:***@127.0.0.1:1/none" in result.stderr
    assert "hunter2" not in result.stdout + result.stderr
