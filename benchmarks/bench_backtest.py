"""Backtest speed targets of issue 4, on the real 143,900-bar BTCUSDT 5m futures file.

    .venv/bin/python benchmarks/bench_backtest.py [--write]

End to end means everything after the candles are in memory: features (smc only), signals,
the simulation and the Trade objects. Warm numbers are medians after one warm-up run (numba
compiled and loaded); the cold column is the first run in this process. The event-driven
wiring (the paper-trading path) is timed on the same data for comparison.
"""

from __future__ import annotations

import os
import platform
import sys
import time

import numba
import numpy as np
from slt.engine.event_runner import run_event_driven

from bench_data import FUTURES_5M, PEER_RULES_FILE, cpu_model, publish, timed
from slt.adapters.importers.readers import read_feather
from slt.domain.features.matrix import compute_features
from slt.domain.series import Candles, Market, SeriesKey
from slt.domain.strategies.registry import builtin_strategy
from slt.domain.trading.symbol_rules import symbol_rules
from slt.engine.backtest import MarketData, run_backtest
from slt.runtime.trading_config import TradingConfig
from slt.runtime.trading_config_file import load_trading_config

BEGIN, END = "<!-- bench_backtest:begin -->", "<!-- bench_backtest:end -->"

# The ema_cross rules (see the file): stop 1 %, target 2 %, reversal, 0.05 % per side.
PEER_RULES = load_trading_config(PEER_RULES_FILE)


def load() -> Candles:
    raw = read_feather(FUTURES_5M)
    key = SeriesKey("BTCUSDT", Market.FUTURES, "5m")
    return Candles.from_arrays(key, raw.times_ms, raw.open, raw.high, raw.low, raw.close,
                               raw.volume)  # fmt: skip


def main() -> None:
    if not FUTURES_5M.is_file():
        sys.exit(f"real data not found at {FUTURES_5M}")
    candles = load()
    data = MarketData(candles, int(candles.open_time_ms[0]), symbol_rules("BTCUSDT"))
    smc, ema = builtin_strategy("smc"), builtin_strategy("ema_cross")
    counts: dict[str, int] = {}

    def run_ema() -> None:
        sig = ema.signals(candles, None)
        result, _ = run_backtest(data, sig.direction, sig.score, PEER_RULES)
        counts["ema_cross"] = len(result.trades)

    def run_smc() -> None:
        features = compute_features(candles)
        sig = smc.signals(candles, features)
        result, _ = run_backtest(data, sig.direction, sig.score, TradingConfig())
        counts["smc"] = len(result.trades)

    sig = ema.signals(candles, None)
    rows = []
    for name, fn, target in (
        ("ema_cross: signals + simulation (issue rules)", run_ema, 150.0),
        ("smc: features + signals + simulation (default config)", run_smc, 1500.0),
    ):
        cold, warm = timed(fn, repeat=7)
        key = name.split(":")[0]
        rows.append(
            f"| {name} | {warm:.0f} ms | {cold:.0f} ms | {counts[key]:,} | < {target:.0f} ms |"
        )
    started = time.perf_counter()
    trades, _, _ = run_event_driven(data, sig.direction, sig.score, PEER_RULES)
    event_ms = (time.perf_counter() - started) * 1000
    rows.append(
        f"| ema_cross through the event-driven core and simulated broker | {event_ms:,.0f} ms "
        f"| - | {len(trades):,} | - |"
    )
    text = "\n".join(
        [
            BEGIN,
            "## Backtest (issue 4)",
            "",
            f"Machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"numba {numba.__version__}, numpy {np.__version__}. Data: {len(candles):,} bars of "
            "BTCUSDT 5m futures (catman77, 2023-01-01 to 2024-05-14), in memory. "
            "`benchmarks/bench_backtest.py`.",
            "",
            "| what | warm median | cold (first run in process) | trades | target |",
            "|---|---|---|---|---|",
            *rows,
            "",
            "The event-driven wiring runs the same kernels event by event in Python (as paper "
            "trading does); it is the reference the compiled loop is tested against.",
            END,
        ]
    )
    publish(text, BEGIN, END)


if __name__ == "__main__":
    main()
