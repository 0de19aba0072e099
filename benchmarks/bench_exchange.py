"""Round trips to the local exchange (issue 13), server and client in separate processes.

    .venv/bin/python benchmarks/bench_exchange.py [--write]

``slt exchange serve`` runs as its own process over a store holding the real BTCUSDT 5m
futures file; this process sends requests one at a time over one kept-alive HTTP connection
(http.client, the cheapest client) and times each answer. The order round trip is a signed
MARKET order answered with its fill (``newOrderRespType=RESULT``): signing, checks, the venue
kernels, accounting and the user-data events. Orders alternate buy and sell so the position
stays small; there are fewer of them because Binance's order limit (300 per 10 s) holds here
too.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import numpy as np

from bench_data import FUTURES_5M, cpu_model, publish
from slt.adapters.exchange.local.auth import hmac_signature
from slt.adapters.importers.importer import apply_import, plan_import
from slt.adapters.store.parquet_store import ParquetStore

BEGIN, END = "<!-- bench_exchange:begin -->", "<!-- bench_exchange:end -->"
KEY, SECRET = "benchKey0123456789", "benchSecret0123456789"
N = 5_000
ORDERS = 270  # + 20 warm-up: under the 300 orders per 10 s every account is allowed


def start_server(data_dir: Path) -> tuple[subprocess.Popen[str], int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLT_", "BINANCE_"))}
    env |= {"SLT_DATA_DIR": str(data_dir), "SLT_EXCHANGE_ACCOUNTS": f"{KEY}:{SECRET}",
            "NO_COLOR": "1", "COLUMNS": "300"}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "slt", "exchange", "serve", "--symbols", "BTCUSDT",
         "--replay-start", "2024-01-01", "--port", "0", "--weight-limit", "100000000"],
        stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert server.stdout is not None
    for line in server.stdout:
        found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if found:
            return server, int(found.group(1))
    raise RuntimeError("the server did not start")


def timed_requests(port: int, path: str, signed: bool) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port)
    took = []
    for i in range(N + 200):
        query = ""
        headers = {}
        if signed:
            params = urlencode({"timestamp": time.time_ns() // 1_000_000, "recvWindow": 5000})
            query = f"?{params}&signature={hmac_signature(SECRET, params)}"
            headers = {"X-MBX-APIKEY": KEY}
        start = time.perf_counter()
        connection.request("GET", path + query, headers=headers)
        answer = connection.getresponse()
        body = answer.read()
        elapsed = time.perf_counter() - start
        if answer.status != 200:
            raise RuntimeError(f"{path}: {answer.status} {body!r}")
        json.loads(body)
        if i >= 200:  # warm-up
            took.append(elapsed * 1e6)
    connection.close()
    return took


def timed_orders(port: int) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port)
    took = []
    for i in range(ORDERS + 20):
        params = urlencode({
            "symbol": "BTCUSDT", "side": "BUY" if i % 2 == 0 else "SELL", "type": "MARKET",
            "quantity": "0.010", "newOrderRespType": "RESULT",
            "timestamp": time.time_ns() // 1_000_000,
        })  # fmt: skip
        body = f"{params}&signature={hmac_signature(SECRET, params)}"
        headers = {"X-MBX-APIKEY": KEY, "Content-Type": "application/x-www-form-urlencoded"}
        start = time.perf_counter()
        connection.request("POST", "/fapi/v1/order", body=body, headers=headers)
        answer = connection.getresponse()
        raw = answer.read()
        elapsed = time.perf_counter() - start
        order = json.loads(raw)
        if answer.status != 200 or order["status"] != "FILLED":
            raise RuntimeError(f"order: {answer.status} {raw!r}")
        if i >= 20:
            took.append(elapsed * 1e6)
    connection.close()
    return took


def main() -> None:
    if not FUTURES_5M.is_file():
        sys.exit(f"real data not found at {FUTURES_5M}")
    with tempfile.TemporaryDirectory() as tmp:
        apply_import(ParquetStore(Path(tmp) / "market"), plan_import([FUTURES_5M]))
        server, port = start_server(Path(tmp))
        try:
            rows = []
            cases = (
                ("GET /fapi/v1/time", "/fapi/v1/time", False),
                ("GET /fapi/v3/balance, signed (HMAC, timestamp, key)", "/fapi/v3/balance", True),
                ("GET /fapi/v1/klines?symbol=BTCUSDT&interval=5m&limit=500",
                 "/fapi/v1/klines?symbol=BTCUSDT&interval=5m&limit=500", False),
            )  # fmt: skip
            measured = [(name, timed_requests(port, path, signed)) for name, path, signed in cases]
            measured.append(("POST /fapi/v1/order MARKET, signed, filled (RESULT)",
                             timed_orders(port)))  # fmt: skip
            for name, took in measured:
                rows.append(
                    f"| {name} | {len(took):,} | {statistics.median(took):,.0f} µs | "
                    f"{np.percentile(took, 99):,.0f} µs |"
                )
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
    text = "\n".join(
        [
            BEGIN,
            "## Local exchange round trips (issue 13)",
            "",
            f"Machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"aiohttp {aiohttp.__version__}. `slt exchange serve` in its own process over the "
            "catman77 BTCUSDT 5m futures file, one kept-alive connection from another process "
            "(http.client), requests one at a time, 200 warm-up requests first. "
            "`--weight-limit` raised so that the benchmark is not banned. "
            "`benchmarks/bench_exchange.py`. The order is a signed MARKET order answered with "
            "its fill: checks, the venue kernels, accounting and its user-data events "
            "(target: median < 2 ms). Fewer orders than other requests: the account's "
            "300 orders per 10 s hold here too.",
            "",
            "| request | requests | median | p99 |",
            "|---|---|---|---|",
            *rows,
            END,
        ]
    )
    publish(text, BEGIN, END)


if __name__ == "__main__":
    main()
