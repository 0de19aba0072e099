"""The local exchange's HTTP server (aiohttp): Binance's REST paths, parameters, signing, rate
limits and error answers on 127.0.0.1. WebSocket streams share the port (same application).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from slt.adapters.exchange.local import answers, codes, sim_control, state_file
from slt.adapters.exchange.local import trading_routes as trade
from slt.adapters.exchange.local.account import Account, Ids
from slt.adapters.exchange.local.auth import ApiAccount, Authenticator
from slt.adapters.exchange.local.clock import ReplayClock, wall_ms
from slt.adapters.exchange.local.faults import TIMEOUT_MSG, FaultState, Scheduled
from slt.adapters.exchange.local.limits import RateLimits
from slt.adapters.exchange.local.listen_keys import LISTEN_KEY_ROUTES
from slt.adapters.exchange.local.market import (
    KLINE_LIMIT_DEFAULT,
    KLINE_LIMIT_MAX,
    SymbolTape,
    kline_weight,
)
from slt.adapters.exchange.local.stepper import Stepper
from slt.adapters.exchange.local.stream_routes import install as install_streams
from slt.adapters.exchange.local.streams import StreamHub, StreamSettings
from slt.engine.ports import SymbolVenueFactory
from slt.errors import ConfigError, ExchangeRejected

log = logging.getLogger(__name__)

NONE, USER_STREAM, SIGNED = "NONE", "USER_STREAM", "SIGNED"
BAD_GATEWAY = "<html><head><title>502 Bad Gateway</title></head><body>502 Bad Gateway</body></html>"
SAVE_EVERY_MS = 2_000


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
    accounts: dict[str, Account] = field(default_factory=dict)
    stepper: Stepper | None = None
    last_request_wall_ms: int = 0  # the latest REST request (``--speed max`` waits for quiet)
    last_step_wall_ms: int = 0  # ``--speed max``: when the market last moved
    settle_ms: int = 100  # ``--speed max``: how long clients must be quiet before it moves
    ids: Ids = field(default_factory=Ids)
    venues: SymbolVenueFactory = field(default=None, repr=False)  # type: ignore[assignment]
    faults: FaultState = field(default_factory=FaultState)
    control: bool = False  # ``--control``: the ``/_sim/`` API answers
    fault_plan: list[Scheduled] = field(default_factory=list)  # ``--faults FILE``
    restart: Callable[[float], Awaitable[None]] | None = None  # set by ``open_site``
    state_dir: Path | None = None  # ``--state``: where the state is saved every few seconds
    stream_settings: StreamSettings = field(default_factory=StreamSettings)
    hub: StreamHub = field(init=False, repr=False)  # the WebSocket streams (streams.py)

    def __post_init__(self) -> None:
        if not self.opened_ms:
            self.opened_ms = self.wall()
        self.hub = StreamHub(self, self.stream_settings)
        if self.venues is None:
            raise ConfigError(
                "the local exchange needs the simulated exchange that fills its orders "
                "(venues=slt.engine.symbol_venue.symbol_venue)"
            )
        for key in self.auth.api_keys():
            self.accounts[key] = Account(
                key, self.tapes, self.balance, self.ids, self.clock.shift_ms, self.venues
            )
        self.stepper = Stepper(self.tapes, self.clock.history_now(), list(self.accounts.values()))

    def catch_up(self) -> None:
        """Bring every account to the replayed moment: candles open and close, orders fill,
        funding is paid; the events go to the user-data streams."""
        assert self.stepper is not None
        self.stepper.advance_to(self.clock.history_now(), self.publish_user)

    def publish_user(self, api_key: str, event: dict[str, Any]) -> None:
        self.hub.publish_user(api_key, event)

    def publish_all(self, api_key: str, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.publish_user(api_key, event)

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
    orders: int = 0  # counted against the account's order limits (10 s, 1 min)


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
    return {"serverTime": ex.wall() + ex.faults.skew_ms}


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


def _one_or_all(params: dict[str, str]) -> int:
    """Open-order lists: 1 for one symbol, 40 for all."""
    return 1 if "symbol" in params else 40


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
    ("GET", "/fapi/v2/balance"): Route(trade.balance, 5, SIGNED),
    ("GET", "/fapi/v3/balance"): Route(trade.balance, 5, SIGNED),
    ("GET", "/fapi/v2/account"): Route(trade.account_v2, 5, SIGNED),
    ("GET", "/fapi/v3/account"): Route(trade.account_v3, 5, SIGNED),
    ("POST", "/fapi/v1/order"): Route(trade.new_order, 0, SIGNED, orders=1),
    ("GET", "/fapi/v1/order"): Route(trade.query_order, 1, SIGNED),
    ("DELETE", "/fapi/v1/order"): Route(trade.cancel_order, 1, SIGNED),
    ("GET", "/fapi/v1/openOrder"): Route(trade.open_order, 1, SIGNED),
    ("GET", "/fapi/v1/openOrders"): Route(trade.open_orders, _one_or_all, SIGNED),
    ("GET", "/fapi/v1/allOrders"): Route(trade.all_orders, 5, SIGNED),
    ("DELETE", "/fapi/v1/allOpenOrders"): Route(trade.cancel_all, 1, SIGNED),
    ("POST", "/fapi/v1/batchOrders"): Route(trade.batch_orders, 5, SIGNED, orders=5),
    ("GET", "/fapi/v1/userTrades"): Route(trade.user_trades, 5, SIGNED),
    ("GET", "/fapi/v1/income"): Route(trade.income, 30, SIGNED),
    ("POST", "/fapi/v1/algoOrder"): Route(trade.new_algo_order, 0, SIGNED, orders=1),
    ("GET", "/fapi/v1/algoOrder"): Route(trade.query_algo_order, 1, SIGNED),
    ("DELETE", "/fapi/v1/algoOrder"): Route(trade.cancel_algo_order, 1, SIGNED),
    ("GET", "/fapi/v1/openAlgoOrders"): Route(trade.open_algo_orders, _one_or_all, SIGNED),
    ("GET", "/fapi/v1/allAlgoOrders"): Route(trade.all_algo_orders, 5, SIGNED),
    ("DELETE", "/fapi/v1/algoOpenOrders"): Route(trade.cancel_algo_open_orders, 1, SIGNED),
    ("GET", "/fapi/v2/positionRisk"): Route(trade.position_risk_v2, 5, SIGNED),
    ("GET", "/fapi/v3/positionRisk"): Route(trade.position_risk_v3, 5, SIGNED),
    ("GET", "/fapi/v1/symbolConfig"): Route(trade.symbol_config, 5, SIGNED),
    ("GET", "/fapi/v1/accountConfig"): Route(trade.account_config, 5, SIGNED),
    ("POST", "/fapi/v1/leverage"): Route(trade.change_leverage, 1, SIGNED),
    ("POST", "/fapi/v1/marginType"): Route(trade.change_margin_type, 1, SIGNED),
    ("GET", "/fapi/v1/positionSide/dual"): Route(trade.position_mode, 30, SIGNED),
    ("POST", "/fapi/v1/positionSide/dual"): Route(trade.change_position_mode, 1, SIGNED),
    ("GET", "/fapi/v1/commissionRate"): Route(trade.commission_rate, 20, SIGNED),
}
ROUTES.update({key: Route(*spec) for key, spec in LISTEN_KEY_ROUTES.items()})


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
    now = ex.wall()
    ex.last_request_wall_ms = now
    forced = ex.faults.forced_limit(ex.limits.weight_limit, now)
    if forced is not None:
        raise forced
    ex.limits.charge(ip, weight, now)
    call = Call(params)
    if route.security != NONE:
        call.account = ex.auth.account(request.headers.get("X-MBX-APIKEY"))
        if route.security == SIGNED:
            ex.auth.verify(call.account, raw_query, raw_body, params)
    counts = None
    if route.orders and call.account is not None:
        counts = ex.limits.charge_order(call.account.key, now, route.orders)
    ex.catch_up()
    response = _json(await route.handler(ex, call))
    if route.orders:
        lost = ex.faults.take_unknown_outcome()
        if lost is not None:  # the order stands; the client never learns it
            await asyncio.sleep(lost.delay_ms / 1000)
            if lost.status == 502:
                return web.Response(status=502, text=BAD_GATEWAY, content_type="text/html")
            raise ExchangeRejected(-1007, TIMEOUT_MSG, 503)
    if counts is not None:
        response.headers["X-MBX-ORDER-COUNT-10S"] = str(counts[0])
        response.headers["X-MBX-ORDER-COUNT-1M"] = str(counts[1])
    return response


def _error(exc: ExchangeRejected) -> web.Response:
    response = _json({"code": exc.code, "msg": exc.msg}, exc.status)
    if exc.retry_after_s is not None:
        response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


def _market_loop(
    ex: LocalExchange,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A background task that keeps the accounts at the replayed moment while no request
    comes: candles close, stops fill and funding is paid on time. At ``--speed max`` it moves
    the market itself, one boundary at a time."""

    async def run() -> None:
        saved = ex.wall()
        while True:
            try:
                wait = _max_speed_step(ex) if ex.clock.is_max else _timed_step(ex)
                if ex.state_dir is not None and ex.wall() - saved >= SAVE_EVERY_MS:
                    state_file.save(ex, ex.state_dir)
                    saved = ex.wall()
            except Exception:  # a bug: logged, and the market keeps moving
                log.exception("local exchange: the market step failed")
                wait = 0.2
            await asyncio.sleep(wait)

    async def context(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(run())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if ex.state_dir is not None:  # a clean stop keeps everything up to the last request
            state_file.save(ex, ex.state_dir)

    return context


def _timed_step(ex: LocalExchange) -> float:
    """Speed 1 or N: catch up with the clock; seconds until the next boundary is due."""
    if ex.clock.awaiting_client:
        if not ex.last_request_wall_ms and not ex.hub.last_activity_wall_ms:
            ex.clock.hold()
            return 0.05  # no client yet: the replay starts when the first one arrives
        ex.clock.awaiting_client = False
    ex.catch_up()
    assert ex.stepper is not None
    due = ex.stepper.next_due_ms()
    if due is None:
        return 0.2
    ahead_ms = (due - ex.clock.history_now()) / ex.clock.speed
    return min(max(ahead_ms / 1000, 0.002), 0.2)


def _max_speed_step(ex: LocalExchange) -> float:
    """``--speed max``: from the first client's first request or connection on, once clients
    have been quiet for ``settle_ms`` (no request, no WebSocket message) since the last step,
    move the market to the next boundary (a candle closes and the next opens), so a bot that
    answers a closed candle with a market order is filled at the next candle's open, as the
    backtest assumes."""
    assert ex.stepper is not None
    if not ex.last_request_wall_ms and not ex.hub.last_activity_wall_ms:
        return 0.05  # no client yet: the replay starts when the first one arrives
    now = ex.wall()
    busy = max(ex.last_request_wall_ms, ex.hub.last_activity_wall_ms, ex.last_step_wall_ms)
    quiet_for = now - busy
    if quiet_for < ex.settle_ms:
        return (ex.settle_ms - quiet_for) / 1000
    due = ex.stepper.next_due_ms()
    if due is None:
        return 0.2  # the replay has ended
    ex.clock.move_to(due)
    ex.catch_up()
    ex.hub.wake()
    ex.last_step_wall_ms = ex.wall()
    return ex.settle_ms / 1000


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
    app.cleanup_ctx.append(_market_loop(ex))
    app.add_routes(sim_control.routes(ex))
    if ex.fault_plan:
        app.cleanup_ctx.append(sim_control.scheduler(ex, ex.fault_plan))
    install_streams(app, ex.hub)  # WebSocket routes, the streams' timer, closing on shutdown

    async def rest(request: web.Request) -> web.StreamResponse:
        return await _dispatch(ex, request)

    app.router.add_route("*", "/fapi/{tail:.*}", rest)
    return app


async def open_site(ex: LocalExchange, runner: web.AppRunner, host: str, port: int) -> int:
    """Listen on ``host:port`` (0: a free port); returns the port. The exchange can then be
    restarted by the ``restart`` fault: every connection is cut, the port refuses connections
    for the given seconds, then it listens again with all state kept."""
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = int(runner.addresses[-1][1]) if port == 0 else port

    async def restart(seconds: float) -> None:
        nonlocal site
        await ex.hub.drop_connections("all")
        await site.stop()
        server = runner.server
        if server is not None:
            for connection in server.connections:
                connection.force_close()
        await asyncio.sleep(seconds)
        site = web.TCPSite(runner, host, bound)
        await site.start()

    ex.restart = restart
    return bound
