"""Feature-engine speed targets of issue 3, measured on the real 143,900-bar BTCUSDT 5m file.

    .venv/bin/python benchmarks/bench_features.py [--write] [--skip-peer]

Prints a Markdown table; ``--write`` replaces the features section of docs/benchmarks.md.
Warm numbers are medians after one warm-up call (numba compiled and loaded). The cold column is
the first call in this process, which loads the compiled kernels from numba's on-disk cache.
The peer (smartmoneyconcepts 0.0.27, pandas) runs once per function: it takes about 30 s.
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import sys
import time
from collections.abc import Callable

import numba
import numpy as np
import talib

from bench_data import FUTURES_5M, cpu_model, publish, timed
from slt.adapters.importers.readers import read_feather
from slt.domain.features.config import FeatureConfig
from slt.domain.features.fvg_nb import FvgParams, fvg_batch_nb
from slt.domain.features.indicators_nb import atr_nb, bbands_nb, macd_nb, rsi_nb
from slt.domain.features.matrix import FeatureStream, compute_arrays
from slt.domain.features.structure_nb import StructureParams, structure_batch_nb

BEGIN, END = "<!-- bench_features:begin -->", "<!-- bench_features:end -->"


def _once_ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    if not FUTURES_5M.is_file():
        sys.exit(f"real data not found at {FUTURES_5M}")
    raw = read_feather(FUTURES_5M)
    n = len(raw)
    t, o, h, low, c, v = raw.times_ms, raw.open, raw.high, raw.low, raw.close, raw.volume
    config = FeatureConfig.for_timeframe("5m")
    rows: list[tuple[str, str, float, float, str]] = []

    cold, warm = timed(lambda: compute_arrays(config, t, o, h, low, c, v), 7)
    ncols = len(
        compute_arrays(config, t[:10], o[:10], h[:10], low[:10], c[:10], v[:10]).schema.names
    )
    rows.append(
        (
            f"Full feature matrix, {ncols} columns, 5m + 15m/1h/1d context",
            "< 300 ms",
            warm,
            cold,
            "",
        )
    )

    def ours_indicators() -> None:
        rsi_nb(c, 14)
        atr_nb(h, low, c, 14)
        macd_nb(c, 12, 26, 9)
        bbands_nb(c, 20, 2.0)

    def talib_indicators() -> None:
        talib.RSI(c, 14)
        talib.ATR(h, low, c, 14)
        talib.MACD(c, 12, 26, 9)
        talib.BBANDS(c, 20, 2.0, 2.0)

    cold, warm = timed(ours_indicators, 20)
    _, ta_warm = timed(talib_indicators, 20)
    rows.append(
        ("RSI + ATR + MACD + Bollinger (ours)", f"about TA-Lib ({ta_warm:.1f} ms)", warm, cold, "")
    )

    stream = FeatureStream(config)
    latencies = []
    for i in range(n):
        start = time.perf_counter_ns()
        stream.update(int(t[i]), o[i], h[i], low[i], c[i], v[i])
        latencies.append(time.perf_counter_ns() - start)
    steady = np.array(latencies[1000:]) / 1000
    rows.append(
        (
            "Streaming update, one closed 5m candle, all features and context",
            "median < 50 µs",
            float(np.median(steady)),
            latencies[0] / 1e6,
            f"p99 {np.percentile(steady, 99):.1f} µs, max {steady.max():.0f} µs",
        )
    )

    atr = atr_nb(h, low, c, 14)
    sp, fp = StructureParams(), FvgParams()
    cold_s, warm_s = timed(lambda: structure_batch_nb(o, h, low, c, v, atr, sp), 10)
    cold_f, warm_f = timed(lambda: fvg_batch_nb(o, h, low, c, atr, fp), 10)
    rows.append(("Swings, BOS/CHoCH, order blocks, liquidity (ours)", "", warm_s, cold_s, ""))
    rows.append(("Fair value gaps (ours)", "", warm_f, cold_f, ""))

    peer_lines: list[str] = []
    if "--skip-peer" not in sys.argv:
        import pandas as pd

        with contextlib.redirect_stdout(io.StringIO()):
            from smartmoneyconcepts import smc
        df = pd.DataFrame({"open": o, "high": h, "low": low, "close": c, "volume": v})
        peer: dict[str, float] = {}
        peer["fvg"] = _once_ms(lambda: smc.fvg(df))
        swings = smc.swing_highs_lows(df, 50)
        peer["swing_highs_lows"] = _once_ms(lambda: smc.swing_highs_lows(df, 50))
        peer["bos_choch"] = _once_ms(lambda: smc.bos_choch(df, swings))
        peer["ob"] = _once_ms(lambda: smc.ob(df, swings))
        peer["liquidity"] = _once_ms(lambda: smc.liquidity(df, swings))
        total_peer = sum(peer.values())
        ours = warm_s + warm_f
        peer_lines = [
            "",
            "Peer comparison on the same bars (smartmoneyconcepts 0.0.27, one run each): "
            + ", ".join(f"{k} {ms / 1000:.2f} s" for k, ms in peer.items())
            + f"; together {total_peer / 1000:.1f} s. Ours for the same concepts (fvg + the "
            f"structure family): {ours:.1f} ms, **{total_peer / ours:,.0f}x faster** "
            "(target: at least 100x).",
        ]

    machine = (
        f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}, numba {numba.__version__}, TA-Lib {talib.__version__}"
    )
    lines = [
        BEGIN,
        "## Features (issue 3)",
        "",
        f"Machine: {machine}. Data: `{FUTURES_5M.name}` (catman77, BTCUSDT perpetual 5m, "
        f"{n:,} bars). Command: `.venv/bin/python benchmarks/bench_features.py`.",
        "",
        "| what | target | median (warm) | first call (cold) | notes |",
        "|---|---|---|---|---|",
    ]
    for what, target, warm, cold, note in rows:
        unit = "µs" if "µs" in target else "ms"
        lines.append(f"| {what} | {target} | {warm:.1f} {unit} | {cold:.1f} ms | {note} |")
    lines += peer_lines
    lines.append(END)
    text = "\n".join(lines)
    publish(text, BEGIN, END)


if __name__ == "__main__":
    main()
