"""``slt db`` end to end on the default SQLite database in the data directory."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from tests.conftest import SltRunner


def test_db_upgrade_status_and_downgrade_to_base_on_the_default_sqlite(run_slt: SltRunner) -> None:
    before = json.loads(run_slt("db", "status", "--json").stdout)
    assert before["current"] is None and not before["up_to_date"]
    assert (
        before["database"].startswith("sqlite+aiosqlite:///") and "slt.sqlite" in before["database"]
    )
    upgraded = run_slt("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    after = json.loads(run_slt("db", "status", "--json").stdout)
    assert after["up_to_date"] and after["current"] == after["head"]
    assert f"schema at {after['head']}" in upgraded.stdout
    stepped_back = run_slt("db", "downgrade", "0001")
    assert stepped_back.returncode == 0, stepped_back.stderr
    assert "schema at 0001" in stepped_back.stdout
    assert not json.loads(run_slt("db", "status", "--json").stdout)["up_to_date"]
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


def test_db_export_writes_a_parquet_file_and_refuses_an_unknown_table(
    run_slt: SltRunner, tmp_path: Path
) -> None:
    assert run_slt("db", "upgrade").returncode == 0
    out = tmp_path / "vt.parquet"
    result = run_slt("db", "export", "--table", "virtual_trades", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "0 rows written" in result.stdout
    assert pq.read_table(out).num_rows == 0
    assert "features" in pq.read_table(out).column_names
    bad = run_slt("db", "export", "--table", "nope", "--out", tmp_path / "n.parquet")
    assert bad.returncode == 2 and "unknown table 'nope'" in bad.stderr
