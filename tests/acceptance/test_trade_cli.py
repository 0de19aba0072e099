"""``slt live`` end to end: it refuses Binance's main URLs without the real-money
confirmation and missing keys before anything goes out; against a local exchange it trades
until SIGINT, stops cleanly with a summary, and leaves every open position with its stop on
the exchange."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slt.adapters.exchange.local.tapes import load_tapes
from slt.domain.clock import parse_utc_ms
from tests.conftest import CATMAN_BTC_5M, CATMAN_ETH_5M, SltRunner
from tests.support.local_exchange import ACCOUNT, real_store, serving

KEYS = {"BINANCE_API_KEY": ACCOUNT.key, "BINANCE_API_SECRET": ACCOUNT.secret}


def test_binance_main_urls_need_the_real_money_confirmation(run_slt: SltRunner) -> None:
    done = run_slt("live", "--symbols", "BTCUSDT", env=KEYS)
    assert done.returncode == 2
    assert "real money" in done.stderr and "--confirm-real-money" in done.stderr
    assert ACCOUNT.secret not in done.stdout + done.stderr


def test_keys_are_required(run_slt: SltRunner) -> None:
    done = run_slt("live", "--exchange-url", "http://127.0.0.1:9")
    assert done.returncode == 2 and "BINANCE_API_KEY" in done.stderr


@pytest.mark.shared_data
def test_against_a_local_exchange_it_trades_until_sigint_and_leaves_stops(
    tmp_path: Path,
) -> None:
    start = parse_utc_ms("2024-01-01")
    store = real_store(tmp_path / "store", [CATMAN_BTC_5M, CATMAN_ETH_5M])
    tapes = load_tapes(store, ["BTCUSDT", "ETHUSDT"], start, start + 4 * 86_400_000)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLT_", "BINANCE_"))}
    env |= KEYS | {"SLT_DATA_DIR": str(tmp_path / "user_data"), "NO_COLOR": "1",
                   "COLUMNS": "300"}  # fmt: skip
    with serving(tapes, start, speed=math.inf) as ex:
        bot = subprocess.Popen(
            [sys.executable, "-m", "slt", "live", "--symbols", "BTCUSDT,ETHUSDT",
             "--timeframe", "5m", "--strategy", "ema_cross", "--exchange-url", ex.url],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
        )  # fmt: skip
        account = ex.exchange.accounts[ACCOUNT.key]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and bot.poll() is None:
            if sum(len(account.desk(s).trades) for s in ("BTCUSDT", "ETHUSDT")) >= 6:
                break
            time.sleep(0.2)
        bot.send_signal(signal.SIGINT)
        out, err = bot.communicate(timeout=60)
        for symbol in ("BTCUSDT", "ETHUSDT"):
            desk = account.desk(symbol)
            if desk.side:  # an open position keeps its protective stop after the stop
                stops = [a for a in desk.open_algos() if a.order_type == "STOP_MARKET"]
                assert stops, f"{symbol} is left without a stop"
        fills = sum(len(account.desk(s).trades) for s in ("BTCUSDT", "ETHUSDT"))
    assert bot.returncode == 0, err[-2_000:]
    assert "slt live: BTCUSDT, ETHUSDT 5m, strategy ema_cross" in out
    assert "Stopped." in out and "protective orders stay on the exchange" in out
    assert fills >= 6
    assert ACCOUNT.secret not in out + err


@pytest.mark.shared_data
def test_paper_needs_no_keys_trades_until_sigint_and_refuses_unlisted_symbols(
    tmp_path: Path, run_slt: SltRunner
) -> None:
    start = parse_utc_ms("2024-01-01")
    store = real_store(tmp_path / "store", [CATMAN_BTC_5M])
    tapes = load_tapes(store, ["BTCUSDT"], start, start + 4 * 86_400_000)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLT_", "BINANCE_"))}
    env |= {"SLT_DATA_DIR": str(tmp_path / "user_data"), "NO_COLOR": "1", "COLUMNS": "300"}
    with serving(tapes, start, speed=math.inf) as ex:
        unlisted = run_slt("paper", "--symbols", "SOLUSDT", "--exchange-url", ex.url)
        bot = subprocess.Popen(
            [sys.executable, "-m", "slt", "paper", "--symbols", "BTCUSDT", "--timeframe", "5m",
             "--strategy", "ema_cross", "--exchange-url", ex.url],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and ex.exchange.clock.history_now() < start + 43_200_000:
            time.sleep(0.2)
        bot.send_signal(signal.SIGINT)
        out, err = bot.communicate(timeout=60)
        account = ex.exchange.accounts[ACCOUNT.key]
        assert not account.desk("BTCUSDT").trades  # paper sends no order to the exchange
    assert unlisted.returncode == 2 and "the exchange lists no SOLUSDT" in unlisted.stderr
    assert bot.returncode == 0, err[-2_000:]
    assert "slt paper: BTCUSDT 5m, strategy ema_cross" in out and "Stopped." in out
    summary = out[out.index("Stopped.") :]
    assert "closed trades 0" not in summary  # half a day of 5m candles: ema_cross trades
    status = run_slt("status", "--mode", "paper", "--json")  # what the session recorded
    assert status.returncode == 0, status.stderr
    recorded = json.loads(status.stdout)
    assert recorded["recorded"] is True and recorded["session"] is not None
    assert any(c["symbol"] == "BTCUSDT" for c in recorded["last_candles"])


@pytest.mark.shared_data
def test_keys_the_exchange_refuses_stop_the_start_before_anything_runs(
    tmp_path: Path, run_slt: SltRunner
) -> None:
    start = parse_utc_ms("2024-01-01")
    store = real_store(tmp_path / "store", [CATMAN_BTC_5M])
    tapes = load_tapes(store, ["BTCUSDT"], start, start + 86_400_000)
    wrong = {"BINANCE_API_KEY": "notAKey0123456789", "BINANCE_API_SECRET": "notASecret987654321"}
    with serving(tapes, start, speed=math.inf) as ex:
        done = run_slt("live", "--symbols", "BTCUSDT", "--exchange-url", ex.url, env=wrong)
        assert not ex.exchange.accounts[ACCOUNT.key].desk("BTCUSDT").orders
    assert done.returncode == 2, done.stderr
    assert "refuses these API keys" in done.stderr and "-2015" in done.stderr
    assert wrong["BINANCE_API_SECRET"] not in done.stdout + done.stderr
