"""``slt exchange serve`` end to end: a real server process over an imported store, a demo
account whose secret is never printed, and a clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import CATMAN_BTC_5M, SltRunner


def test_serve_replays_the_store_prints_only_the_key_and_stops_on_sigterm(
    run_slt: SltRunner, tmp_path: Path
) -> None:
    assert run_slt("data", "import", CATMAN_BTC_5M).returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLT_", "BINANCE_"))}
    env |= {"SLT_DATA_DIR": str(tmp_path / "user_data"), "NO_COLOR": "1", "COLUMNS": "300"}
    server = subprocess.Popen(
        [sys.executable, "-m", "slt", "exchange", "serve", "--symbols", "BTCUSDT",
         "--replay-start", "2024-01-01", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            lines.append(line)
            if "Local Binance USDT-M exchange on" in line or not line:
                break
        found = re.search(r"http://127\.0\.0\.1:(\d+)", lines[-1])
        assert found, "".join(lines) + (server.stderr.read() if server.stderr else "")
        url = f"http://127.0.0.1:{found.group(1)}"
        with urllib.request.urlopen(f"{url}/fapi/v1/time", timeout=10) as answer:
            assert abs(json.loads(answer.read())["serverTime"] - time.time() * 1000) < 5_000
        kept = tmp_path / "user_data" / "local-exchange" / "demo-account"
        key, secret = kept.read_text().strip().split(":")
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
        printed = "".join(lines)
        assert f"Demo account API key: {key}" in printed and secret not in printed
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "Stopped." in out and secret not in out + err


def test_serve_refuses_a_symbol_the_store_does_not_hold(run_slt: SltRunner) -> None:
    done = run_slt("exchange", "serve", "--symbols", "SOLUSDT", "--replay-start", "2024-01-01")
    assert done.returncode == 2
    assert "the store holds no futures candles of SOLUSDT" in done.stderr
