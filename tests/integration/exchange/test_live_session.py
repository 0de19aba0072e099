"""Start-up reconciliation of a trading session against the local exchange (issue 14 item 5):
a position the bot did not open stops the start with a message naming it, unless ``adopt``,
when the engine takes it over and puts its stop on the exchange before anything else."""

from __future__ import annotations

import asyncio

import pytest

from slt.adapters.exchange.binance_rest import BinanceRest
from slt.adapters.exchange.local.market import SymbolTape
from slt.adapters.exchange.local.tapes import load_tapes
from slt.domain.clock import parse_utc_ms
from slt.domain.strategies.registry import builtin_strategy
from slt.engine.config import EngineConfig
from slt.runtime.live_session import LiveSession, RefusedToTrade
from tests.conftest import CATMAN_BTC_5M
from tests.support.local_exchange import ACCOUNT, Running, real_store, serving

START = parse_utc_ms("2024-01-01")


@pytest.fixture(scope="module")
def tapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SymbolTape]:
    store = real_store(tmp_path_factory.mktemp("session-store"), [CATMAN_BTC_5M])
    return load_tapes(store, ["BTCUSDT"], START, None)


def session(rest: BinanceRest, ex: Running, adopt: bool) -> LiveSession:
    return LiveSession(rest, ex.url.replace("http://", "ws://"), ["BTCUSDT"], "5m",
                       builtin_strategy("ema_cross"), EngineConfig(), adopt=adopt)  # fmt: skip


async def hand_made_position(rest: BinanceRest) -> None:
    order = {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.020",
             "newClientOrderId": "by-hand-1"}  # fmt: skip
    await rest.submit("/fapi/v1/order", order)


def test_a_position_it_did_not_open_stops_the_start(tapes: dict[str, SymbolTape]) -> None:
    async def scenario(ex: Running) -> str:
        async with BinanceRest(ex.url, ACCOUNT.key, ACCOUNT.secret) as rest:
            await hand_made_position(rest)
            with pytest.raises(RefusedToTrade) as refused:
                await session(rest, ex, adopt=False).start()
            return str(refused.value)

    with serving(tapes, START) as ex:
        message = asyncio.run(scenario(ex))
        desk = ex.exchange.accounts[ACCOUNT.key].desk("BTCUSDT")
        assert not desk.open_algos() and not desk.open_orders()  # nothing was sent
    assert "BTCUSDT short 0.02" in message and "--adopt" in message


def test_with_adopt_the_position_is_taken_over_and_protected(
    tapes: dict[str, SymbolTape],
) -> None:
    async def scenario(ex: Running) -> LiveSession:
        async with BinanceRest(ex.url, ACCOUNT.key, ACCOUNT.secret) as rest:
            await hand_made_position(rest)
            s = session(rest, ex, adopt=True)
            await s.start()
            assert s.gateway is not None
            await s.gateway.drain()
            await s.gateway.close()
            return s

    with serving(tapes, START) as ex:
        s = asyncio.run(scenario(ex))
        desk = ex.exchange.accounts[ACCOUNT.key].desk("BTCUSDT")
        stops = desk.open_algos()
        # Stops that guard the short (the engine's emergency stop and its regular one; it
        # cancels the older once the stream reports the newer accepted, and here no stream runs).
        assert stops and all(a.side == "BUY" and a.close_position for a in stops)
        assert desk.amt == pytest.approx(-0.02)  # adopted, not flattened
        targets = desk.open_orders()  # and its target: reduce-only, never a flattening order
        assert all(o.side == "BUY" and o.reduce_only and o.type == "LIMIT" for o in targets)
    assert s.state is not None
    assert int(s.state.book.positions[0]["side"]) == -1
    assert s.counts.commands["PlaceOrder"] == len(stops) + len(targets)
