"""Strategy speed, batch and streaming, on the real 143,900-bar BTCUSDT 5m futures file.

    .venv/bin/python benchmarks/bench_strategy_stream.py [--write]

Batch: the signal kernels alone (features already computed), fastest and median of 50 calls
after one warm-up call. Stream: one ``update`` per candle over the whole file, feature rows
taken from ``FeatureStream`` beforehand so only the strategy is timed; the mean per update of
the best of 3 passes. A user file without ``stream`` replays its ``signals`` on the history, so
its cost grows with the history: timed on 5,000 candles after the feature warm-up.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

import numba
import numpy as np

from bench_data import FUTURES_5M, ROOT, cpu_model, publish
from slt.adapters.importers.readers import read_feather
from slt.adapters.strategy_file import load_strategy_file
from slt.domain.features.config import FeatureConfig
from slt.domain.features.matrix import FeatureStream, compute_features
from slt.domain.series import F64, Candles, Market, SeriesKey
from slt.domain.strategies.base import Strategy
from slt.domain.strategies.ema_cross_nb import ema_cross_nb
from slt.domain.strategies.registry import builtin_strategy
from slt.domain.strategies.smc import SmcParams, smc_columns
from slt.domain.strategies.smc_nb import smc_signals_nb

BEGIN, END = "<!-- bench_strategy_stream:begin -->", "<!-- bench_strategy_stream:end -->"
EXAMPLE = ROOT / "docs" / "examples" / "my_strategy.py"
REPLAY_START, REPLAY_BARS = 30_000, 5_000

Rows = list[tuple[F64 | None, int]]


def load() -> Candles:
    raw = read_feather(FUTURES_5M)
    key = SeriesKey("BTCUSDT", Market.FUTURES, "5m")
    return Candles.from_arrays(key, raw.times_ms, raw.open, raw.high, raw.low, raw.close,
                               raw.volume)  # fmt: skip


def batch_ms(fn: Callable[[], object], repeat: int = 50) -> tuple[float, float]:
    """(fastest, median) ms."""
    fn()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append((time.perf_counter() - began) * 1e3)
    return min(times), statistics.median(times)


def stream_us(strategy: Strategy, candles: Candles, rows: Rows, span: range, passes: int) -> float:
    """Mean microseconds per ``update`` over ``span``, best of ``passes`` fresh streams."""
    schema = FeatureStream(FeatureConfig.for_timeframe("5m")).schema
    prices = [
        (int(t), float(o), float(h), float(lo), float(c), float(v))
        for t, o, h, lo, c, v in zip(*candles.columns().values(), strict=True)
    ]
    best = float("inf")
    for _ in range(passes):
        stream = strategy.stream(schema if strategy.uses_features else None)
        update = stream.update
        began = time.perf_counter()
        for i in span:
            row, reason = rows[i]
            update(*prices[i], row, reason)
        best = min(best, (time.perf_counter() - began) / len(span) * 1e6)
    return best


def main() -> None:
    if not FUTURES_5M.is_file():
        sys.exit(f"real data not found at {FUTURES_5M}")
    candles = load()
    features = compute_features(candles)
    close = np.ascontiguousarray(candles.close)
    values, reason = np.ascontiguousarray(features.values), np.ascontiguousarray(features.reason)
    columns = smc_columns(features)
    feature_stream = FeatureStream(FeatureConfig.for_timeframe("5m"))
    rows: Rows = [
        feature_stream.update(int(t), o, h, lo, c, v)
        for t, o, h, lo, c, v in zip(*candles.columns().values(), strict=True)
    ]
    no_rows: Rows = [(None, 0)] * len(candles)
    lines = []
    everything = range(len(candles))
    strict, relaxed = SmcParams().kernel(), SmcParams(relaxed=True).kernel()
    for label, strategy, kernel in (
        ("ema_cross", builtin_strategy("ema_cross"), lambda: ema_cross_nb(close, 12, 26, 0.5)),
        (
            "smc strict",
            builtin_strategy("smc"),
            lambda: smc_signals_nb(values, reason, columns, strict),
        ),
        (
            "smc relaxed",
            builtin_strategy("smc", relaxed=True),
            lambda: smc_signals_nb(values, reason, columns, relaxed),
        ),
    ):
        fastest, median = batch_ms(kernel)
        fed = rows if strategy.uses_features else no_rows
        per_update = stream_us(strategy, candles, fed, everything, passes=3)
        lines.append(
            f"| {label} | {fastest:.2f} ms | {median:.2f} ms | {per_update:.2f} µs "
            f"| {per_update * len(candles) / 1e3:.0f} ms |"
        )
    replay = range(REPLAY_START, REPLAY_START + REPLAY_BARS)
    window = candles.take(slice(REPLAY_START, REPLAY_START + REPLAY_BARS))
    replay_rows = rows[REPLAY_START : REPLAY_START + REPLAY_BARS]
    replay_lines = []
    for limit in (None, 500):
        strategy = load_strategy_file(EXAMPLE, stream_history_limit=limit)
        per_update = stream_us(strategy, window, replay_rows, range(len(replay)), passes=1)
        replay_lines.append(
            f"| `my_strategy.py` replayed, history limit {limit or 'none'} | {per_update:,.0f} µs |"
        )
    text = "\n".join(
        [
            BEGIN,
            "## Strategies: batch and streaming",
            "",
            f"Machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"numba {numba.__version__}, numpy {np.__version__}. Data: {len(candles):,} bars of "
            "BTCUSDT 5m futures (catman77), in memory, features computed beforehand. "
            "`benchmarks/bench_strategy_stream.py`.",
            "",
            "| strategy | batch kernel, fastest | batch kernel, median | stream, per update "
            "| stream, whole file |",
            "|---|---|---|---|---|",
            *lines,
            "",
            f"A file without its own `stream`, {REPLAY_BARS:,} candles from bar {REPLAY_START:,}:",
            "",
            "| stream | mean per update |",
            "|---|---|",
            *replay_lines,
            END,
        ]
    )
    publish(text, BEGIN, END)


if __name__ == "__main__":
    main()
