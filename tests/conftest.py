"""Fixtures shared by every test folder: where the real data lives and how to run ``slt``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from slt.runtime.numba_cache import configure_numba_cache

# Before any kernel is imported: numba's cache is keyed by the source of every kernel.
configure_numba_cache()

from slt.adapters.importers.readers import RawRows, read_feather  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
RAW = SHARED_DATA / "raw"
CATMAN = RAW / "catman77__cyft_trader" / "user_data" / "data" / "binance" / "futures"
FILIMONOV = RAW / "Filimonov-Eremeyka__freqtrade" / "user_data" / "data" / "binance"
ROSHAN = RAW / "Roshan7869__algotrading" / "user_data" / "data" / "binance"
FREQTRADE_TESTDATA = RAW / "freqtrade__freqtrade" / "tests" / "testdata"


# Distinctive secret values for the tests that prove secrets never leak, by environment name.
TEST_SECRETS = {
    "BINANCE_API_KEY": "apikey-7f3c9e1d5b",
    "BINANCE_API_SECRET": "apisecret-2b8d4f6a0c",
    "DATABASE_URL": "postgresql://slt:dbpass-5e7a9c1b3d@db.example.com:5432/slt?sslmode=require",
    "REDIS_URL": "redis://:redispass-8c2e4a6f0b@cache.example.com:6379/0",
    "DISCORD_WEBHOOK_URL": "https://discord.com/api/webhooks/123456/webhooktoken-9d1f3b5e7a",
    "TELEGRAM_TOKEN": "123456:telegramtoken-4a6c8e0b2d",
}
# The secret part of each value: none of these may appear in any output.
SECRET_MARKERS = [
    "apikey-7f3c9e1d5b",
    "apisecret-2b8d4f6a0c",
    "dbpass-5e7a9c1b3d",
    "redispass-8c2e4a6f0b",
    "webhooktoken-9d1f3b5e7a",
    "telegramtoken-4a6c8e0b2d",
]


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


def real_ohlcv(path: Path) -> RawRows:
    """A real freqtrade file as int64 ms open times and float64 OHLCV columns, read in place."""
    if not path.is_file():
        pytest.skip(f"real market data not found at {path}")
    return read_feather(path)


CATMAN_BTC_5M = CATMAN / "BTC_USDT_USDT-5m-futures.feather"
CATMAN_ETH_5M = CATMAN / "ETH_USDT_USDT-5m-futures.feather"
CATMAN_BTC_1H = CATMAN / "BTC_USDT_USDT-1h-futures.feather"
FILIMONOV_BTC_1M = FILIMONOV / "BTC_USDT-1m.feather"
FILIMONOV_ETH_1M = FILIMONOV / "ETH_USDT-1m.feather"
ROSHAN_BTC_SPOT_1H = ROSHAN / "BTC_USDT-1h.feather"
# The ema_cross comparison rules, shared with the peer benchmark.
PEER_RULES_FILE = Path(__file__).resolve().parents[1] / "docs/examples/ema_cross_peer_rules.toml"
