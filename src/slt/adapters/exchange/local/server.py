"""The local exchange's HTTP server (aiohttp): Binance's REST paths, parameters, signing, rate
limits and error answers on 127.0.0.1. WebSocket streams share the port (same application).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from slt.adapters.exchange.local import answers, codes
from slt.adapters.exchange.local.auth import ApiAccount, Authenticator
from slt.adapters.exchange.local.clock import ReplayClock, wall_ms
from slt.adapters.exchange.local.limits import RateLimits
from slt.adapters.exchange.local.market import (
    KLINE_LIMIT_DEFAULT,
    KLINE_LIMIT_MAX,
    SymbolTape,
    kline_weight,
)
from slt.errors import ExchangeRejected

log = logging.getLogger(__name__)

NONE, USER_STREAM, SIGNED = "NONE", "USER_STREAM", "SIGNED"


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))  # as Binance sends it: no spaces


def _json(value: Any, status: int = 200) -> web.Response:
    return web.json_response(value, status=status, dumps=_compact)


@dataclass
class Call:
    """One request as the handlers see it: merged parameters (the query wins over the body),
    and the account when the endpoint needs a key."""

    params: dict[str, str]
    account: ApiAccount | None = None


@dataclass
class LocalExchange:
    """The exchange's state: the replayed market, the clocks, the accounts' balances."""

    tapes: dict[str, SymbolTape]
    clock: ReplayClock
    auth: Authenticator
    limits: RateLimits = field(default_factory=RateLimits)
    balance: float = 10_000.0
    wall: Callable[[], int] = wall_ms
    opened_ms: int = 0  # when the accounts were funded: their balances' update time

    def __post_init__(self) -> None:
        if not self.opened_ms:
            self.opened_ms = self.wall()

    def tape(self, params: dict[str, str]) -> SymbolTape:
        symbol = params.get("symbol")
        if not symbol:
            raise codes.mandatory("symbol")
        found = self.tapes.get(symbol.upper()) if symbol.isalnum() else None
        if found is None:
            raise codes.bad_symbol()
        return found

    def wire_now(self) -> int:
        return self.clock.to_wire(self.clock.history_now())


Handler = Callable[[LocalExchange, Call], Awaitable[Any]]
Weight = int | Callable[[dict[str, str]], int]


@dataclass(frozen=True)
class Route:
    handler: Handler
    weight: Weight
    security: str = NONE


def _int(params: dict[str, str], name: str, default: int | None = None) -> int | None:
    text = params.get(name)
    if text is None or text == "":
        return default
    if not text.lstrip("-").isdigit() or len(text) > 20:
        raise codes.illegal_chars(name, "^[0-9]{1,20}$")
    return int(text)


def _limit(params: dict[str, str], default: int, most: int) -> int:
    limit = _int(params, "limit", default)
    assert limit is not None
    if limit < 1 or limit > most:
        raise codes.invalid_value("limit")
    return limit


# -- handlers -----------------------------------------------------------------------------


async def ping(ex: LocalExchange, call: Call) -> Any:
    return {}


async def server_time(ex: LocalExchange, call: Call) -> Any:
    return {"serverTime": ex.wall()}


async def exchange_info(ex: LocalExchange, call: Call) -> Any:
    return answers.exchange_info(list(ex.tapes.values()), ex.wall(), ex.limits.weight_limit)


async def klines(ex: LocalExchange, call: Call) -> Any:
    tape = ex.tape(call.params)
    interval = call.params.get("interval")
    if not interval:
        raise codes.mandatory("interval")
    length = tape.interval_ms(interval)
    limit = _limit(call.params, KLINE_LIMIT_DEFAULT, KLINE_LIMIT_MAX)
    start, end = _int(call.params, "startTime"), _int(call.params, "endTime")
    shift = ex.clock.shift_ms
    rows = tape.klines(
        interval, ex.clock.history_now(), None if start is None else start - shift,
        None if end is None else end - shift, limit,
    )  # fmt: skip
    return [answers.kline_row(tape, r, length, shift) for r in rows]


async def premium_index(ex: LocalExchange, call: Call) -> Any:
    now, shift = ex.clock.history_now(), ex.clock.shift_ms
    if call.params.get("symbol"):
        return answers.premium_index(ex.tape(call.params), now, shift)
    return [answers.premium_index(t, now, shift) for t in ex.tapes.values()]


async def funding_rate(ex: LocalExchange, call: Call) -> Any:
    """Settled fundings only; no times given: the newest ``limit`` rows (default 100)."""
    tape = ex.tape(call.params)
    limit = _limit(call.params, 100, 1000)
    start, end = _int(call.params, "startTime"), _int(call.params, "endTime")
    shift = ex.clock.shift_ms
    times, rates = tape.funding_rows(ex.clock.history_now())
    rows = [
        (t, r)
        for t, r in zip(times.tolist(), rates.tolist(), strict=True)
        if (start is None or t + shift >= start) and (end is None or t + shift <= end)
    ]
    rows = rows[:limit] if start is not None else rows[-limit:]
    return [answers.funding_row(tape, t, r, shift) for t, r in rows]


async def leverage_bracket(ex: LocalExchange, call: Call) -> Any:
    if call.params.get("symbol"):
        return answers.leverage_bracket(ex.tape(call.params))
    return [answers.leverage_bracket(t) for t in ex.tapes.values()]


async def balance(ex: LocalExchange, call: Call) -> Any:
    """The account's USDT balance. Orders are not matched yet, so it is the starting
    balance with nothing in use."""
    amount = f"{ex.balance:.8f}"
    return [
        {
            "accountAlias": "SgsR", "asset": "USDT", "balance": amount,
            "crossWalletBalance": amount, "crossUnPnl": "0.00000000",
            "availableBalance": amount, "maxWithdrawAmount": amount, "marginAvailable": True,
            "updateTime": ex.opened_ms,
        }
    ]  # fmt: skip


async def account_v3(ex: LocalExchange, call: Call) -> Any:
    """The account with no positions and no margin in use (orders are not matched yet)."""
    amount, zero = f"{ex.balance:.8f}", "0.00000000"
    asset = {
        "asset": "USDT", "walletBalance": amount, "unrealizedProfit": zero,
        "marginBalance": amount, "maintMargin": zero, "initialMargin": zero,
        "positionInitialMargin": zero, "openOrderInitialMargin": zero,
        "crossWalletBalance": amount, "crossUnPnl": zero, "availableBalance": amount,
        "maxWithdrawAmount": amount, "updateTime": ex.opened_ms,
    }  # fmt: skip
    return {
        "totalInitialMargin": zero, "totalMaintMargin": zero, "totalWalletBalance": amount,
        "totalUnrealizedProfit": zero, "totalMarginBalance": amount,
        "totalPositionInitialMargin": zero, "totalOpenOrderInitialMargin": zero,
        "totalCrossWalletBalance": amount, "totalCrossUnPnl": zero, "availableBalance": amount,
        "maxWithdrawAmount": amount, "assets": [asset], "positions": [],
    }  # fmt: skip


async def account_v2(ex: LocalExchange, call: Call) -> Any:
    body = await account_v3(ex, call)
    body["assets"][0] |= {"marginAvailable": True}
    return {
        "feeTier": 0, "feeBurn": False, "canTrade": True, "canDeposit": True,
        "canWithdraw": True, "updateTime": 0, "multiAssetsMargin": False, "tradeGroupId": -1,
    } | body  # fmt: skip


ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/fapi/v1/ping"): Route(ping, 1),
    ("GET", "/fapi/v1/time"): Route(server_time, 1),
    ("GET", "/fapi/v1/exchangeInfo"): Route(exchange_info, 1),
    ("GET", "/fapi/v1/klines"): Route(
        klines,
        lambda p: kline_weight(
            int(p["limit"]) if p.get("limit", "").isdigit() else KLINE_LIMIT_DEFAULT
        ),
    ),
    ("GET", "/fapi/v1/premiumIndex"): Route(premium_index, lambda p: 1 if "symbol" in p else 10),
    ("GET", "/fapi/v1/fundingRate"): Route(funding_rate, 1),
    ("GET", "/fapi/v1/leverageBracket"): Route(leverage_bracket, 1, SIGNED),
    ("GET", "/fapi/v2/balance"): Route(balance, 5, SIGNED),
    ("GET", "/fapi/v3/balance"): Route(balance, 5, SIGNED),
    ("GET", "/fapi/v2/account"): Route(account_v2, 5, SIGNED),
    ("GET", "/fapi/v3/account"): Route(account_v3, 5, SIGNED),
}


# -- dispatch -----------------------------------------------------------------------------


def _pairs(raw: str, source: str) -> dict[str, str]:
    found: dict[str, str] = {}
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=bool(raw))
    except ValueError as exc:
        raise codes.illegal_chars(source, "name=value&...") from exc
    for name, value in pairs:
        if name in found:
            raise codes.duplicate_param(name)
        found[name] = value
    return found


async def _dispatch(ex: LocalExchange, request: web.Request) -> web.StreamResponse:
    route = ROUTES.get((request.method, request.path))
    if route is None:
        allowed = [method for method, path in ROUTES if path == request.path]
        if allowed:
            raise web.HTTPMethodNotAllowed(request.method, allowed)
        raise web.HTTPNotFound()
    raw_query = request.rel_url.raw_query_string
    raw_body = ""
    if request.can_read_body:
        try:
            raw_body = (await request.read()).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise codes.illegal_chars("body", "UTF-8 name=value&...") from exc
    params = _pairs(raw_body, "body") | _pairs(raw_query, "query")  # the query wins
    weight = route.weight(params) if callable(route.weight) else route.weight
    ip = request.remote or "?"
    ex.limits.charge(ip, weight, ex.wall())
    call = Call(params)
    if route.security != NONE:
        call.account = ex.auth.account(request.headers.get("X-MBX-APIKEY"))
        if route.security == SIGNED:
            ex.auth.verify(call.account, raw_query, raw_body, params)
    return _json(await route.handler(ex, call))


def _error(exc: ExchangeRejected) -> web.Response:
    response = _json({"code": exc.code, "msg": exc.msg}, exc.status)
    if exc.retry_after_s is not None:
        response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


def build_app(ex: LocalExchange) -> web.Application:
    """The aiohttp application serving ``ex``: every answer carries the IP's used weight."""

    @web.middleware
    async def binance_answers(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            response = await handler(request)
        except ExchangeRejected as exc:
            response = _error(exc)
        except web.HTTPException:
            raise
        except Exception:  # a bug: Binance's unknown-error answer, the server keeps serving
            log.exception("local exchange: %s %s failed", request.method, request.path)
            response = _error(codes.unknown())
        if request.path.startswith("/fapi/"):
            used = ex.limits.used_weight(request.remote or "?", ex.wall())
            response.headers["X-MBX-USED-WEIGHT-1M"] = str(used)
        return response

    app = web.Application(middlewares=[binance_answers])

    async def rest(request: web.Request) -> web.StreamResponse:
        return await _dispatch(ex, request)

    app.router.add_route("*", "/fapi/{tail:.*}", rest)
    return app
