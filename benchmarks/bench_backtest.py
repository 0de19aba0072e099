"""Speed of the portfolio engine (issue 12) on the real 143,900-bar 5m futures files.

    .venv/bin/python benchmarks/bench_backtest.py [--write]

End to end means everything after the candles are in memory: features (smc), signals, the
stop distances, laying the market out, the simulation and the Trade objects. Warm numbers are
medians after one warm-up run (numba's kernels loaded); the cold column is the first run in
this process. The event path is the wiring paper and live trading run: every event an object
through ``Reducer.step``, every command through the simulated exchange's client.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import numba
import numpy as np

from bench_data import FUTURES_5M, PEER_RULES_FILE, cpu_model, publish, timed
from slt.adapters.importers.readers import read_feather
from slt.domain.features.matrix import compute_features
from slt.domain.results import MarketData
from slt.domain.series import Candles, Market, SeriesKey
from slt.domain.strategies.base import Strategy
from slt.domain.strategies.registry import builtin_strategy
from slt.domain.trading.symbol_rules import symbol_rules
from slt.engine.backtest import Prepared, prepare, run_portfolio, run_prepared
from slt.engine.config import EngineConfig
from slt.engine.event_driver import rules_of, run_events
from slt.engine.messages import CandleClosed, Event
from slt.engine.pipeline import ScoredSignals, scored
from slt.engine.reducer import Reducer
from slt.runtime.trading_config import TradingConfig
from slt.runtime.trading_config_file import load_trading_config

BEGIN, END = "<!-- bench_backtest:begin -->", "<!-- bench_backtest:end -->"
ETH_5M = FUTURES_5M.with_name("ETH_USDT_USDT-5m-futures.feather")
# The ema_cross rules: stop 1 %, target 2 %, reversal, 0.05 % per side.
PEER_RULES = load_trading_config(PEER_RULES_FILE).engine()
DEFAULT = TradingConfig().engine()


def load(path: Path, symbol: str) -> Candles:
    raw = read_feather(path)
    key = SeriesKey(symbol, Market.FUTURES, "5m")
    return Candles.from_arrays(key, raw.times_ms, raw.open, raw.high, raw.low, raw.close,
                               raw.volume)  # fmt: skip


def signals_of(strategy: Strategy, candles: Candles, config: EngineConfig) -> ScoredSignals:
    features = compute_features(candles) if strategy.uses_features else None
    return scored(strategy.signals(candles, features), candles, config.stops)


def end_to_end(
    datas: list[MarketData], strategy: Strategy, config: EngineConfig, counts: dict[str, int],
    name: str,
) -> None:  # fmt: skip
    signals = [signals_of(strategy, d.candles, config) for d in datas]
    result, _prepared, _run = run_portfolio(datas, signals, config)
    counts[name] = len(result.trades)


def candle_latency(prepared: Prepared) -> tuple[list[float], list[float]]:
    """Per CandleClosed, the time of ``Reducer.step`` (µs): every close of a real session,
    replayed in its order with every other event, only the closes timed. (all, with a signal)"""
    events: list[Event] = []
    run_events(prepared, "bench001", observe=lambda e, *_: events.append(e))
    reducer = Reducer(prepared.config, rules_of(prepared))
    state = reducer.new_state("bench001")
    every, signalled = [], []
    clock = time.perf_counter_ns
    for event in events:
        if isinstance(event, CandleClosed):
            start = clock()
            state, _ = reducer.step(state, event)
            took = (clock() - start) / 1000
            every.append(took)
            if event.direction != 0:
                signalled.append(took)
        else:
            state, _ = reducer.step(state, event)
    return every, signalled


def renamed(data: MarketData, symbol: str) -> MarketData:
    c = data.candles
    candles = Candles.from_arrays(SeriesKey(symbol, Market.FUTURES, "5m"), c.open_time_ms, c.open,
                                  c.high, c.low, c.close, c.volume)  # fmt: skip
    return MarketData(candles, data.start_ms, symbol_rules(symbol))


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> None:
    if not FUTURES_5M.is_file() or not ETH_5M.is_file():
        sys.exit(f"real data not found beside {FUTURES_5M}")
    btc, eth = load(FUTURES_5M, "BTCUSDT"), load(ETH_5M, "ETHUSDT")
    one = [MarketData(btc, int(btc.open_time_ms[0]), symbol_rules("BTCUSDT"))]
    pair = [one[0], MarketData(eth, int(eth.open_time_ms[0]), symbol_rules("ETHUSDT"))]
    ten = [renamed(pair[k % 2], f"S{k}USDT") for k in range(10)]
    smc, ema = builtin_strategy("smc"), builtin_strategy("ema_cross")
    counts: dict[str, int] = {}
    rows = []
    cases = (
        ("ema_cross, 1 symbol: signals + simulation (issue rules)", one, ema, PEER_RULES,
         "< 150 ms, and under vectorbt (bench_peers)", 15),
        ("smc, 1 symbol: features + signals + simulation (default config)", one, smc, DEFAULT,
         "< 1,500 ms", 5),
        ("ema_cross, 10 symbols, one account (issue rules)", ten, ema, PEER_RULES,
         "< 2,000 ms", 5),
        ("smc, 10 symbols, one account (default config)", ten, smc, DEFAULT, "< 2,000 ms", 3),
    )  # fmt: skip
    for name, datas, strategy, config, target, repeat in cases:
        cold, warm = timed(partial(end_to_end, datas, strategy, config, counts, name), repeat)
        rows.append(f"| {name} | {warm:,.0f} ms | {cold:,.0f} ms | {counts[name]:,} | {target} |")
    # Simulation alone for ten symbols: the signals are laid out already.
    ten_signals = [signals_of(ema, d.candles, PEER_RULES) for d in ten]
    ten_prepared = prepare(ten, ten_signals, PEER_RULES)
    cold, warm = timed(lambda: run_prepared(ten_prepared), 5)
    rows.append(f"| ema_cross, 10 symbols: the simulation alone | {warm:,.0f} ms | {cold:,.0f} ms "
                f"| | |")  # fmt: skip
    # The event path, one symbol and two.
    for label, datas in (("1 symbol", one), ("BTCUSDT + ETHUSDT, one account", pair)):
        sigs = [signals_of(ema, d.candles, PEER_RULES) for d in datas]
        prepared = prepare(datas, sigs, PEER_RULES)
        compiled, _run = run_prepared(prepared)
        cold, warm = timed(partial(run_events, prepared, "bench001"), 3)
        events = run_events(prepared, "bench001")
        assert len(events.result.trades) == len(compiled.trades)
        target = "< 2,000 ms" if label == "1 symbol" else "-"
        rows.append(
            f"| events path, ema_cross, {label}: {events.events:,} events through "
            f"Reducer.step | {warm:,.0f} ms | {cold:,.0f} ms | {len(compiled.trades):,} "
            f"| {target} |"
        )
    every, signalled = candle_latency(prepare(one, [signals_of(ema, btc, PEER_RULES)], PEER_RULES))
    latency = (
        f"One `CandleClosed` through `Reducer.step` (the Python wrapper over the decision "
        f"kernels), each of the {len(every):,} closes of the 1-symbol ema_cross session timed in "
        f"its place among the other events: median {statistics.median(every):.1f} µs, p99 "
        f"{percentile(every, 99):.1f} µs (target: median < 20 µs). The {len(signalled):,} closes "
        f"with a signal (sizing, orders, a virtual position): median "
        f"{statistics.median(signalled):.1f} µs, p99 {percentile(signalled, 99):.1f} µs."
    )
    text = "\n".join(
        [
            BEGIN,
            "## Backtest engine (issue 12)",
            "",
            f"Machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"numba {numba.__version__}, numpy {np.__version__}. Data: {len(btc):,} bars each of "
            "BTCUSDT and ETHUSDT 5m futures (catman77, 2023-01-01 to 2024-05-14), in memory; the "
            "10-symbol account trades the two series under ten names (S0USDT .. S9USDT, "
            "alternately BTC's and ETH's bars). `benchmarks/bench_backtest.py`.",
            "",
            "| what | warm median | cold (first run in process) | trades | target |",
            "|---|---|---|---|---|",
            *rows,
            "",
            latency,
            "",
            "Both drivers run the same exchange and decision kernels in the same order; the "
            "event path pays for an object per event and a Python call per kernel.",
            END,
        ]
    )
    publish(text, BEGIN, END)


if __name__ == "__main__":
    main()
