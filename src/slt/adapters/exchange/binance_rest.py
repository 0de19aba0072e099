"""Signed REST calls to Binance USDT-M futures (or its testnet, or the local exchange), on
aiohttp, paced by the rate-limit governor (issue 14 items 4 and 6).

A thin client rather than Binance's SDK or ccxt (docs/exchange.md says why): it never blocks
the event loop, every answer keeps its rate-limit headers, and it **never resends an order
submission by itself**: an answer that leaves the outcome unknown (a timeout, a 5xx, ``-1007``)
raises ``OutcomeUnknown`` and the caller queries by client id. Requests that did not run are
repeated: a ``-1021`` after the clock is measured again, and reads after a 429's
``Retry-After``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from slt.adapters.exchange.governor import Governor
from slt.errors import ExchangeError, ExchangeRejected

WallMs = Callable[[], int]
Sleep = Callable[[float], Awaitable[None]]
UNKNOWN_OUTCOME_CODES = (-1007,)
CLOCK_RETRIES = 20  # the first request of a (re)started process: each waits the hold
RETRIES = 3


def system_ms() -> int:
    return time.time_ns() // 1_000_000


class OutcomeUnknown(ExchangeError):
    """A submission was sent and its outcome is unknown: query it, never resend it blindly."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: Any


