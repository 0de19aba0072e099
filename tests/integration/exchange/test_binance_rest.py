"""The adapter's REST client and rate-limit governor against the local exchange, its limits
and its faults: paced under the announced weight, no 418 after a 429, nothing sent during a
ban, a lost answer never resent, the clock measured again after a skew.

Server and client share one hand-moved wall clock; the client's sleep moves it, so minutes of
waiting take no time and every wait is exact."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

import pytest

from slt.adapters.exchange.binance_rest import BinanceRest, OutcomeUnknown
from slt.adapters.exchange.governor import Governor
from slt.adapters.exchange.local.limits import RateLimits
from slt.adapters.exchange.local.market import SymbolTape
from slt.adapters.exchange.local.tapes import load_tapes
from slt.domain.clock import parse_utc_ms
from slt.errors import ExchangeRejected
from tests.conftest import CATMAN_BTC_5M
from tests.support.binance_calls import Wall
from tests.support.local_exchange import ACCOUNT, Running, real_store, serving

START = parse_utc_ms("2024-01-01")
WALL_13H = parse_utc_ms("2026-12-07") + 13 * 3_600_000


@pytest.fixture(scope="module")
def tapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SymbolTape]:
    store = real_store(tmp_path_factory.mktemp("rest-store"), [CATMAN_BTC_5M])
    return load_tapes(store, ["BTCUSDT"], START, None)


class Sleeper:
    """The client's sleep: moves the shared wall clock and remembers each wait."""

    def __init__(self, wall: Wall) -> None:
        self.wall, self.waits = wall, []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.wall.advance(round(seconds * 1000))
        await asyncio.sleep(0)


def client(ex: Running, wall: Wall, sleeper: Sleeper, **kw: Any) -> BinanceRest:
    return BinanceRest(ex.url, ACCOUNT.key, ACCOUNT.secret, wall=wall, sleep=sleeper, **kw)


def inject(ex: Running, **fault: Any) -> None:
    body = json.dumps(fault).encode()
    request = urllib.request.Request(f"{ex.url}/_sim/faults", data=body, method="POST")
    urllib.request.urlopen(request, timeout=10).close()


def test_the_governor_paces_under_the_announced_weight_and_never_hears_429(
    tapes: dict[str, SymbolTape],
) -> None:
    wall = Wall(WALL_13H + 1_000)  # early in a minute
    sleeper = Sleeper(wall)

    async def scenario(ex: Running) -> Governor:
        async with client(ex, wall, sleeper) as rest:
            await rest.load_limits()  # the server announces 40 per minute
            for _ in range(20):  # 20 x weight 5 = 100: three minutes of budget
                await rest.signed("GET", "/fapi/v3/balance", weight=5)
            return rest.governor

    with serving(tapes, START, wall=wall, limits=RateLimits(weight_limit=40)) as ex:
        g = asyncio.run(scenario(ex))
    assert g.weight_limit == 40 and g.limited == 0 and g.banned == 0
    # 36 of 40 per minute (10 % kept for orders that reduce risk): at most 7 balances a minute.
    assert len(sleeper.waits) == 2 and all(w > 50 for w in sleeper.waits)
    assert g.requests == 21 and g.weight_sent == 101


def test_after_a_429_it_waits_out_retry_after_and_is_never_banned(
    tapes: dict[str, SymbolTape],
) -> None:
    wall = Wall(WALL_13H + 1_000)
    sleeper = Sleeper(wall)

    async def scenario(ex: Running) -> Governor:
        # A client that did not read the limits: it believes in Binance's 2,400.
        async with client(ex, wall, sleeper) as rest:
            for _ in range(12):
                await rest.signed("GET", "/fapi/v3/balance", weight=5)
            return rest.governor

    with serving(tapes, START, wall=wall, limits=RateLimits(weight_limit=40)) as ex:
        g = asyncio.run(scenario(ex))
    assert g.limited == 1 and g.banned == 0  # one 429, then it held until Retry-After
    assert len(sleeper.waits) == 1 and sleeper.waits[0] >= 59  # the rest of that minute


def test_a_ban_stops_all_rest_until_it_ends(tapes: dict[str, SymbolTape]) -> None:
    wall = Wall(WALL_13H)
    sleeper = Sleeper(wall)

    async def scenario(ex: Running) -> tuple[int, int]:
        async with client(ex, wall, sleeper) as rest:
            inject(ex, kind="rate_limit", status=418, count=1)
            banned_at = wall.now
            await rest.signed("GET", "/fapi/v3/balance", weight=5)  # 418, held, then 200
            return banned_at, ex.exchange.last_request_wall_ms

    with serving(tapes, START, wall=wall, control=True) as ex:
        banned_at, last = asyncio.run(scenario(ex))
    assert sleeper.waits == [120.0]  # the local exchange's first ban: 2 minutes
    assert last >= banned_at + 120_000  # nothing reached the server before the ban ended


def test_a_submission_whose_answer_is_lost_is_not_resent(tapes: dict[str, SymbolTape]) -> None:
    wall = Wall(WALL_13H)
    sleeper = Sleeper(wall)
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.010",
             "newClientOrderId": "slt-BTCUSDT-1"}  # fmt: skip

    async def scenario(ex: Running) -> tuple[str, Any]:
        async with client(ex, wall, sleeper) as rest:
            inject(ex, kind="unknown_outcome", status=503)
            with pytest.raises(OutcomeUnknown) as lost:
                await rest.submit("/fapi/v1/order", order)
            found = await rest.signed("GET", "/fapi/v1/order", {
                "symbol": "BTCUSDT", "origClientOrderId": "slt-BTCUSDT-1"})  # fmt: skip
            return str(lost.value), found.body

    with serving(tapes, START, wall=wall, control=True) as ex:
        message, found = asyncio.run(scenario(ex))
        orders = ex.exchange.accounts[ACCOUNT.key].desk("BTCUSDT").orders
    assert "outcome unknown" in message
    assert found["status"] == "FILLED" and len(orders) == 1  # it landed, exactly once


def test_a_skewed_server_clock_is_measured_again_and_the_request_goes_through(
    tapes: dict[str, SymbolTape],
) -> None:
    wall = Wall(WALL_13H)
    sleeper = Sleeper(wall)

    async def scenario(ex: Running) -> tuple[int, Any]:
        async with client(ex, wall, sleeper) as rest:
            await rest.sync_clock()
            assert rest.offset_ms == 0
            inject(ex, kind="clock_skew", ms=30_000)
            answer = await rest.signed("GET", "/fapi/v3/balance", weight=5)  # -1021, resync
            return rest.offset_ms, answer.body

    with serving(tapes, START, wall=wall, control=True) as ex:
        offset, body = asyncio.run(scenario(ex))
    assert offset == 30_000 and body[0]["asset"] == "USDT"


def test_a_refusal_is_raised_with_binances_code_and_the_secret_is_nowhere(
    tapes: dict[str, SymbolTape],
) -> None:
    wall = Wall(WALL_13H)

    async def scenario(ex: Running) -> tuple[ExchangeRejected, str]:
        async with client(ex, wall, Sleeper(wall)) as rest:
            with pytest.raises(ExchangeRejected) as refused:
                await rest.submit(
                    "/fapi/v1/order",
                    {"symbol": "BTCUSDT", "side": "BUY", "type": "STOP_MARKET", "quantity": "1"},
                )
            return refused.value, repr(rest)

    with serving(tapes, START, wall=wall) as ex:
        refused, shown = asyncio.run(scenario(ex))
    assert refused.code == -4120 and refused.status == 400
    assert ACCOUNT.secret not in shown and ACCOUNT.secret not in str(refused)
