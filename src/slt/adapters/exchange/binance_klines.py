"""Download Binance klines into the market-data store: resumable, inside a request-weight budget.

Pure pieces (window planning, row parsing, weight and request pacing) are plain functions; the
ccxt client is the only part that talks to the network and is passed in, so tests point it at a
local server and control its clock and sleep.
"""

from __future__ import annotations

import json
import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import ccxt
import numpy as np

from slt.adapters.exchange.governor import Governor, retry_after_s
from slt.adapters.store.parquet_store import ParquetStore
from slt.domain.clock import format_utc_ms
from slt.domain.series import I64, Candles, Kind, Market, SeriesKey
from slt.domain.timeframes import TIMEFRAME_MS, bucket_offset_ms, timeframe_ms
from slt.errors import ExchangeError, SltError

Clock = Callable[[], int]
Sleep = Callable[[float], None]

MINUTE_MS = 60_000
MAX_KLINES_PER_REQUEST = 1000
KLINE_FIELDS = 12
# Binance's REQUEST_WEIGHT per minute and the share of it we allow ourselves by default.
WEIGHT_LIMIT_PER_MINUTE = {Market.FUTURES: 2400, Market.SPOT: 6000}
DEFAULT_WEIGHT_BUDGET = {Market.FUTURES: 2000, Market.SPOT: 5000}
# Clocks differ; waiting a little past the minute avoids landing in Binance's old window, and a
# candle counts as closed only a moment after its close so a fast local clock cannot store a
# candle Binance still considers open.
MINUTE_MARGIN_MS = 500
CLOSE_MARGIN_MS = 1000


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


# ---------------------------------------------------------------- pure logic


def kline_weight(market: Market, limit: int) -> int:
    """Request weight of one klines call (USDT-M: by limit; spot: always 2)."""
    if market is Market.SPOT:
        return 2
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    return 5 if limit <= 1000 else 10


