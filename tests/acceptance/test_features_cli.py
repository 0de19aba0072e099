"""``slt features`` end to end: real candles in the store, a Parquet feature file out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from slt.domain.features.families import family_versions
from slt.domain.features.schema import schema_hash
from tests.conftest import CATMAN_BTC_5M, SltRunner


@pytest.fixture()
def imported(shared_data: Path, run_slt: SltRunner) -> SltRunner:
    result = run_slt("data", "import", CATMAN_BTC_5M)
    assert result.returncode == 0, result.stderr
    return run_slt


def test_features_writes_one_valid_row_per_candle_after_loading_the_warmup_history(
    imported: SltRunner, tmp_path: Path
) -> None:
    out = tmp_path / "features.parquet"
    result = imported(
        "features", "--symbol", "BTCUSDT", "--market", "futures", "--timeframe", "5m",
        "--start", "2023-04-01", "--end", "2023-04-08", "--out", out, "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rows"] == 7 * 288 == summary["valid_rows"]
    assert summary["first"] == "2023-04-01 00:00" and summary["last"] == "2023-04-07 23:55"
    table = pq.read_table(out)
    assert table.num_rows == 7 * 288
    assert table.column_names[:4] == ["open_time", "open_time_ms", "valid", "invalid_reason"]
    meta = table.schema.metadata
    assert meta[b"slt.feature_schema_hash"].decode() == summary["schema_hash"]
    described = json.loads(meta[b"slt.feature_schema"])
    assert schema_hash(described) == summary["schema_hash"]
    assert family_versions(described) == summary["families"]
    assert summary["families"].startswith("indicators v")
    columns = json.loads(meta[b"slt.columns"])
    assert [c["name"] for c in columns] == table.column_names[4:]
    assert all(c["definition"] for c in columns)
    rsi = table.column("rsi").to_numpy()
    assert np.isfinite(rsi).all() and ((rsi >= 0) & (rsi <= 100)).all()


def test_features_from_the_first_candle_marks_the_warmup_rows_invalid_with_a_reason(
    imported: SltRunner, tmp_path: Path
) -> None:
    out = tmp_path / "f.parquet"
    result = imported(
        "features", "--symbol", "BTCUSDT", "--end", "2023-01-03", "--out", out, "--json"
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rows"] == 2 * 288 and summary["valid_rows"] == 0
    assert sum(summary["invalid"].values()) == 2 * 288
    reasons = set(pq.read_table(out).column("invalid_reason").to_pylist())
    assert reasons <= {"warm-up: not enough history yet"}


def test_features_for_a_series_not_in_the_store_names_what_the_store_holds(
    imported: SltRunner, tmp_path: Path
) -> None:
    result = imported("features", "--symbol", "DOGEUSDT", "--out", tmp_path / "x.parquet")
    assert result.returncode == 2
    assert "BTCUSDT" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.parquet").exists()


def test_features_with_end_before_start_is_refused(imported: SltRunner, tmp_path: Path) -> None:
    result = imported(
        "features", "--symbol", "BTCUSDT", "--start", "2023-02-01", "--end", "2023-01-01",
        "--out", tmp_path / "x.parquet",
    )  # fmt: skip
    assert result.returncode == 2 and "must be after" in result.stderr
