"""Kline streams of the local exchange under load: 300 symbols of 1m candles at speed 100
(the target) and 1000 (headroom), one client subscribed to all 300 ``@kline_1m`` streams
(issue 13).

    .venv/bin/python benchmarks/bench_exchange_streams.py [--seconds 60] [--write]

The server runs in its own process (this script with ``--serve SPEED``) so that its CPU time
can be read from /proc. The store holds no 300 futures symbols of 1m candles: the real Binance
1m BTCUSDT and ETHUSDT candles (spot, 2025-05-20 to 2025-08-18) are replayed under 300
made-up names, alternating, each with the real symbol's exchange rules. One combined
connection carries all 300 streams (the cap is 1,024 per connection). For every final
(``"x": true``) the client notes how late it arrived: wall time at arrival minus the wall
time at which the candle closed in market time (``start_wall + (close - start_history) /
speed``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import numpy as np

from bench_data import DATA, cpu_model, publish
from slt.adapters.importers.readers import read_feather
from slt.domain.clock import parse_utc_ms
from slt.domain.series import Candles, Market, SeriesKey
from slt.engine.symbol_venue import symbol_venue

BEGIN, END = "<!-- bench_exchange_streams:begin -->", "<!-- bench_exchange_streams:end -->"
SPOT_1M = DATA / "Filimonov-Eremeyka__freqtrade/user_data/data/binance"
SOURCES = {"BTCUSDT": SPOT_1M / "BTC_USDT-1m.feather", "ETHUSDT": SPOT_1M / "ETH_USDT-1m.feather"}
SYMBOLS = 300
SPEEDS = (100.0, 1000.0)  # a 1m candle closes every 0.6 s / 0.06 s of wall time
REPLAY_START = "2025-06-01"
KEY, SECRET = "benchKey0123456789", "benchSecret0123456789"
MINUTE_MS = 60_000
Result = dict[str, float]


def names() -> list[str]:
    return [f"S{i:03d}USDT" for i in range(SYMBOLS)]


# -- the server process -------------------------------------------------------------------


def serve(speed: float) -> None:
    from aiohttp import web

    from slt.adapters.exchange.local.auth import ApiAccount, Authenticator
    from slt.adapters.exchange.local.clock import ReplayClock
    from slt.adapters.exchange.local.limits import RateLimits
    from slt.adapters.exchange.local.market import SymbolTape
    from slt.adapters.exchange.local.server import LocalExchange, build_app
    from slt.domain.trading.symbol_rules import SymbolRules, symbol_rules

    real: dict[str, tuple[Candles, SymbolRules]] = {}
    for symbol, path in SOURCES.items():
        rows = read_feather(path)
        candles = Candles.from_arrays(
            SeriesKey(symbol, Market.FUTURES, "1m"), rows.times_ms, rows.open, rows.high,
            rows.low, rows.close, rows.volume,
        )  # fmt: skip
        real[symbol] = (candles, symbol_rules(symbol))
    tapes = {}
    for i, name in enumerate(names()):
        candles, rules = real["BTCUSDT" if i % 2 == 0 else "ETHUSDT"]
        tapes[name] = SymbolTape(dataclasses.replace(rules, symbol=name), candles)
    clock = ReplayClock.start(parse_utc_ms(REPLAY_START), speed)
    exchange = LocalExchange(
        tapes, clock, Authenticator([ApiAccount(KEY, SECRET)], clock.wall), RateLimits(10**9),
        wall=clock.wall, venues=symbol_venue,
    )  # fmt: skip

    async def main() -> None:
        runner = web.AppRunner(build_app(exchange), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        stopped = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stopped.set)
        port = runner.addresses[0][1]
        print(f"READY {port} {clock.start_wall_ms} {clock.start_history_ms}", flush=True)
        await stopped.wait()
        await runner.cleanup()

    asyncio.run(main())


# -- the client ---------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def listen(port: int, start_wall_ms: int, start_history_ms: int, speed: float,
                 seconds: float, server_pid: int) -> Result:  # fmt: skip
    streams = "/".join(f"{n.lower()}@kline_1m" for n in names())
    url = f"ws://127.0.0.1:{port}/market/stream?streams={streams}"
    finals: dict[str, list[int]] = {n: [] for n in names()}
    late_ms: list[float] = []
    frames = 0

    def history_now() -> float:
        return start_history_ms + (time.time() * 1000 - start_wall_ms) * speed

    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        connected_history = history_now()
        cpu0, client0, wall0 = cpu_seconds(server_pid), time.process_time(), time.monotonic()
        deadline = wall0 + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:  # (the server pings only every 3 minutes: this timeout is not restarted)
                msg = await ws.receive(timeout=left)
            except TimeoutError:
                break
            arrived_ms = time.time() * 1000
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"the stream ended early: {msg}")
            frames += 1
            k = json.loads(msg.data)["data"]["k"]
            if k["x"]:
                late_ms.append(arrived_ms - start_wall_ms - (k["T"] + 1 - start_history_ms) / speed)
                finals[k["s"]].append(k["t"])
        took = time.monotonic() - wall0
        server_cpu = cpu_seconds(server_pid) - cpu0
        client_cpu = time.process_time() - client0
        stopped_history = history_now()
    # Every candle that opened after the subscription and closed 2 s (wall) before the end.
    first_open = (int(connected_history) // MINUTE_MS + 1) * MINUTE_MS
    last_close = int(stopped_history - 2_000 * speed)
    expected = range(first_open, last_close - MINUTE_MS + 1, MINUTE_MS)
    missing = duplicated = disordered = 0
    for got in finals.values():
        seen = set(got)
        missing += sum(t not in seen for t in expected)
        duplicated += len(got) - len(seen)
        disordered += sum(b <= a for a, b in itertools.pairwise(got))
    late = np.array(late_ms)
    return {
        "speed": speed, "seconds": took, "frames": frames, "finals": len(late_ms),
        "expected": len(expected) * SYMBOLS, "missing": missing, "duplicated": duplicated,
        "disordered": disordered, "late_p50": float(np.percentile(late, 50)),
        "late_p99": float(np.percentile(late, 99)), "late_max": float(late.max()),
        "server_cpu": server_cpu / took, "client_cpu": client_cpu / took,
    }  # fmt: skip


def run_once(speed: float, seconds: float) -> Result:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLT_", "BINANCE_"))}
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(speed)], stdout=subprocess.PIPE, text=True,
        env=env,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        found = None
        for line in server.stdout:
            found = re.match(r"READY (\d+) (\d+) (\d+)", line)
            if found:
                break
        if found is None:
            sys.exit("the server did not start")
        port, start_wall, start_history = (int(g) for g in found.groups())
        return asyncio.run(listen(port, start_wall, start_history, speed, seconds, server.pid))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def report(results: list[Result], seconds: float) -> str:
    def row(name: str, cell: Callable[[Result], str]) -> str:
        return f"| {name} | " + " | ".join(cell(r) for r in results) + " |"

    def checked(r: Result) -> str:
        ok = r["missing"] == 0 and r["duplicated"] == 0 and r["disordered"] == 0
        verdict = "every final once, in order" if ok else "**FAILED**"
        return f"{r['missing']:.0f}, {r['duplicated']:.0f}, {r['disordered']:.0f} ({verdict})"

    return "\n".join(
        [
            BEGIN,
            "## Local exchange kline streams under load (issue 13)",
            "",
            f"Machine: {cpu_model()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}, aiohttp {aiohttp.__version__}. The server (its own "
            "process, `build_app` as `slt exchange serve` runs it, order matching included) "
            f"replays {SYMBOLS} symbols of 1m candles: the real Binance 1m BTCUSDT and ETHUSDT "
            f"candles (spot, Filimonov set, from {REPLAY_START}) replicated under {SYMBOLS} "
            f"made-up names, since the store holds no {SYMBOLS} futures symbols of 1m candles. "
            "One client (aiohttp, another process) holds one combined connection subscribed "
            f"to all {SYMBOLS} `@kline_1m` streams and parses every frame, for {seconds:.0f} s "
            "per speed. Late = wall time at arrival minus the wall time at which the candle "
            "closed in market time. Checked: every candle that closed in the window (opened "
            "after the subscription, closed up to 2 s before the end) had exactly one final, "
            "in order. The server wakes at each candle close and sends the finals before it "
            "builds the forming updates; the lateness is the market step of order matching, "
            "building and sending 300 finals, and the client's reading and parsing. "
            "`benchmarks/bench_exchange_streams.py`.",
            "",
            "| measure | " + " | ".join(f"speed {r['speed']:g}" for r in results) + " |",
            "|---|" + "---|" * len(results),
            row("a 1m candle closes every", lambda r: f"{60_000 / r['speed']:,.0f} ms (wall)"),
            row("frames received (updates and finals)",
                lambda r: f"{r['frames']:,.0f} ({r['frames'] / r['seconds']:,.0f}/s)"),
            row("finals received", lambda r: f"{r['finals']:,.0f}"),
            row("finals missing, duplicated, out of order", checked),
            row("final late by: median / p99 / max",
                lambda r: f"{r['late_p50']:,.0f} / {r['late_p99']:,.0f} / "
                          f"{r['late_max']:,.0f} ms"),
            row("server CPU", lambda r: f"{r['server_cpu']:.0%} of one core"),
            row("client CPU (aiohttp + json)", lambda r: f"{r['client_cpu']:.0%} of one core"),
            END,
        ]
    )  # fmt: skip


def main() -> None:
    if "--serve" in sys.argv:
        serve(float(sys.argv[sys.argv.index("--serve") + 1]))
        return
    seconds = float(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 60
    for path in SOURCES.values():
        if not path.is_file():
            sys.exit(f"real data not found at {path}")
    publish(report([run_once(speed, seconds) for speed in SPEEDS], seconds), BEGIN, END)


if __name__ == "__main__":
    main()
