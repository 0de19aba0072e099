"""Signed REST calls to the local exchange as a Binance client makes them, and a wall clock the
test moves by hand (so the replayed market moves only when the test says)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from slt.adapters.exchange.local.auth import ApiAccount, hmac_signature
from tests.support.local_exchange import ACCOUNT


class Wall:
    """A wall clock in ms that stands still until ``advance``."""

    def __init__(self, now_ms: int) -> None:
        self.now = now_ms

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


class SystemWall(Wall):
    """The real wall clock, for servers in another process."""

    def __init__(self) -> None:
        super().__init__(0)

    def __call__(self) -> int:
        return time.time_ns() // 1_000_000

    @property  # type: ignore[override]
    def now(self) -> int:
        return self()

    @now.setter
    def now(self, value: int) -> None:
        pass


Answer = tuple[int, dict[str, str], Any]


def call(
    url: str,
    method: str,
    path: str,
    wall: Wall,
    account: ApiAccount = ACCOUNT,
    **params: Any,
) -> Answer:
    """A signed request (query string), as the SDK sends it: (status, headers, body)."""
    params["timestamp"] = wall.now
    query = urllib.parse.urlencode({k: str(v) for k, v in params.items()})
    query += "&signature=" + hmac_signature(account.secret, query)
    request = urllib.request.Request(
        f"{url}{path}?{query}", method=method, headers={"X-MBX-APIKEY": account.key}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), _body(answer.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), _body(error.read())


def _body(raw: bytes) -> Any:
    """JSON, or the text of an answer that is not (a gateway's HTML error page)."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def ok(answer: Answer) -> Any:
    status, _, body = answer
    assert status == 200, body
    return body
