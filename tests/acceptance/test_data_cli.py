"""``slt data import / list / check`` end to end, through the real command in a subprocess."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from tests.conftest import CATMAN, FREQTRADE_TESTDATA, SltRunner


def _store_fingerprint(root: Path) -> dict[str, str]:
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.fixture()
def store_root(tmp_path: Path) -> Path:
    return tmp_path / "user_data" / "market"


def test_help_lists_every_command_group(run_slt: SltRunner) -> None:
    result = run_slt("--help")
    assert result.returncode == 0
    for group in ("data", "backtest", "walkforward", "db", "paper", "live", "serve", "config"):
        assert group in result.stdout


def test_version_prints_the_package_version(run_slt: SltRunner) -> None:
    result = run_slt("version")
    assert result.returncode == 0
    assert result.stdout.startswith("slt 0.")


def test_import_then_list_then_check_on_real_futures_files(
    shared_data: Path, run_slt: SltRunner
) -> None:
    imported = run_slt("data", "import", CATMAN)
    assert imported.returncode == 0, imported.stderr
    assert "BTCUSDT futures 5m candles" in imported.stdout
    listed = run_slt("data", "list", "--json")
    rows = {(r["symbol"], r["timeframe"], r["kind"]): r for r in json.loads(listed.stdout)}
    assert rows[("BTCUSDT", "5m", "candles")]["rows"] == 143_900
    assert rows[("BTCUSDT", "5m", "candles")]["first"] == "2023-01-01 00:00"
    assert rows[("BTCUSDT", "5m", "candles")]["last"] == "2024-05-14 15:35"
    assert rows[("ETHUSDT", "8h", "funding")]["gaps"] == 0
    checked = run_slt("data", "check", "--symbol", "BTC/USDT:USDT", "--timeframe", "5m")
    assert checked.returncode == 0, checked.stdout
    assert "143,900 rows" in checked.stdout and "0 gaps" in checked.stdout


def test_check_lists_real_outage_gaps_with_their_lengths(
    shared_data: Path, run_slt: SltRunner
) -> None:
    path = shared_data / "raw/Roshan7869__algotrading/user_data/data/binance/BTC_USDT-1h.feather"
    assert run_slt("data", "import", path).returncode == 0
    result = run_slt("data", "check", "--symbol", "BTCUSDT", "--market", "spot", "--json")
    assert result.returncode == 0  # gaps alone are not integrity problems
    (report,) = json.loads(result.stdout)
    assert (report["gaps"], report["missing"]) == (27, 122)
    assert report["longest_gaps"][0]["missing"] == 33  # 34 h between candles: 33 missing
    assert run_slt("data", "check", "--fail-on-gaps").returncode == 1


def test_check_of_a_file_reports_duplicates_order_and_ohlc_problems(
    tmp_path: Path, run_slt: SltRunner
) -> None:
    path = tmp_path / "BTC_USDT-1m.json"
    rows = [
        [60_000, 10, 11, 9, 10, 1],
        [0, 10, 11, 9, 10, 1],
        [60_000, 10, 11, 9, 10, 1],
        [120_000, 10, 9, 9, 10, 1],
        [180_000, 0, 11, 0, 10, 1],
    ]
    path.write_text(json.dumps(rows))
    result = run_slt("data", "check", path, "--json")
    assert result.returncode == 1
    (report,) = json.loads(result.stdout)
    assert report["problems"] == {
        "duplicates": 1,
        "non_monotonic": 1,
        "ohlc_inconsistent": 1,
        "non_positive_prices": 1,
    }


BAD_FILES = {
    "truncated.feather": "not a readable feather file",
    "columns.json": "expected [time, open, high, low, close, volume]",
    "mixed.json": "mixed timeframes",
    "empty.json": "holds no rows",
    "garbage.json.gz": "not a readable JSON file",
    "conflict.json": "twice with different values",
}


def _write_bad(folder: Path, kind: str) -> Path:
    minutes = [[i * 60_000, 1, 2, 0.5, 1.5, 3] for i in range(100)]
    hours = [[minutes[-1][0] + i * 3_600_000, 1, 2, 0.5, 1.5, 3] for i in range(1, 20)]
    contents: dict[str, bytes] = {
        "columns.json": json.dumps([[0, 1, 2, 3]]).encode(),
        "mixed.json": json.dumps(minutes + hours).encode(),
        "empty.json": b"[]",
        "garbage.json.gz": b"\x1f\x8b\x08 definitely not gzip",
        "conflict.json": json.dumps([[0, 1, 2, 0.5, 1.5, 3], [0, 1, 2, 0.5, 1.4, 3]]).encode(),
    }
    name = {
        "truncated.feather": "BTC_USDT_USDT-5m-futures.feather",
        "columns.json": "BTC_USDT-1m.json",
        "mixed.json": "BTC_USDT-1m.json",
        "empty.json": "BTC_USDT-1m.json",
        "garbage.json.gz": "BTC_USDT-1m.json.gz",
        "conflict.json": "BTC_USDT-1m.json",
    }[kind]
    path = folder / kind.split(".")[0] / name
    path.parent.mkdir(parents=True)
    if kind == "truncated.feather":
        real = (CATMAN / "BTC_USDT_USDT-5m-futures.feather").read_bytes()
        path.write_bytes(real[: len(real) // 2])
    else:
        path.write_bytes(contents[kind])
    return path


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_a_bad_file_fails_the_whole_import_and_leaves_the_store_as_it_was(
    shared_data: Path, tmp_path: Path, run_slt: SltRunner, store_root: Path, kind: str
) -> None:
    good = CATMAN / "ETH_USDT_USDT-8h-funding_rate.feather"
    assert run_slt("data", "import", good).returncode == 0
    before = _store_fingerprint(store_root)
    bad = _write_bad(tmp_path / "bad", kind)
    result = run_slt("data", "import", CATMAN / "BTC_USDT_USDT-1h-futures.feather", bad)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert str(bad) in line and BAD_FILES[kind] in line
    assert _store_fingerprint(store_root) == before


def test_asking_for_a_series_the_store_lacks_names_what_it_holds(
    shared_data: Path, run_slt: SltRunner
) -> None:
    assert run_slt("data", "import", CATMAN / "ETH_USDT_USDT-1h-futures.feather").returncode == 0
    result = run_slt("data", "check", "--symbol", "DOGEUSDT")
    assert result.returncode == 2
    assert "DOGEUSDT" in result.stderr and "ETHUSDT futures 1h candles" in result.stderr


def test_a_missing_path_is_an_error_naming_it(run_slt: SltRunner, tmp_path: Path) -> None:
    result = run_slt("data", "import", tmp_path / "nope.feather")
    assert result.returncode == 2
    assert "nope.feather: no such file or directory" in result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_an_unwritable_data_directory_is_a_one_line_error(
    shared_data: Path, tmp_path: Path, run_slt: SltRunner
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    result = run_slt(
        "data",
        "import",
        CATMAN / "ETH_USDT_USDT-1h-futures.feather",
        env={"SLT_DATA_DIR": str(locked)},
    )
    assert result.returncode == 2
    assert "not writable" in result.stderr


def test_a_data_directory_that_is_a_file_is_a_one_line_error_and_nothing_is_written(
    shared_data: Path, tmp_path: Path, run_slt: SltRunner
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    result = run_slt(
        "data",
        "import",
        CATMAN / "ETH_USDT_USDT-1h-futures.feather",
        env={"SLT_DATA_DIR": str(blocker)},
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "not writable" in result.stderr
    assert blocker.read_text() == "not a folder"


def test_the_unnamed_freqtrade_json_imports_with_an_explicit_symbol(
    shared_data: Path, run_slt: SltRunner
) -> None:
    path = FREQTRADE_TESTDATA / "orderflow" / "candles.json"
    refused = run_slt("data", "import", path)
    assert refused.returncode == 2 and "--symbol" in refused.stderr
    result = run_slt("data", "import", path, "--symbol", "BTCUSDT", "--market", "futures")
    assert result.returncode == 0, result.stderr
    assert "BTCUSDT futures 5m candles" in result.stdout
