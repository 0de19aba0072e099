"""A replayed day of 20 symbols on 1m candles at ``--speed max`` (issue 14's proof, measured):
the local exchange and one trading session (``runtime.live_session``) in this process.

    .venv/bin/python benchmarks/bench_day_replay.py [--hours 24] [--write]

Reports the session's wall time, candles by source, REST klines requests (warm-up and
back-fill), the total REST weight and the fills; checks that the engine's fills equal the
exchange's. The tapes are the real 1m BTC/ETH candles of ../shared/data, each symbol shifted
by whole days (``tests/support/minute_tapes.py``, shared with the proof test).
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support: the same setup

from tests.support.day_replay import replay_day, summary

from bench_data import cpu_model, publish

BEGIN, END = "<!-- bench_day_replay:begin -->", "<!-- bench_day_replay:end -->"


def main() -> None:
    hours = float(sys.argv[sys.argv.index("--hours") + 1]) if "--hours" in sys.argv else 24.0
    with tempfile.TemporaryDirectory() as tmp:
        r = replay_day(Path(tmp), hours)
    s = summary(r)
    engine = {(f.symbol, f.trade_id, f.price, f.quantity, f.fee) for f in r.session.counts.fills}
    equal = engine == r.exchange_fills and len(engine) == len(r.session.counts.fills)
    candles = s["candles"]
    text = "\n".join([
        BEGIN,
        "## A replayed day through the Binance adapter (issue 14)",
        "",
        f"Machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}. "
        f"{len(r.symbols)} symbols, {hours:g} h of 1m candles from 2025-06-16 (real BTC/ETH 1m "
        "candles, each symbol shifted by whole days), the local exchange at `--speed max` "
        "(it moves one minute once clients have been quiet 100 ms) and one `LiveSession` "
        "trading `ema_cross` in the same process. `benchmarks/bench_day_replay.py`.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| session wall time | {s['seconds']:,.1f} s |",
        f"| candles streamed / warm-up / back-filled | {candles.get('stream', 0):,} / "
        f"{candles.get('warmup', 0):,} / {candles.get('backfill', 0):,} |",
        f"| REST klines requests: warm-up / after warm-up | {s['kline_requests_warmup']} / "
        f"{s['kline_requests_backfill']} |",
        f"| REST requests, total weight, 429s, 418s | {s['rest']['requests']:,}, "
        f"{s['rest']['weight']:,}, {s['rest']['429']}, {s['rest']['418']} |",
        f"| orders placed / cancels | {s['commands'].get('PlaceOrder', 0):,} / "
        f"{s['commands'].get('CancelOrder', 0):,} |",
        f"| fills (engine = exchange's userTrades) | {s['fills']:,} "
        f"({'equal' if equal else 'NOT EQUAL'}) |",
        END,
    ])  # fmt: skip
    publish(text, BEGIN, END)
    if not equal:
        sys.exit("the engine's fills differ from the exchange's")


if __name__ == "__main__":
    main()
