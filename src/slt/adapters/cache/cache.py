"""The optional Redis cache: latest prices, latest candles and hot read-only queries, with TTLs.

Redis only ever speeds things up. When it is absent, unreachable or dies mid-run, every read is
a miss and every write a no-op; one warning says so, the connection is retried at most once per
``retry_interval_s`` and one info line says when it is back. Trading continues on the database.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

import redis.asyncio as redis_async
import structlog
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from slt.errors import ConfigError

# (open time ms, open, high, low, close, volume)
CandleRow = tuple[int, float, float, float, float, float]

NAMESPACE = "slt:v1"
# Short enough that a dead or black-holed Redis never stalls the trading loop.
SOCKET_TIMEOUT_S = 0.25
RETRY_INTERVAL_S = 30.0
MAX_NAME_LENGTH = 64
MAX_QUERY_KEY_LENGTH = 200

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CacheTtls:
    """How long each kind of entry lives in Redis, in seconds."""

    price_s: float = 60.0
    candles_s: float = 86_400.0
    query_s: float = 30.0

    def __post_init__(self) -> None:
        for name in ("price_s", "candles_s", "query_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.001):
                raise ValueError(f"cache TTL {name} must be at least 0.001 s, got {value!r}")


class Cache(Protocol):
    """What the engine and the API may ask of a cache; a miss is always a valid answer."""

    async def latest_price(self, symbol: str) -> tuple[float, int] | None:
        """(price, time_ms) of the newest price seen for ``symbol``, or None."""
        ...

    async def set_latest_price(self, symbol: str, price: float, time_ms: int) -> None: ...

    async def latest_candles(self, symbol: str, timeframe: str) -> list[CandleRow] | None:
        """The newest candles, oldest first, or None."""
        ...

    async def set_latest_candles(
        self, symbol: str, timeframe: str, rows: Sequence[CandleRow], keep: int = 500
    ) -> None:
        """Replace the cached candles with the newest ``keep`` of ``rows`` (ascending open time)."""
        ...

    async def get_json(self, key: str) -> object | None: ...

    async def set_json(self, key: str, value: object, ttl_s: float | None = None) -> None:
        """Cache a JSON-able query result; ``ttl_s`` defaults to the query TTL."""
        ...

    async def close(self) -> None: ...


# Input checks shared by both caches, so bad input fails the same way with or without Redis.


def _check_name(what: str, value: str, limit: int = MAX_NAME_LENGTH) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ValueError(f"{what} must be a non-empty string of at most {limit} characters")
    if any(ch.isspace() for ch in value):
        raise ValueError(f"{what} must not contain whitespace: {value!r}")
    return value


def _check_time_ms(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"time_ms must be a non-negative int of epoch milliseconds: {value!r}")
    return value


def _check_price(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"price must be a number: {value!r}")
    price = float(value)
    if not math.isfinite(price) or price <= 0:
        raise ValueError(f"price must be finite and positive: {value!r}")
    return price


def _check_rows(rows: Sequence[CandleRow], keep: int) -> list[CandleRow]:
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise ValueError(f"keep must be a positive int: {keep!r}")
    checked: list[CandleRow] = []
    previous = -1
    for row in rows[-keep:]:
        if len(row) != 6:
            raise ValueError(f"a candle row has 6 fields (open_time_ms, o, h, l, c, v): {row!r}")
        open_ms = _check_time_ms(row[0])
        if open_ms <= previous:
            raise ValueError(f"candle open times must be strictly ascending: {open_ms}")
        values = [float(v) for v in row[1:]]
        if not all(math.isfinite(v) for v in values) or any(v < 0 for v in values):
            raise ValueError(f"candle values must be finite and non-negative: {row!r}")
        checked.append((open_ms, values[0], values[1], values[2], values[3], values[4]))
        previous = open_ms
    return checked


def _check_ttl(ttl_s: float) -> float:
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int | float):
        raise ValueError(f"ttl_s must be a number of seconds: {ttl_s!r}")
    if not (math.isfinite(ttl_s) and ttl_s >= 0.001):
        raise ValueError(f"ttl_s must be at least 0.001 s: {ttl_s!r}")
    return float(ttl_s)


def _encode_json(value: object) -> str:
    # allow_nan=False: NaN and infinities are refused with ValueError instead of stored.
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


class NullCache:
    """The cache when REDIS_URL is unset: always misses, stores nothing, still checks input."""

    async def latest_price(self, symbol: str) -> tuple[float, int] | None:
        _check_name("symbol", symbol)
        return None

    async def set_latest_price(self, symbol: str, price: float, time_ms: int) -> None:
        _check_name("symbol", symbol)
        _check_price(price)
        _check_time_ms(time_ms)

    async def latest_candles(self, symbol: str, timeframe: str) -> list[CandleRow] | None:
        _check_name("symbol", symbol)
        _check_name("timeframe", timeframe)
        return None

    async def set_latest_candles(
        self, symbol: str, timeframe: str, rows: Sequence[CandleRow], keep: int = 500
    ) -> None:
        _check_name("symbol", symbol)
        _check_name("timeframe", timeframe)
        _check_rows(rows, keep)

    async def get_json(self, key: str) -> object | None:
        _check_name("key", key, MAX_QUERY_KEY_LENGTH)
        return None

    async def set_json(self, key: str, value: object, ttl_s: float | None = None) -> None:
        _check_name("key", key, MAX_QUERY_KEY_LENGTH)
        if ttl_s is not None:
            _check_ttl(ttl_s)
        _encode_json(value)

    async def close(self) -> None:
        return None


def _password_of(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


class RedisCache:
    """The Redis-backed cache. ``display_url`` is the URL with its password masked, for logs."""

    def __init__(
        self,
        url: str,
        display_url: str,
        *,
        ttls: CacheTtls | None = None,
        namespace: str = NAMESPACE,
        clock: Callable[[], float] = time.monotonic,
        retry_interval_s: float = RETRY_INTERVAL_S,
    ) -> None:
        self._display_url = display_url
        self._password = _password_of(url)
        self._ttls = ttls or CacheTtls()
        self._namespace = namespace
        self._clock = clock
        self._retry_interval_s = retry_interval_s
        self._down = False
        self._retry_at = 0.0
        self._log = structlog.stdlib.get_logger("slt.cache")
        try:
            self._client = redis_async.Redis.from_url(
                url,
                socket_connect_timeout=SOCKET_TIMEOUT_S,
                socket_timeout=SOCKET_TIMEOUT_S,
                # redis-py retries with seconds of backoff by default; we give up at once instead.
                retry=Retry(NoBackoff(), 0),
            )
        except ValueError:
            # redis-py's message may quote the URL; ours names only the masked one.
            raise ConfigError(
                f"REDIS_URL is not a Redis URL (redis://, rediss:// or unix://): {display_url}"
            ) from None

    @property
    def is_up(self) -> bool:
        """False from a failed call until a retry succeeds."""
        return not self._down

    def _key(self, *parts: str) -> str:
        return ":".join((self._namespace, *parts))

    async def latest_price(self, symbol: str) -> tuple[float, int] | None:
        key = self._key("price", _check_name("symbol", symbol))
        raw = await self._run(lambda: self._client.get(key))
        if raw is None:
            return None
        try:
            price_text, time_text = raw.split(b" ")
            return float(price_text), int(time_text)
        except ValueError:
            return None  # not written by us: treat as a miss

    async def set_latest_price(self, symbol: str, price: float, time_ms: int) -> None:
        key = self._key("price", _check_name("symbol", symbol))
        # repr() is the shortest text that reads back as the same float.
        value = f"{_check_price(price)!r} {_check_time_ms(time_ms)}"
        ttl_ms = round(self._ttls.price_s * 1000)
        await self._run(lambda: self._client.set(key, value, px=ttl_ms))

    async def latest_candles(self, symbol: str, timeframe: str) -> list[CandleRow] | None:
        key = self._key(
            "candles", _check_name("symbol", symbol), _check_name("timeframe", timeframe)
        )
        raw = await self._run(lambda: self._client.get(key))
        if raw is None:
            return None
        try:
            return [
                (int(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5]))
                for r in json.loads(raw)
            ]
        except (ValueError, TypeError, IndexError):
            return None

    async def set_latest_candles(
        self, symbol: str, timeframe: str, rows: Sequence[CandleRow], keep: int = 500
    ) -> None:
        key = self._key(
            "candles", _check_name("symbol", symbol), _check_name("timeframe", timeframe)
        )
        value = _encode_json(_check_rows(rows, keep))
        ttl_ms = round(self._ttls.candles_s * 1000)
        await self._run(lambda: self._client.set(key, value, px=ttl_ms))

    async def get_json(self, key: str) -> object | None:
        full_key = self._key("query", _check_name("key", key, MAX_QUERY_KEY_LENGTH))
        raw = await self._run(lambda: self._client.get(full_key))
        if raw is None:
            return None
        try:
            return json.loads(raw)  # type: ignore[no-any-return]
        except ValueError:
            return None

    async def set_json(self, key: str, value: object, ttl_s: float | None = None) -> None:
        full_key = self._key("query", _check_name("key", key, MAX_QUERY_KEY_LENGTH))
        ttl_ms = round(_check_ttl(self._ttls.query_s if ttl_s is None else ttl_s) * 1000)
        text = _encode_json(value)
        await self._run(lambda: self._client.set(full_key, text, px=ttl_ms))

    async def close(self) -> None:
        # Closing a dead connection: nothing is left to release.
        with contextlib.suppress(RedisError, OSError):
            await self._client.aclose()

    async def _run(self, command: Callable[[], Awaitable[T]]) -> T | None:
        """Run one Redis command; any failure of Redis turns into a miss (None)."""
        if self._down:
            now = self._clock()
            if now < self._retry_at:
                return None
            # Only one probe per interval, even with many callers at once.
            self._retry_at = now + self._retry_interval_s
        try:
            result = await command()
        except (RedisError, OSError) as exc:
            self._went_down(exc)
            return None
        if self._down:
            self._down = False
            self._log.info("redis cache is back on", url=self._display_url)
        return result

    def _went_down(self, exc: BaseException) -> None:
        self._retry_at = self._clock() + self._retry_interval_s
        if self._down:
            return
        self._down = True
        detail = str(exc)
        if self._password:
            detail = detail.replace(self._password, "***")
        self._log.warning(
            "redis cache is off, trading continues on the database alone",
            url=self._display_url,
            error=f"{type(exc).__name__}: {detail}",
            retry_every_s=self._retry_interval_s,
        )


def open_cache(
    redis_url: str | None,
    display_url: str,
    *,
    ttls: CacheTtls | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Cache:
    """RedisCache for a URL, NullCache when REDIS_URL is unset or empty. Does no I/O."""
    if not redis_url:
        return NullCache()
    return RedisCache(redis_url, display_url, ttls=ttls, clock=clock)
