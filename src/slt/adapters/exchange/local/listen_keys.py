"""User-data stream keys (reference §7.1): ``POST/PUT/DELETE /fapi/v1/listenKey``, security
type USER_STREAM (the API key, no signature), weight 1 each.

An account has at most one live key. POST returns it extended if there is one, else a new
64-character key; PUT extends it (``-1125`` if there is none); DELETE ends it. A key lives 60
minutes of wall time (transport time) after its creation or last extension.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from slt.errors import ExchangeRejected

if TYPE_CHECKING:
    from slt.adapters.exchange.local.server import Call, LocalExchange

KEY_LENGTH = 64
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def listen_key_missing() -> ExchangeRejected:
    return ExchangeRejected(-1125, "This listenKey does not exist.")


@dataclass
class _Live:
    key: str
    api_key: str
    expires_wall_ms: int


class ListenKeys:
    """The live keys by account; ``ended`` hands over keys that expired or were closed, so that
    their connections can be told."""

    def __init__(self, ttl_ms: int, wall: Callable[[], int]) -> None:
        self.ttl_ms = ttl_ms
        self._wall = wall
        self._by_account: dict[str, _Live] = {}
        self._ended: list[str] = []

    def open(self, api_key: str) -> str:
        now = self._wall()
        live = self._live(api_key, now)
        if live is None:
            live = _Live("".join(secrets.choice(_ALPHABET) for _ in range(KEY_LENGTH)), api_key, 0)
            self._by_account[api_key] = live
        live.expires_wall_ms = now + self.ttl_ms
        return live.key

    def keep_alive(self, api_key: str, key: str | None) -> str:
        now = self._wall()
        live = self._live(api_key, now)
        if live is None or (key is not None and key != live.key):
            raise listen_key_missing()
        live.expires_wall_ms = now + self.ttl_ms
        return live.key

    def close(self, api_key: str, key: str | None) -> str:
        live = self._live(api_key, self._wall())
        if live is None or (key is not None and key != live.key):
            raise listen_key_missing()
        del self._by_account[api_key]
        self._ended.append(live.key)
        return live.key

    def live_key(self, api_key: str) -> str | None:
        live = self._live(api_key, self._wall())
        return live.key if live else None

    def expire_all(self) -> int:
        """End every live key now, as if its hour had run out; how many there were."""
        count = len(self._by_account)
        self._ended += [live.key for live in self._by_account.values()]
        self._by_account.clear()
        return count

    def ended(self) -> list[str]:
        """Keys that expired or were closed since the last call."""
        now = self._wall()
        for api_key in [a for a, live in self._by_account.items() if live.expires_wall_ms <= now]:
            self._ended.append(self._by_account.pop(api_key).key)
        found, self._ended = self._ended, []
        return found

    def _live(self, api_key: str, now: int) -> _Live | None:
        live = self._by_account.get(api_key)
        if live is not None and live.expires_wall_ms <= now:
            self._ended.append(self._by_account.pop(api_key).key)  # expired, not told yet
            return None
        return live


# -- REST ---------------------------------------------------------------------------------


def _api_key(call: Call) -> str:
    assert call.account is not None  # USER_STREAM routes always carry the account
    return call.account.key


async def start_user_stream(ex: LocalExchange, call: Call) -> Any:
    return {"listenKey": ex.hub.listen_keys.open(_api_key(call))}


async def keepalive_user_stream(ex: LocalExchange, call: Call) -> Any:
    key = ex.hub.listen_keys.keep_alive(_api_key(call), call.params.get("listenKey") or None)
    return {"listenKey": key}


async def close_user_stream(ex: LocalExchange, call: Call) -> Any:
    ex.hub.listen_keys.close(_api_key(call), call.params.get("listenKey") or None)
    ex.hub.tell_ended_keys()  # its connections hear it now, as after an expiry
    return {}


class RouteSpec(NamedTuple):
    """What ``server.Route`` takes (kept here as a tuple: the server imports this module)."""

    handler: Callable[[LocalExchange, Call], Awaitable[Any]]
    weight: int
    security: str


PATH = "/fapi/v1/listenKey"
LISTEN_KEY_ROUTES: dict[tuple[str, str], RouteSpec] = {
    ("POST", PATH): RouteSpec(start_user_stream, 1, "USER_STREAM"),
    ("PUT", PATH): RouteSpec(keepalive_user_stream, 1, "USER_STREAM"),
    ("DELETE", PATH): RouteSpec(close_user_stream, 1, "USER_STREAM"),
}
