"""A local HTTP server that answers Binance's kline endpoints from real candles.

It speaks the parts of the protocol a downloader depends on: the query parameters, 12-field
rows with prices as strings, the used-weight header, -1121 for unknown symbols, and 429 with
Retry-After on demand. Every request is recorded so tests can assert on what was sent.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.feather as feather

from slt.domain.timeframes import TIMEFRAME_MS

MINUTE_MS = 60_000
KLINE_PATHS = {"/fapi/v1/klines": "futures", "/api/v3/klines": "spot"}
MAX_LIMIT = {"futures": 1500, "spot": 1000}


@dataclass(frozen=True, eq=False)
class RealCandles:
    """OHLCV of one real series, times in ms (the freqtrade feather file's columns)."""

    open_time_ms: npt.NDArray[np.int64]
    open: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    close: npt.NDArray[np.float64]
    volume: npt.NDArray[np.float64]

    @classmethod
    def from_feather(cls, path: Path) -> RealCandles:
        table = feather.read_table(path)
        times = table.column("date").cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64())
        cols = {c: table.column(c).to_numpy() for c in ("open", "high", "low", "close", "volume")}
        return cls(np.ascontiguousarray(times.to_numpy(), dtype=np.int64), **cols)

    def index_of(self, open_time_ms: int) -> int:
        return int(np.searchsorted(self.open_time_ms, open_time_ms))


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    params: dict[str, str]
    time_ms: int
    status: int


@dataclass
class _Failure:
    remaining: int
    status: int
    retry_after_s: int | None
    after_ok: int = 0


def weight_of(market: str, limit: int) -> int:
    if market == "spot":
        return 2
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


@dataclass
class FakeBinance:
    """Serves ``series[(symbol, interval)]`` on both the futures and the spot kline paths.

    ``clock`` drives the used-weight minute and, with ``forming_candles``, which candles exist
    yet: the candle open at ``clock()`` is served as Binance serves the one still forming.
    """

    series: dict[tuple[str, str], RealCandles]
    clock: Callable[[], int] = field(default=lambda: time.time_ns() // 1_000_000)
    forming_candles: bool = False
    mangle: Callable[[list[list[Any]]], list[list[Any]]] | None = None
    requests: list[RecordedRequest] = field(default_factory=list)
    _failures: list[_Failure] = field(default_factory=list)
    _weight: dict[int, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    # ------------------------------------------------------------ control

    def start(self) -> FakeBinance:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, headers, body = fake.answer(self.path)
                payload = json.dumps(body, separators=(",", ":")).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeBinance:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the server first"
        return f"http://127.0.0.1:{self._server.server_port}"

    def fail_next(self, count: int, status: int = 429, retry_after_s: int | None = 1) -> None:
        """Answer the next ``count`` kline requests with ``status`` (429/418 carry Retry-After)."""
        with self._lock:
            self._failures.append(_Failure(count, status, retry_after_s))

    def fail_after(self, successes: int, status: int = 500, count: int = 1_000_000) -> None:
        """Let ``successes`` kline requests through, then answer ``count`` with ``status``."""
        with self._lock:
            self._failures.append(_Failure(count, status, None, after_ok=successes))

    def heal(self) -> None:
        with self._lock:
            self._failures.clear()

    def kline_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path in KLINE_PATHS]

    # ------------------------------------------------------------ protocol

    def answer(self, raw_path: str) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(raw_path)
        params = dict(parse_qsl(parts.query))
        now = self.clock()
        with self._lock:
            status, headers, body = self._route(parts.path, params, now)
            self.requests.append(RecordedRequest(parts.path, params, now, status))
        return status, headers, body

    def _route(
        self, path: str, params: dict[str, str], now: int
    ) -> tuple[int, dict[str, str], Any]:
        if path in ("/fapi/v1/time", "/api/v3/time"):
            return 200, {}, {"serverTime": now}
        if path in ("/fapi/v1/ping", "/api/v3/ping"):
            return 200, {}, {}
        if path not in KLINE_PATHS:
            return 404, {}, {"code": -1, "msg": f"no route {path}"}
        market = KLINE_PATHS[path]
        failure = self._failures[0] if self._failures else None
        if failure is not None and failure.after_ok > 0:
            failure.after_ok -= 1
            failure = None
        elif failure is not None:
            failure.remaining -= 1
            if failure.remaining <= 0:
                self._failures.pop(0)
            headers = {"X-MBX-USED-WEIGHT-1M": str(self._weight.get(now // MINUTE_MS, 0))}
            if failure.retry_after_s is not None:
                headers["Retry-After"] = str(failure.retry_after_s)
            if failure.status in (418, 429):
                msg = "Too many requests; current limit of IP is 2400 requests per minute."
                return failure.status, headers, {"code": -1003, "msg": msg}
            return failure.status, headers, {"code": -1001, "msg": "Internal error."}
        try:
            limit = int(params.get("limit", "500"))
        except ValueError:
            return 400, {}, {"code": -1100, "msg": "Illegal characters found in parameter 'limit'."}
        minute = now // MINUTE_MS
        self._weight[minute] = self._weight.get(minute, 0) + weight_of(market, limit)
        headers = {"X-MBX-USED-WEIGHT-1M": str(self._weight[minute])}
        if "symbol" not in params:
            msg = "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
            return 400, headers, {"code": -1102, "msg": msg}
        if not any(symbol == params["symbol"] for symbol, _ in self.series):
            return 400, headers, {"code": -1121, "msg": "Invalid symbol."}
        interval = params.get("interval", "")
        if interval not in TIMEFRAME_MS:
            return 400, headers, {"code": -1120, "msg": "Invalid interval."}
        if not 1 <= limit <= MAX_LIMIT[market]:
            return (
                400,
                headers,
                {"code": -1130, "msg": "Data sent for parameter 'limit' is not valid."},
            )
        candles = self.series.get((params["symbol"], interval))
        rows = [] if candles is None else self._rows(candles, interval, params, limit, now)
        if self.mangle is not None:
            rows = self.mangle(rows)
        return 200, headers, rows

    def _rows(
        self, c: RealCandles, interval: str, params: dict[str, str], limit: int, now: int
    ) -> list[list[Any]]:
        tf = TIMEFRAME_MS[interval]
        times = c.open_time_ms
        hi = len(times)
        if self.forming_candles:
            hi = int(np.searchsorted(times, now, side="right"))
        if "endTime" in params:
            hi = min(hi, int(np.searchsorted(times, int(params["endTime"]), side="right")))
        if "startTime" in params:
            lo = int(np.searchsorted(times, int(params["startTime"]), side="left"))
            hi = min(hi, lo + limit)
        else:
            lo = max(0, hi - limit)
        rows = []
        for i in range(lo, hi):
            t, volume, close = int(times[i]), float(c.volume[i]), float(c.close[i])
            rows.append([
                t, repr(float(c.open[i])), repr(float(c.high[i])), repr(float(c.low[i])),
                repr(close), repr(volume), t + tf - 1, f"{volume * close:.4f}", 1000 + i % 97,
                repr(volume / 2), f"{volume * close / 2:.4f}", "0",
            ])  # fmt: skip
        return rows
