"""API keys and request signing as Binance checks them (reference §3): ``X-MBX-APIKEY``,
HMAC-SHA256 over the query string followed by the body, and the timestamp rule."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from slt.adapters.exchange.local import codes
from slt.errors import ConfigError

ACCOUNTS_ENV = "SLT_EXCHANGE_ACCOUNTS"
DEFAULT_RECV_WINDOW_MS = 5_000
MAX_RECV_WINDOW_MS = 60_000
_KEY = re.compile(r"^[A-Za-z0-9]{8,128}$")


@dataclass(frozen=True)
class ApiAccount:
    """One API key and its secret; the secret never appears in a repr, a log or an error."""

    key: str
    secret: str = field(repr=False)


def parse_accounts(text: str) -> list[ApiAccount]:
    """``KEY:SECRET[,KEY:SECRET...]`` as ``SLT_EXCHANGE_ACCOUNTS`` holds it; a bad entry is
    named by its position, never by its content."""
    found: list[ApiAccount] = []
    for i, entry in enumerate(text.split(","), start=1):
        key, sep, secret = entry.strip().partition(":")
        if not sep or not _KEY.match(key) or not _KEY.match(secret):
            raise ConfigError(
                f"{ACCOUNTS_ENV}: entry {i} is not KEY:SECRET (each 8 to 128 letters and digits)"
            )
        if any(a.key == key for a in found):
            raise ConfigError(f"{ACCOUNTS_ENV}: entry {i} repeats an API key")
        found.append(ApiAccount(key, secret))
    return found


def demo_account() -> ApiAccount:
    """A fresh random key pair (64 characters each, as Binance's)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return ApiAccount(
        "".join(secrets.choice(alphabet) for _ in range(64)),
        "".join(secrets.choice(alphabet) for _ in range(64)),
    )


def without_signature(raw: str) -> tuple[str, str | None]:
    """(the raw parameters with ``signature=...`` removed, the signature or None)."""
    if not raw:
        return "", None
    kept, signature = [], None
    for part in raw.split("&"):
        if part.startswith("signature="):
            signature = part[len("signature=") :]
        else:
            kept.append(part)
    return "&".join(kept), signature


def hmac_signature(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


class Authenticator:
    """Checks a request's key, signature and timestamp against the transport clock (the
    wall clock: market time plays no part in signing)."""

    def __init__(self, accounts: list[ApiAccount], wall_ms: Callable[[], int]) -> None:
        self._by_key = {a.key: a for a in accounts}
        self._wall_ms = wall_ms
        self.skew_ms = 0  # a clock-skew fault: the server's clock runs this far ahead

    def api_keys(self) -> list[str]:
        return list(self._by_key)

    def account(self, api_key: str | None) -> ApiAccount:
        if not api_key:
            raise codes.api_key_format()
        found = self._by_key.get(api_key)
        if found is None:
            raise codes.api_key_rejected()
        return found

    def verify(
        self, account: ApiAccount, raw_query: str, raw_body: str, params: dict[str, str]
    ) -> None:
        """Signed endpoints (TRADE, USER_DATA): the signature, then the timestamp rule."""
        query, in_query = without_signature(raw_query)
        body, in_body = without_signature(raw_body)
        given = in_query if in_query is not None else in_body
        if not given:
            raise codes.mandatory("signature")
        expected = hmac_signature(account.secret, query + body)
        if not hmac.compare_digest(expected, given.lower()):
            raise codes.bad_signature()
        self.check_timestamp(params)

    def check_timestamp(self, params: dict[str, str]) -> None:
        """Accepted iff ``timestamp < server + 1000`` and ``server - timestamp <= recvWindow``."""
        text = params.get("timestamp")
        if not text:
            raise codes.mandatory("timestamp")
        if not text.isdigit():
            raise codes.illegal_chars("timestamp", "^[0-9]{1,20}$")
        window = DEFAULT_RECV_WINDOW_MS
        if "recvWindow" in params:
            raw = params["recvWindow"]
            if not raw.isdigit():
                raise codes.illegal_chars("recvWindow", "^[0-9]{1,20}$")
            window = int(raw)
            if window > MAX_RECV_WINDOW_MS:
                raise codes.recv_window_too_long()
        stamp, now = int(text), self._wall_ms() + self.skew_ms
        if stamp >= now + 1000:
            raise codes.timestamp_ahead()
        if now - stamp > window:
            raise codes.timestamp_outside_window()
