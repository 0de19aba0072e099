"""Rate limits as Binance counts them (reference §4): request weight per IP per fixed minute,
new orders per account per 10 s and per minute; 429 with Retry-After when a limit breaks,
then a 418 ban for an IP that keeps going, doubling from 2 minutes up to 3 days."""

from __future__ import annotations

from dataclasses import dataclass

from slt.adapters.exchange.local import codes

WEIGHT_PER_MINUTE = 2_400
ORDERS_PER_10S = 300
ORDERS_PER_MINUTE = 1_200
FIRST_BAN_MS = 120_000
LONGEST_BAN_MS = 3 * 24 * 3_600_000
MINUTE_MS = 60_000


@dataclass
class _Window:
    start_ms: int = -1
    used: int = 0

    def add(self, now_ms: int, length_ms: int, amount: int) -> int:
        start = now_ms - now_ms % length_ms
        if start != self.start_ms:
            self.start_ms, self.used = start, 0
        self.used += amount
        return self.used

    def peek(self, now_ms: int, length_ms: int) -> int:
        return self.used if now_ms - now_ms % length_ms == self.start_ms else 0


@dataclass
class _Ip:
    weight: _Window
    limited_until_ms: int = 0  # answered 429: a request before this time earns a ban
    banned_until_ms: int = 0
    ban_ms: int = FIRST_BAN_MS


class RateLimits:
    """Counts on the transport clock; ``weight_limit`` and the order limits are what
    exchangeInfo's ``rateLimits`` announce."""

    def __init__(
        self,
        weight_limit: int = WEIGHT_PER_MINUTE,
        orders_10s: int = ORDERS_PER_10S,
        orders_1m: int = ORDERS_PER_MINUTE,
    ) -> None:
        self.weight_limit = weight_limit
        self.orders_10s = orders_10s
        self.orders_1m = orders_1m
        self._ips: dict[str, _Ip] = {}
        self._orders: dict[str, tuple[_Window, _Window]] = {}

    def charge(self, ip: str, weight: int, now_ms: int) -> int:
        """Count a request's weight; the minute's weight used so far, or a 429 / 418 answer."""
        state = self._ips.get(ip)
        if state is None:
            state = self._ips[ip] = _Ip(_Window())
        if now_ms < state.banned_until_ms:
            raise codes.banned(state.banned_until_ms, _seconds(state.banned_until_ms - now_ms))
        if now_ms < state.limited_until_ms:  # told to back off and did not: banned
            state.banned_until_ms = now_ms + state.ban_ms
            state.ban_ms = min(2 * state.ban_ms, LONGEST_BAN_MS)
            state.limited_until_ms = 0
            raise codes.banned(state.banned_until_ms, _seconds(state.banned_until_ms - now_ms))
        used = state.weight.add(now_ms, MINUTE_MS, weight)
        if used > self.weight_limit:
            state.limited_until_ms = state.weight.start_ms + MINUTE_MS
            raise codes.too_many_requests(
                self.weight_limit, _seconds(state.limited_until_ms - now_ms)
            )
        return used

    def used_weight(self, ip: str, now_ms: int) -> int:
        state = self._ips.get(ip)
        return state.weight.peek(now_ms, MINUTE_MS) if state else 0

    def charge_order(self, account: str, now_ms: int, count: int = 1) -> tuple[int, int]:
        """Count new orders of an account: (used in 10 s, used in 1 min), or a 429 (-1015)."""
        ten, minute = self._orders.setdefault(account, (_Window(), _Window()))
        in_10s = ten.add(now_ms, 10_000, count)
        in_1m = minute.add(now_ms, MINUTE_MS, count)
        if in_10s > self.orders_10s:
            raise codes.too_many_orders(self.orders_10s, "10s", _seconds(10_000 - now_ms % 10_000))
        if in_1m > self.orders_1m:
            raise codes.too_many_orders(
                self.orders_1m, "1m", _seconds(MINUTE_MS - now_ms % MINUTE_MS)
            )
        return in_10s, in_1m


def _seconds(ms: int) -> int:
    return max(1, -(-ms // 1000))
