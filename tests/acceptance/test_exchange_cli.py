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
    server, url, printed = _start(
        ["--symbols", "BTCUSDT", "--replay-start", "2024-01-01", "--port", "0"], env, tmp_path
    )
    try:
        with urllib.request.urlopen(f"{url}/fapi/v1/time", timeout=10) as answer:
            assert abs(json.loads(answer.read())["serverTime"] - time.time() * 1000) < 5_000
        kept = tmp_path / "user_data" / "local-exchange" / "demo-account"
        key, secret = kept.read_text().strip().split(":")
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
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


def _start(
    args: list[str], env: dict[str, str], cwd: Path
) -> tuple[subprocess.Popen[str], str, str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "slt", "exchange", "serve", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd,
    )  # fmt: skip
    assert server.stdout is not None
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = server.stdout.readline()
        lines.append(line)
        if "Local Binance USDT-M exchange on" in line or not line:
            break
    found = re.search(r"http://127\.0\.0\.1:(\d+)", lines[-1])
    if not found:
        server.kill()
        raise AssertionError("".join(lines) + (server.stderr.read() if server.stderr else ""))
    return server, f"http://127.0.0.1:{found.group(1)}", "".join(lines)


def _stop(server: subprocess.Popen[str]) -> str:
    server.send_signal(signal.SIGTERM)
    out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    return out


def test_with_state_balances_positions_and_orders_survive_a_restart(
    run_slt: SltRunner, tmp_path: Path
) -> None:
    from slt.adapters.exchange.local.auth import ApiAccount
    from tests.support.binance_calls import SystemWall, call, ok

    assert run_slt("data", "import", CATMAN_BTC_5M).returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLT_", "BINANCE_"))}
    env |= {"SLT_DATA_DIR": str(tmp_path / "user_data"), "NO_COLOR": "1", "COLUMNS": "300"}
    state = tmp_path / "state"
    args = ["--symbols", "BTCUSDT", "--replay-start", "2024-01-01", "--port", "0",
            "--state", str(state)]  # fmt: skip
    wall = SystemWall()
    server, url, _ = _start(args, env, tmp_path)
    try:
        key, secret = (state / "demo-account").read_text().strip().split(":")
        me = ApiAccount(key, secret)
        ok(call(url, "POST", "/fapi/v1/order", wall, me, symbol="BTCUSDT", side="BUY",
                type="MARKET", quantity="0.010"))  # fmt: skip
        entry = float(ok(call(url, "GET", "/fapi/v3/positionRisk", wall, me))[0]["entryPrice"])
        limit = ok(call(url, "POST", "/fapi/v1/order", wall, me, symbol="BTCUSDT", side="SELL",
                        type="LIMIT", timeInForce="GTC", quantity="0.010", reduceOnly="true",
                        price=f"{entry * 1.08:.1f}"))  # fmt: skip
        algo = ok(call(url, "POST", "/fapi/v1/algoOrder", wall, me, algoType="CONDITIONAL",
                       symbol="BTCUSDT", side="SELL", type="STOP_MARKET", closePosition="true",
                       triggerPrice=f"{entry * 0.92:.1f}"))  # fmt: skip
        [before] = ok(call(url, "GET", "/fapi/v3/balance", wall, me))
    finally:
        _stop(server)
    assert (state / "exchange-state.npz").exists()
    stopped_at = wall.now
    server, url, printed = _start(args, env, tmp_path)
    try:
        [position] = ok(call(url, "GET", "/fapi/v3/positionRisk", wall, me))
        [resting] = ok(call(url, "GET", "/fapi/v1/openOrders", wall, me, symbol="BTCUSDT"))
        [stop] = ok(call(url, "GET", "/fapi/v1/openAlgoOrders", wall, me))
        [after] = ok(call(url, "GET", "/fapi/v3/balance", wall, me))
        funding = ok(call(url, "GET", "/fapi/v1/income", wall, me, incomeType="FUNDING_FEE"))
        # The stop still rests at the venue: it would close the position.
        desk_orders = ok(call(url, "GET", "/fapi/v1/allOrders", wall, me, symbol="BTCUSDT"))
        new = ok(call(url, "POST", "/fapi/v1/order", wall, me, symbol="BTCUSDT", side="BUY",
                      type="MARKET", quantity="0.010"))  # fmt: skip
    finally:
        _stop(server)
    assert "Restored balances, positions, orders and the clock" in printed
    assert position["positionAmt"] == "0.010" and float(position["entryPrice"]) == entry
    assert resting["orderId"] == limit["orderId"] and resting["status"] == "NEW"
    assert stop["algoId"] == algo["algoId"] and stop["algoStatus"] == "NEW"
    paid_since = sum(float(f["income"]) for f in funding if f["time"] >= stopped_at)
    assert float(after["balance"]) == float(before["balance"]) + paid_since
    assert len(desk_orders) == 2 and new["orderId"] > limit["orderId"]  # ids keep counting


def test_serve_refuses_a_bad_speed_and_a_bad_fault_scenario_before_starting(
    run_slt: SltRunner, tmp_path: Path
) -> None:
    speed = run_slt("exchange", "serve", "--replay-start", "2024-01-01", "--speed", "fast")
    assert speed.returncode == 2 and "--speed must be a number of 1 or more, or max" in speed.stderr
    scenario = tmp_path / "outage.toml"
    scenario.write_text('[[fault]]\nkind = "restart"\nsecond = 3\nafter_s = 10\n')
    faults = run_slt("exchange", "serve", "--replay-start", "2024-01-01", "--faults", scenario)
    assert faults.returncode == 2
    assert "outage.toml, fault 1 (restart): unknown parameter(s) second" in faults.stderr
