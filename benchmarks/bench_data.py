"""Market-data speed targets of the foundation issue, measured on the real files.

    .venv/bin/python benchmarks/bench_data.py [--write]

Prints a Markdown table; ``--write`` replaces the data section of docs/benchmarks.md.
Each number is the median of repeated runs after one warm-up run (numba compiled, files in the
OS page cache); the first (cold) run is shown beside it.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np
import pyarrow

from slt.runtime.numba_cache import configure_numba_cache

configure_numba_cache()  # before any kernel module: every benchmark imports this one first

from slt.adapters.importers.importer import apply_import, plan_import  # noqa: E402
from slt.adapters.store.parquet_store import ParquetStore  # noqa: E402
from slt.domain.resample import resample  # noqa: E402
from slt.domain.series import Candles, Market, SeriesKey  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "raw"
FUTURES_5M = (
    DATA / "catman77__cyft_trader/user_data/data/binance/futures/BTC_USDT_USDT-5m-futures.feather"
)
SPOT_1M = DATA / "Filimonov-Eremeyka__freqtrade/user_data/data/binance/BTC_USDT-1m.feather"
DOC = ROOT / "docs" / "benchmarks.md"
# The ema_cross comparison rules, shared with the peer test.
PEER_RULES_FILE = ROOT / "docs" / "examples" / "ema_cross_peer_rules.toml"
BEGIN, END = "<!-- bench_data:begin -->", "<!-- bench_data:end -->"


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(cold ms, median warm ms)."""
    start = time.perf_counter()
    fn()
    cold = (time.perf_counter() - start) * 1000
    warm = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        warm.append((time.perf_counter() - start) * 1000)
    return cold, statistics.median(warm)


def publish(text: str, begin: str, end: str) -> None:
    """Print a benchmark section; with ``--write`` also put it into docs/benchmarks.md."""
    print(text)
    if "--write" in sys.argv:
        write_section(text, begin, end)


def write_section(text: str, begin: str, end: str) -> None:
    """Replace the section between ``begin`` and ``end`` of docs/benchmarks.md (or append it)."""
    doc = DOC.read_text() if DOC.exists() else "# Benchmarks\n\n"
    if begin in doc:
        doc = doc[: doc.index(begin)] + text + doc[doc.index(end) + len(end) :]
    else:
        doc = doc.rstrip() + "\n\n" + text + "\n"
    DOC.write_text(doc)


def main() -> None:
    if not FUTURES_5M.is_file():
        sys.exit(f"real data not found at {FUTURES_5M}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(1000))

        def fresh_import() -> None:
            store = ParquetStore(Path(tmp) / f"import-{next(counter)}")
            apply_import(store, plan_import([FUTURES_5M]))

        cold, warm = timed(fresh_import, 5)
        what = "Import the 143,900-row 5m futures feather into an empty store"
        rows.append((what, cold, warm, 1000))

        store = ParquetStore(Path(tmp) / "load")
        apply_import(store, plan_import([FUTURES_5M]))
        key = SeriesKey("BTCUSDT", Market.FUTURES, "5m")
        assert len(store.load_candles(key)) == 143_900
        cold, warm = timed(lambda: store.load_candles(key), 30)
        rows.append(("Load 143,900 5m candles of one symbol from the store", cold, warm, 30))

        (planned,) = plan_import([SPOT_1M]).files
        one_minute = planned.series
        assert isinstance(one_minute, Candles) and len(one_minute) == 130_708
        cold, warm = timed(lambda: resample(one_minute, "5m"), 30)
        rows.append(("Resample 130,708 1m candles to 5m", cold, warm, 20))

    machine = (
        f"{cpu_model()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}, "
        f"pyarrow {pyarrow.__version__}"
    )
    lines = [
        BEGIN,
        "## Market data (issue 2)",
        "",
        f"Machine: {machine}. Data: `{FUTURES_5M.name}` (catman77, BTCUSDT perpetual 5m, 143,900 "
        f"rows) and `{SPOT_1M.name}` (Filimonov-Eremeyka, BTCUSDT spot 1m, 130,708 rows). "
        "Command: `.venv/bin/python benchmarks/bench_data.py`.",
        "",
        "| what | target | median (warm) | first run (cold) | verdict |",
        "|---|---|---|---|---|",
    ]
    for what, cold, warm, target in rows:
        verdict = "meets target" if warm < target else "MISSES target"
        lines.append(f"| {what} | < {target} ms | {warm:.1f} ms | {cold:.1f} ms | {verdict} |")
    lines.append(END)
    text = "\n".join(lines)
    publish(text, BEGIN, END)


if __name__ == "__main__":
    main()