def align_up(time_ms: int, tf_ms: int) -> int:
    """First candle open time at or after ``time_ms``."""
    offset = bucket_offset_ms(tf_ms)
    return -((offset - time_ms) // tf_ms) * tf_ms + offset


def plan_ranges(
    start_ms: int, end_ms: int, tf_ms: int, stored: I64 | None, fill_gaps: bool = False
) -> list[tuple[int, int]]:
    """Open-time ranges ``[a, b)`` still missing from ``[start_ms, end_ms)``.

    Only the head before the first stored candle and the tail after the last one are missing,
    unless ``fill_gaps`` also asks for the holes between stored candles.
    """
    start = align_up(start_ms, tf_ms)
    if start >= end_ms:
        return []
    if stored is None or len(stored) == 0:
        return [(start, end_ms)]
    first, last = int(stored[0]), int(stored[-1])
    ranges: list[tuple[int, int]] = []
    if start < first:
        ranges.append((start, min(end_ms, first)))
    if fill_gaps:
        holes = np.flatnonzero(np.diff(stored) > tf_ms)
        for i in holes:
            a, b = max(start, int(stored[i]) + tf_ms), min(end_ms, int(stored[i + 1]))
            if a < b:
                ranges.append((a, b))
    tail = max(start, last + tf_ms)
    if tail < end_ms:
        ranges.append((tail, end_ms))
    return ranges


def candle_count(a_ms: int, b_ms: int, tf_ms: int) -> int:
    return max(0, math.ceil((b_ms - a_ms) / tf_ms))


@dataclass(frozen=True, eq=False)
class KlineArrays:
    """Parsed kline rows: open and close times (ms) and OHLCV as float64."""

    open_time_ms: I64
    close_time_ms: I64
    ohlcv: np.ndarray[Any, np.dtype[np.float64]]  # shape (n, 5)

    def __len__(self) -> int:
        return len(self.open_time_ms)


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def parse_klines(rows: object, what: str, tf_ms: int) -> KlineArrays:
    """Validate Binance kline rows and convert them; any malformed value raises ExchangeError."""
    if not isinstance(rows, list):
        raise ExchangeError(f"{what}: expected a list of klines, got {type(rows).__name__}")
    n = len(rows)
    opens = np.empty(n, dtype=np.int64)
    closes = np.empty(n, dtype=np.int64)
    ohlcv = np.empty((n, 5), dtype=np.float64)
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != KLINE_FIELDS:
            raise ExchangeError(f"{what}: kline {i} is not a list of {KLINE_FIELDS} fields")
        open_ms, close_ms = _as_int(row[0]), _as_int(row[6])
        if open_ms is None or close_ms is None:
            raise ExchangeError(f"{what}: kline {i} has a non-integer open/close time: {row!r}")
        when = f"{what}: kline {format_utc_ms(open_ms)}"
        if close_ms != open_ms + tf_ms - 1:
            raise ExchangeError(f"{when} closes at {close_ms}, not one interval after its open")
        for j, name in enumerate(("open", "high", "low", "close", "volume")):
            value = row[j + 1]
            try:
                number = float(value) if isinstance(value, str | int | float) else math.nan
            except ValueError:
                number = math.nan
            if not math.isfinite(number) or number < 0 or isinstance(value, bool):
                raise ExchangeError(f"{when}: {name} is {value!r}, not a finite number >= 0")
            ohlcv[i, j] = number
        opens[i], closes[i] = open_ms, close_ms
    if n > 1 and not bool(np.all(np.diff(opens) > 0)):
        raise ExchangeError(f"{what}: kline open times are not strictly increasing")
    return KlineArrays(opens, closes, ohlcv)


def closed_count(close_time_ms: I64, received_ms: int) -> int:
    """How many leading klines had closed when the response arrived (the rest are still forming)."""
    return int(np.searchsorted(close_time_ms, received_ms, side="left"))


def requests_wait_ms(sent_ms: Sequence[int], now_ms: int, limit: int, period_ms: int) -> int:
    """Milliseconds to wait so that at most ``limit`` requests fall in any ``period_ms`` window."""
    recent = [t for t in sent_ms if t > now_ms - period_ms]
    if len(recent) < limit:
        return 0
    return max(0, recent[-limit] + period_ms - now_ms)


# ---------------------------------------------------------------- the ccxt client


@dataclass(frozen=True)
class Pacing:
    """Limits the client keeps: Binance weight per minute, our own requests per period, retries."""

    weight_budget_per_minute: int
    max_requests: int = 1200
    period_s: float = 60.0
    max_retries: int = 5
    max_wait_s: float = 600.0

    def __post_init__(self) -> None:
        if self.weight_budget_per_minute < 1 or self.max_requests < 1 or self.period_s <= 0:
            raise SltError("weight budget, request limit and period must be positive")


@dataclass(frozen=True)
class KlineBatch:
    rows: object
    received_ms: int


class KlineClient(Protocol):
    """The one thing download_candles needs from an exchange."""

    market: Market

    def now_ms(self) -> int: ...

    def fetch_klines(
        self, symbol: str, interval: str, start_ms: int, end_ms: int, limit: int
    ) -> KlineBatch: ...


class BinanceKlineClient:
    """Public kline requests through ccxt's raw endpoints, paced and retried; no API key is used."""

    def __init__(
        self,
        market: Market,
        base_url: str,
        pacing: Pacing | None = None,
        *,
        clock: Clock = wall_clock_ms,
        sleep: Sleep = time.sleep,
        timeout_s: float = 30.0,
    ) -> None:
        self.market = market
        self.pacing = pacing or Pacing(DEFAULT_WEIGHT_BUDGET[market])
        self._clock, self._sleep = clock, sleep
        base = base_url.rstrip("/")
        config = {"enableRateLimit": False, "timeout": int(timeout_s * 1000)}
        if market is Market.FUTURES:
            self._exchange: Any = ccxt.binanceusdm(config)
            self._exchange.urls["api"]["fapiPublic"] = f"{base}/fapi/v1"
            self._get_klines: Callable[[dict[str, object]], object] = (
                self._exchange.fapiPublicGetKlines
            )
        else:
            self._exchange = ccxt.binance(config)
            self._exchange.urls["api"]["public"] = f"{base}/api/v3"
            self._get_klines = self._exchange.publicGetKlines
        self._exchange.on_rest_response = self._on_rest_response
        self._status: int | None = None
        self._headers: Mapping[str, str] = {}
        # The downloader is never risk-reducing: its budget is the whole limit it allows itself.
        self.governor = Governor(weight_limit=self.pacing.weight_budget_per_minute, reserve=0.0)
        self._sent: deque[int] = deque(maxlen=self.pacing.max_requests)
        self.requests, self.waited_s = 0, 0.0

    def now_ms(self) -> int:
        return self._clock()

    def close(self) -> None:
        self._exchange.session.close()

    def __enter__(self) -> BinanceKlineClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _on_rest_response(
        self,
        code: int,
        reason: str,
        url: str,
        method: str,
        headers: Mapping[str, str],
        body: str,
        *_: object,
    ) -> str:
        # ccxt hides the status of errors behind exception classes; keep it to decide on retries.
        self._status, self._headers = code, headers
        return body.strip()

    def _wait(self, ms: int) -> None:
        self._sleep(ms / 1000)
        self.waited_s += ms / 1000

    @property
    def used_weight(self) -> int:
        """Weight used in this minute, as Binance's last answer said (or as we counted)."""
        return self.governor.weight.current(self._clock())

    def _pace(self, weight: int) -> None:
        now = self._clock()
        wait = self.governor.wait_ms(weight, now)
        if wait:
            self._wait(wait)
            now += wait
        period_ms = int(self.pacing.period_s * 1000)
        wait = requests_wait_ms(self._sent, now, self.pacing.max_requests, period_ms)
        if wait:
            self._wait(wait)
            now += wait
        self._sent.append(now)
        self.governor.charge(weight, now)  # an estimate until the answer's header says

    def _note_weight(self, received_ms: int) -> None:
        self.governor.observe(self._status or 200, self._headers, received_ms)

    def fetch_klines(
        self, symbol: str, interval: str, start_ms: int, end_ms: int, limit: int
    ) -> KlineBatch:
        """One page of klines with open time in ``[start_ms, end_ms]``; retries 429/418/5xx."""
        params: dict[str, object] = {
            "symbol": symbol,
            "interval": interval,
            "startTime": start_ms,
            "endTime": end_ms,
            "limit": limit,
        }
        what = f"Binance {self.market} {symbol} {interval}"
        weight = kline_weight(self.market, limit)
        failure = "failing"
        for attempt in range(self.pacing.max_retries + 1):
            self._pace(weight)
            self._status, self._headers = None, {}
            self.requests += 1
            try:
                rows = self._get_klines(params)
            except ccxt.BaseError as exc:
                self._note_weight(self._clock())
                wait_s, failure = self._retry_or_raise(exc, attempt, what, symbol)
            else:
                received = self._clock()
                self._note_weight(received)
                return KlineBatch(rows, received)
            if attempt < self.pacing.max_retries:
                self._wait(int(wait_s * 1000))
        raise ExchangeError(
            f"{what}: still {failure} after {self.pacing.max_retries} retries; "
            "what was downloaded so far is stored, run the command again to continue"
        )

    def _retry_or_raise(
        self, exc: BaseException, attempt: int, what: str, symbol: str
    ) -> tuple[float, str]:
        """Seconds to wait before retrying a transient failure, and its description; else raise."""
        status = self._status
        if isinstance(exc, ccxt.DDoSProtection) or status in (418, 429):
            wait_s = retry_after_s(self._headers)
            if wait_s is None:
                now = self._clock()
                wait_s = (MINUTE_MS - now % MINUTE_MS + MINUTE_MARGIN_MS) / 1000
            if wait_s > self.pacing.max_wait_s:
                raise ExchangeError(
                    f"{what}: Binance answered {status} and asks for a {wait_s:.0f} s"
                    " pause (IP ban or heavy rate limiting); try again later"
                ) from exc
            return wait_s, f"rate limited (HTTP {status}, Retry-After {wait_s:g} s)"
        if isinstance(exc, ccxt.BadSymbol):
            said = _exchange_message(exc)
            raise ExchangeError(
                f"Binance {self.market} does not list symbol {symbol!r} ({said})"
            ) from exc
        if (status is not None and status >= 500) or (
            status is None and isinstance(exc, ccxt.NetworkError)
        ):
            return min(2.0**attempt, 30.0), f"unavailable ({status or type(exc).__name__})"
        raise ExchangeError(f"{what}: {_exchange_message(exc)}") from exc


def _exchange_message(exc: BaseException) -> str:
    """Binance's own ``msg`` when ccxt's message carries the JSON body, else ccxt's message."""
    text = " ".join(str(exc).split())
    start = text.find("{")
    if start >= 0:
        try:
            body = json.loads(text[start:])
        except ValueError:
            body = None
        if isinstance(body, dict) and "msg" in body:
            return f"Binance says: {body['msg']} (code {body.get('code')})"
    return text


# ---------------------------------------------------------------- the download


@dataclass(frozen=True)
class DownloadProgress:
    done: int  # candle slots covered so far
    total: int  # candle slots planned
    last_open_ms: int | None


@dataclass(frozen=True)
class DownloadResult:
    """What a download did and what the store holds afterwards."""

    key: SeriesKey
    ranges: tuple[tuple[int, int], ...]
    requests: int
    received: int
    added: int
    stored: int
    first_ms: int | None
    last_ms: int | None


def download_candles(
    store: ParquetStore,
    client: KlineClient,
    symbol: str,
    market: Market,
    timeframe: str,
    start_ms: int | None,
    end_ms: int | None = None,
    progress: Callable[[DownloadProgress], None] | None = None,
    *,
    fill_gaps: bool = False,
) -> DownloadResult:
    """Fetch the closed candles missing from the store in ``[start_ms, end_ms)`` (end: now).

    Each page is merged into the store as it arrives, so an interrupted run keeps what it fetched
    and the next run continues from there. ``start_ms=None`` continues a stored series.
    """
    if client.market is not market:
        raise SltError(f"the client talks to the {client.market} market, not {market}")
    if timeframe not in TIMEFRAME_MS:
        raise SltError(f"Binance has no {timeframe!r} klines; use one of {', '.join(TIMEFRAME_MS)}")
    tf = timeframe_ms(timeframe)
    key = SeriesKey(symbol, market, timeframe, Kind.CANDLES)
    stored = store.load_candles(key).open_time_ms if store.has(key) else None
    if start_ms is None:
        if stored is None or len(stored) == 0:
            raise SltError(f"no {key} in the store yet: give a start date")
        start_ms = int(stored[0])
    end = client.now_ms() if end_ms is None else end_ms
    if end <= start_ms:
        raise SltError(f"end {format_utc_ms(end)} is not after start {format_utc_ms(start_ms)}")
    ranges = plan_ranges(start_ms, end, tf, stored, fill_gaps)
    total = sum(candle_count(a, b, tf) for a, b in ranges)
    what = f"Binance {market} {symbol} {timeframe}"
    done = requests = received = added = 0
    last_open: int | None = None
    for a, b in ranges:
        cursor = a
        while cursor < b:
            limit = min(MAX_KLINES_PER_REQUEST, candle_count(cursor, b, tf))
            batch = client.fetch_klines(symbol, timeframe, cursor, b - 1, limit)
            requests += 1
            klines = parse_klines(batch.rows, what, tf)
            inside = (klines.open_time_ms >= cursor) & (klines.open_time_ms < b)
            times, closes = klines.open_time_ms[inside], klines.close_time_ms[inside]
            n_closed = closed_count(closes, batch.received_ms - CLOSE_MARGIN_MS)
            received += n_closed
            if n_closed:
                cols = klines.ohlcv[inside][:n_closed]
                candles = Candles.from_arrays(key, times[:n_closed], *cols.T)
                added += store.merge(candles).added
                last_open = int(times[n_closed - 1])
            exhausted = len(klines) < limit or n_closed < len(times) or n_closed == 0
            next_cursor = b if exhausted else int(times[-1]) + tf
            done += candle_count(cursor, min(next_cursor, b), tf)
            cursor = next_cursor
            if progress is not None:
                progress(DownloadProgress(done, total, last_open))
    held = store.load_candles(key).open_time_ms if store.has(key) else np.empty(0, np.int64)
    return DownloadResult(
        key=key,
        ranges=tuple(ranges),
        requests=requests,
        received=received,
        added=added,
        stored=len(held),
        first_ms=int(held[0]) if len(held) else None,
        last_ms=int(held[-1]) if len(held) else None,
    )
