"""Fixtures shared by every test folder: where the real data lives and how to run ``slt``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
RAW = SHARED_DATA / "raw"
CATMAN = RAW / "catman77__cyft_trader" / "user_data" / "data" / "binance" / "futures"
FILIMONOV = RAW / "Filimonov-Eremeyka__freqtrade" / "user_data" / "data" / "binance"
ROSHAN = RAW / "Roshan7869__algotrading" / "user_data" / "data" / "binance"
FREQTRADE_TESTDATA = RAW / "freqtrade__freqtrade" / "tests" / "testdata"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real Binance data beside the project; tests that need it skip only where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real market data not found at {SHARED_DATA} (../shared/data is absent)")
    return SHARED_DATA


SltRunner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture()
def run_slt(tmp_path: Path) -> SltRunner:
    """Run the real ``slt`` command in a subprocess with its data directory under tmp_path."""

    def run(
        *args: str | Path, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SLT_", "BINANCE_"))}
        full_env.update(
            {"SLT_DATA_DIR": str(tmp_path / "user_data"), "NO_COLOR": "1", "COLUMNS": "200"}
        )
        full_env.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "slt", *map(str, args)],
            capture_output=True,
            text=True,
            env=full_env,
            cwd=tmp_path,
            timeout=300,
        )

    return run