class BinanceRest:
    """One API key's REST client; the secret is kept out of every repr, log and error."""

    def __init__(
        self,
        base_url: str,
        api_key: str = "",
        api_secret: str = "",
        *,
        governor: Governor | None = None,
        wall: WallMs = system_ms,
        sleep: Sleep = asyncio.sleep,
        recv_window_ms: int = 5_000,
        timeout_s: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self._secret = api_secret.encode()
        self.governor = governor or Governor()
        self._wall, self._sleep = wall, sleep
        self.recv_window_ms = recv_window_ms
        self.offset_ms = 0  # server time - our wall time, from the last measurement
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"BinanceRest({self.base_url!r}, key={self._key[:4]}…)"

    async def __aenter__(self) -> BinanceRest:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    # -- the clock (item 6) -----------------------------------------------------------

    def wall_ms(self) -> int:
        """Our wall clock (add ``offset_ms`` for the server's)."""
        return self._wall()

    async def sync_clock(self) -> int:
        """Offset to the server's clock by the round trip's midpoint; returns it."""
        for attempt in range(CLOCK_RETRIES + 1):
            sent = self._wall()
            try:
                answer = await self._send("GET", "/fapi/v1/time", {}, 1, signed=False)
                break
            except ExchangeRejected as exc:  # a process restarted into a 429 hold waits it out
                if exc.status not in (418, 429) or attempt == CLOCK_RETRIES:
                    raise
        received = self._wall()
        self.offset_ms = int(answer.body["serverTime"]) - (sent + received) // 2
        return self.offset_ms

    async def load_limits(self) -> dict[str, Any]:
        """exchangeInfo, whose announced limits the governor then keeps."""
        info: dict[str, Any] = (await self.public("GET", "/fapi/v1/exchangeInfo")).body
        self.governor.use_exchange_info(info)
        return info

    # -- requests ---------------------------------------------------------------------

    async def public(self, method: str, path: str, params: Mapping[str, Any] | None = None,
                     weight: int = 1) -> Answer:  # fmt: skip
        return await self._repeatable(method, path, dict(params or {}), weight, signed=False)

    async def api_key_only(self, method: str, path: str,
                           params: Mapping[str, Any] | None = None) -> Answer:  # fmt: skip
        """USER_STREAM requests (the listenKey): the key header, no signature, weight 1."""
        return await self._repeatable(method, path, dict(params or {}), 1, signed=False)

    async def signed(self, method: str, path: str, params: Mapping[str, Any] | None = None,
                     weight: int = 1) -> Answer:  # fmt: skip
        """A signed read or cancel: repeated after a 429 hold or a ``-1021`` resync."""
        return await self._repeatable(method, path, dict(params or {}), weight, signed=True)

    async def submit(self, path: str, params: Mapping[str, Any], *, weight: int = 0,
                     new_orders: int = 1, reduces_risk: bool = False) -> Answer:  # fmt: skip
        """A new order (``/fapi/v1/order``, ``algoOrder``, ``batchOrders``): sent once. Refusals
        that come before the order runs are sent again: a ``-1021`` after the clock is measured
        again, a 429 or 418 each time the governor's hold has passed. An unknown outcome raises
        ``OutcomeUnknown``; every other refusal raises."""
        resynced = False
        while True:
            try:
                return await self._send(
                    "POST", path, dict(params), weight, signed=True, new_orders=new_orders,
                    reduces_risk=reduces_risk, submission=True,
                )  # fmt: skip
            except ExchangeRejected as exc:
                if exc.code == -1021 and not resynced:
                    resynced = True
                    await self.sync_clock()
                    continue
                if exc.status in (418, 429):
                    # Refused unread: sent again once the governor's hold (Retry-After, the
                    # ban) has passed, however long; a protective stop is never given up.
                    continue
                raise

    async def _repeatable(self, method: str, path: str, params: dict[str, Any], weight: int,
                          *, signed: bool) -> Answer:  # fmt: skip
        resynced = False
        for attempt in range(RETRIES + 1):
            try:
                return await self._send(method, path, params, weight, signed=signed)
            except ExchangeRejected as exc:
                if exc.code == -1021 and signed and not resynced:
                    resynced = True
                    await self.sync_clock()
                    continue
                if exc.status in (418, 429) and attempt < RETRIES:
                    continue  # the governor holds the next try until Retry-After
                raise
        raise AssertionError("unreachable")

    async def _send(
        self, method: str, path: str, params: dict[str, Any], weight: int, *, signed: bool,
        new_orders: int = 0, reduces_risk: bool = False, submission: bool = False,
    ) -> Answer:  # fmt: skip
        g = self.governor
        while (wait := g.wait_ms(weight, self._wall(), new_orders=new_orders,
                                 reduces_risk=reduces_risk)) > 0:  # fmt: skip
            g.waited(wait)
            await self._sleep(wait / 1000)
        headers = {}
        query = urlencode({k: _text(v) for k, v in params.items()})
        if signed:
            stamp = urlencode({"timestamp": self._wall() + self.offset_ms,
                               "recvWindow": self.recv_window_ms})  # fmt: skip
            query = f"{query}&{stamp}" if query else stamp
            signature = hmac.new(self._secret, query.encode(), hashlib.sha256).hexdigest()
            query = f"{query}&signature={signature}"
            headers["X-MBX-APIKEY"] = self._key
        elif self._key:
            headers["X-MBX-APIKEY"] = self._key
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        g.charge(weight, self._wall(), new_orders)
        try:
            async with self._http().request(method, url, headers=headers) as response:
                text = await response.text()
                status, answer_headers = response.status, dict(response.headers)
        except (TimeoutError, aiohttp.ClientError) as exc:
            if submission:
                raise OutcomeUnknown(f"{method} {path}: no answer ({type(exc).__name__})") from exc
            raise ExchangeError(f"{method} {path}: no answer ({type(exc).__name__})") from exc
        g.observe(status, answer_headers, self._wall())
        body = _json(text)
        if status == 200:
            return Answer(status, answer_headers, body)
        code = body.get("code") if isinstance(body, dict) else None
        if submission and (status >= 500 or code in UNKNOWN_OUTCOME_CODES):
            raise OutcomeUnknown(f"{method} {path}: HTTP {status}, outcome unknown")
        if isinstance(code, int):
            raise ExchangeRejected(code, str(body.get("msg", "")), status)
        raise ExchangeError(f"{method} {path}: HTTP {status}: {text[:200]}")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
