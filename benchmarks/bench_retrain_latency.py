"""The trading loop's candle-to-command latency, idle and while a retrain runs (issue 6).

    .venv/bin/python benchmarks/bench_retrain_latency.py [--write]

Per candle, as paper trading does: the simulated exchange's bar (fills and stops back to the
reducer), the streaming feature update, the champion's calibrated confidence for the candle's
signal, the reducer's commands and the exchange's answers. Real BTCUSDT 5m candles; signals
are a seeded coin flip on every 2nd candle. The retrain is the production path: ``retrain``
on the newest 50,000 virtual trades in a worker process (spawned, low priority, one thread
fewer than the machine has), awaited by the same event loop.
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import time

import numpy as np
import xgboost

from bench_backtest import load
from bench_data import FUTURES_5M, cpu_model, publish
from bench_learning import training_set
from slt.domain.features.config import FeatureConfig
from slt.domain.features.matrix import FeatureStream, compute_features
from slt.domain.trading.symbol_rules import symbol_rules
from slt.engine.book import symbol_table
from slt.engine.messages import CandleClosed, Event
from slt.engine.reducer import Reducer
from slt.engine.sim_exchange import SimulatedExchange
from slt.engine.venue import Faults, VenueParams
from slt.learning.model import ModelParams, train_model
from slt.learning.retraining import retrain
from slt.runtime.retrainer import training_executor
from slt.runtime.trading_config import TradingConfig

BEGIN, END = "<!-- bench_retrain_latency:begin -->", "<!-- bench_retrain_latency:end -->"
N_EXAMPLES = 50_000


async def main() -> None:
    candles = load(FUTURES_5M, "BTCUSDT")
    config = TradingConfig()
    feature_config = FeatureConfig.for_timeframe("5m")
    features = compute_features(candles, feature_config)
    rng = np.random.default_rng(1)
    direction = np.zeros(len(candles), dtype=np.int8)
    every = np.arange(0, len(candles), 2)
    direction[every] = np.where(rng.random(len(every)) < 0.5, 1, -1)
    direction[~features.valid] = 0
    tf = candles.key.timeframe_ms
    learned = training_set(candles)  # the newest 50,000 real virtual trades, as bench_learning
    examples, embargo = learned.examples, learned.embargo_ms
    champion = train_model(examples, ModelParams(), embargo)
    cores = os.cpu_count() or 1
    params = ModelParams(threads=max(1, cores - 1))

    rules = symbol_rules("BTCUSDT")
    engine = config.engine()
    reducer = Reducer(engine, [rules])
    state = reducer.new_state("bench001")
    venue = VenueParams(engine.costs, engine.exits, tf, Faults())
    exchange = SimulatedExchange("bench001", ("BTCUSDT",), symbol_table([rules]), venue)
    stream = FeatureStream(feature_config)
    row = np.empty(len(features.schema.names) + 1)
    position = [0]

    funding = (np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0))

    def settle(events: list[Event]) -> None:
        """Every event to the reducer, every command to the exchange, until both are quiet."""
        nonlocal state
        queue = list(events)
        while queue:
            state, commands = reducer.step(state, queue.pop(0))
            if commands:
                queue += exchange.execute(commands)

    def candle() -> float:
        """One candle: the exchange opens and matches it (fills, stops), then the candle's
        close goes through features, the model and the reducer; its commands are sent."""
        i = position[0]
        position[0] += 1
        t = int(candles.open_time_ms[i])
        o, h, lo, c = (
            float(a[i]) for a in (candles.open, candles.high, candles.low, candles.close)
        )
        start = time.perf_counter()
        events, matched = exchange.open_and_match(0, t, o, h, lo, c, funding)
        if not matched:
            settle(events)
            events = exchange.match_bar(0)
        settle(events)
        values, _reason = stream.update(t, o, h, lo, c, float(candles.volume[i]))
        side, confidence = int(direction[i]), 0.5
        if side:
            row[:-1] = values
            row[-1] = side
            confidence = float(champion.confidence(row)[0])
        settle([CandleClosed("BTCUSDT", t, t + tf, o, h, lo, c, side, confidence, 1.5)])
        return (time.perf_counter() - start) * 1e6

    for _ in range(20_000):  # warm-up, and the stream's own warm-up
        candle()
    idle = []
    for _ in range(20_000):
        idle.append(candle())
        await asyncio.sleep(0)
    during: list[float] = []
    loop = asyncio.get_running_loop()
    with training_executor() as executor:
        await loop.run_in_executor(executor, os.getpid)  # the worker is up before timing
        began = time.perf_counter()
        job = loop.run_in_executor(executor, retrain, examples, params, embargo, None)
        while not job.done() and position[0] < len(candles) - 1:
            during.append(candle())
            await asyncio.sleep(0)
        result = await job
        retrain_s = time.perf_counter() - began

    def stats(values: list[float]) -> tuple[float, float]:
        return statistics.median(values), float(np.percentile(values, 99))

    (idle_med, idle_p99), (busy_med, busy_p99) = stats(idle), stats(during)
    text = "\n".join(
        [
            BEGIN,
            "## Candle-to-command latency while a retrain runs (issue 6)",
            "",
            f"Machine: {cpu_model()}, {cores} cores, Python {platform.python_version()}, "
            f"XGBoost {xgboost.__version__}. Real BTCUSDT 5m candles; per candle: the simulated "
            "exchange opens and matches the bar (fills and stops go back to the reducer), "
            "streaming features, the champion's calibrated confidence for the signal (a coin "
            "flip on every 2nd candle; scored on one thread), the reducer's commands, sent to "
            "the exchange until it has nothing more to say. The retrain "
            f"learns from {result.n_learned:,} of the newest {len(examples):,} virtual trades in "
            f"a worker process ({params.threads} thread, niced) and took {retrain_s:.1f} s. "
            "`benchmarks/bench_retrain_latency.py`.",
            "",
            "| | candles | median | p99 |",
            "|---|---|---|---|",
            f"| idle | {len(idle):,} | {idle_med:.0f} µs | {idle_p99:.0f} µs |",
            f"| while retraining | {len(during):,} | {busy_med:.0f} µs | {busy_p99:.0f} µs |",
            f"| ratio (target <= 2x) | | {busy_med / idle_med:.2f}x | {busy_p99 / idle_p99:.2f}x |",
            END,
        ]
    )
    publish(text, BEGIN, END)


if __name__ == "__main__":
    asyncio.run(main())
