"""The rate-limit governor (issue 14 item 4): one per API key and IP, shared by all REST
traffic to Binance, the kline downloader's included.

It is pure bookkeeping: ``wait_ms`` says how long to hold a request, ``charge`` counts one
that is sent, ``observe`` reads what Binance answered (``X-MBX-USED-WEIGHT-1M``, the order
counts, ``Retry-After`` on 429 and 418). Callers sleep however their I/O sleeps (the
downloader blocks, the async client awaits), so one set of rules serves both.

The rules (reference §4): weight per fixed minute and new orders per fixed 10 s and minute, with
a reserve of each kept for requests that reduce risk (closing orders, protective stops); a 429
holds every request until its ``Retry-After`` (or the next minute); a 418 ban stops all REST
until it ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MINUTE_MS = 60_000
TEN_S_MS = 10_000
MARGIN_MS = 500  # clocks differ: wait a little past the window so we land in the new one
WEIGHT_HEADER = "x-mbx-used-weight-1m"
ORDERS_10S_HEADER = "x-mbx-order-count-10s"
ORDERS_1M_HEADER = "x-mbx-order-count-1m"


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A header by case-insensitive name."""
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


def retry_after_s(headers: Mapping[str, str] | None) -> float | None:
    """The ``Retry-After`` delay in seconds, if the exchange sent a readable one."""
    text = header(headers, "retry-after")
    try:
        return max(0.0, float(text)) if text is not None else None
    except ValueError:
        return None


@dataclass
class _Window:
    """A count in a fixed window of ``length_ms`` (Binance's windows reset on the boundary)."""

    length_ms: int
    start_ms: int = -1
    used: int = 0

    def current(self, now_ms: int) -> int:
        return self.used if now_ms - now_ms % self.length_ms == self.start_ms else 0

    def add(self, now_ms: int, amount: int) -> None:
        self.set(now_ms, self.current(now_ms) + amount)

    def set(self, now_ms: int, used: int) -> None:
        self.start_ms, self.used = now_ms - now_ms % self.length_ms, used

    def until_next_ms(self, now_ms: int) -> int:
        return self.length_ms - now_ms % self.length_ms + MARGIN_MS


@dataclass
class Governor:
    """Limits are Binance's defaults until ``use_exchange_info`` reads the announced ones."""

    weight_limit: int = 2_400
    orders_10s: int = 300
    orders_1m: int = 1_200
    reserve: float = 0.1  # the share of each limit only risk-reducing requests may use
    weight: _Window = field(default_factory=lambda: _Window(MINUTE_MS))
    orders_in_10s: _Window = field(default_factory=lambda: _Window(TEN_S_MS))
    orders_in_1m: _Window = field(default_factory=lambda: _Window(MINUTE_MS))
    held_until_ms: int = 0  # a 429's Retry-After or a 418 ban: nothing is sent before
    requests: int = 0
    weight_sent: int = 0
    waited_ms: int = 0
    limited: int = 0  # 429 answers seen
    banned: int = 0  # 418 answers seen

    def use_exchange_info(self, info: Mapping[str, Any]) -> None:
        """The limits ``exchangeInfo`` announces (``rateLimits``)."""
        for limit in info.get("rateLimits", []):
            kind, interval = limit.get("rateLimitType"), limit.get("interval")
            number, value = int(limit.get("intervalNum", 1)), int(limit.get("limit", 0))
            if value <= 0:
                continue
            if kind == "REQUEST_WEIGHT" and interval == "MINUTE" and number == 1:
                self.weight_limit = value
            elif kind == "ORDERS" and interval == "SECOND" and number == 10:
                self.orders_10s = value
            elif kind == "ORDERS" and interval == "MINUTE" and number == 1:
                self.orders_1m = value

    def _budget(self, limit: int, reduces_risk: bool) -> int:
        return limit if reduces_risk else max(1, int(limit * (1 - self.reserve)))

    def wait_ms(
        self, weight: int, now_ms: int, *, new_orders: int = 0, reduces_risk: bool = False
    ) -> int:
        """How long to hold a request of ``weight`` (0: send it now)."""
        if now_ms < self.held_until_ms:
            return self.held_until_ms - now_ms
        wait = 0
        if self.weight.current(now_ms) + weight > self._budget(self.weight_limit, reduces_risk):
            wait = self.weight.until_next_ms(now_ms)
        if new_orders:
            if self.orders_in_10s.current(now_ms) + new_orders > self._budget(
                self.orders_10s, reduces_risk
            ):
                wait = max(wait, self.orders_in_10s.until_next_ms(now_ms))
            if self.orders_in_1m.current(now_ms) + new_orders > self._budget(
                self.orders_1m, reduces_risk
            ):
                wait = max(wait, self.orders_in_1m.until_next_ms(now_ms))
        return wait

    def waited(self, ms: int) -> None:
        self.waited_ms += ms

    def charge(self, weight: int, now_ms: int, new_orders: int = 0) -> None:
        """A request goes out: counted until the answer's headers say the truth."""
        self.requests += 1
        self.weight_sent += weight
        self.weight.add(now_ms, weight)
        if new_orders:
            self.orders_in_10s.add(now_ms, new_orders)
            self.orders_in_1m.add(now_ms, new_orders)

    def observe(self, status: int, headers: Mapping[str, str] | None, now_ms: int) -> None:
        """What the exchange answered: its counts, and any hold it asked for."""
        used = header(headers, WEIGHT_HEADER)
        if used is not None and used.isdigit():
            self.weight.set(now_ms, int(used))
        for name, window in ((ORDERS_10S_HEADER, self.orders_in_10s),
                             (ORDERS_1M_HEADER, self.orders_in_1m)):  # fmt: skip
            count = header(headers, name)
            if count is not None and count.isdigit():
                window.set(now_ms, int(count))
        if status in (418, 429):
            if status == 418:
                self.banned += 1
            else:
                self.limited += 1
            after = retry_after_s(headers)
            hold = int(after * 1000) if after is not None else self.weight.until_next_ms(now_ms)
            self.held_until_ms = max(self.held_until_ms, now_ms + hold)

    def summary(self) -> dict[str, int]:
        return {
            "requests": self.requests, "weight": self.weight_sent, "waited_ms": self.waited_ms,
            "429": self.limited, "418": self.banned,
        }  # fmt: skip
