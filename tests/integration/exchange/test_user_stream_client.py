"""The adapter's user-data stream client against the local exchange and its faults: a dropped
connection and an expired listenKey (its ``E`` a string) are both survived, and a fill made
while the stream was down reaches the engine exactly once, through the resync."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from slt.adapters.exchange.account_state import AccountState
from slt.adapters.exchange.binance_rest import BinanceRest
from slt.adapters.exchange.local.market import SymbolTape
from slt.adapters.exchange.local.tapes import load_tapes
from slt.adapters.exchange.user_stream import UserStream
from slt.domain.clock import parse_utc_ms
from slt.engine.messages import Event, OrderFilled
from tests.conftest import CATMAN_BTC_5M
from tests.support.local_exchange import ACCOUNT, Running, real_store, serving

START = parse_utc_ms("2024-01-01")


@pytest.fixture(scope="module")
def tapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SymbolTape]:
    store = real_store(tmp_path_factory.mktemp("user-stream-client-store"), [CATMAN_BTC_5M])
    return load_tapes(store, ["BTCUSDT"], START, None)


async def until(condition: Callable[[], bool], what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def test_drops_and_expiries_are_survived_and_every_fill_arrives_once(
    tapes: dict[str, SymbolTape],
) -> None:
    engine: list[Event] = []

    def filled(client: str) -> Callable[[], bool]:
        return lambda: any(isinstance(e, OrderFilled) and e.client_order_id == client
                           for e in engine)  # fmt: skip

    async def scenario(ex: Running) -> tuple[UserStream, AccountState, Any, Any]:
        ws_base = ex.url.replace("http://", "ws://")
        async with BinanceRest(ex.url, ACCOUNT.key, ACCOUNT.secret) as rest:
            state = AccountState()
            stream = UserStream(rest, ws_base, state, ["BTCUSDT"], engine.extend,
                                backoff_s=(0.5, 0.5))  # fmt: skip
            stop = asyncio.Event()
            task = asyncio.create_task(stream.run(stop))
            await until(stream.connected.is_set, "the first connection")

            async def buy(client: str) -> None:
                await rest.submit("/fapi/v1/order", {"symbol": "BTCUSDT", "side": "BUY",
                                  "type": "MARKET", "quantity": "0.010",
                                  "newClientOrderId": client})  # fmt: skip

            async def fault(**body: Any) -> None:
                async with rest._http().post(f"{ex.url}/_sim/faults", json=body) as answer:
                    assert answer.status == 200

            await buy("slt-1")
            await until(filled("slt-1"), "the first fill, by stream")
            await fault(kind="drop_connections", scope="private")
            await until(lambda: not stream.connected.is_set(), "the drop to be noticed")
            await buy("slt-2")  # while the stream is down: its events go nowhere
            await until(filled("slt-2"), "the missed fill, by the resync")
            await fault(kind="expire_listen_keys", e_as_string=True)
            await until(lambda: stream.renewals == 1 and stream.connected.is_set(), "renewal")
            await buy("slt-3")
            await until(filled("slt-3"), "the third fill, by stream")
            trades = (await rest.signed("GET", "/fapi/v1/userTrades", {"symbol": "BTCUSDT"})).body
            positions = (await rest.signed("GET", "/fapi/v3/positionRisk")).body
            stop.set()
            await asyncio.wait_for(task, 5)
            return stream, state, trades, positions

    with serving(tapes, START, control=True) as ex:
        stream, state, trades, positions = asyncio.run(asyncio.wait_for(scenario(ex), 60))
    fills = [e for e in engine if isinstance(e, OrderFilled)]
    assert sorted(f.trade_id for f in fills) == sorted(t["id"] for t in trades)  # once each
    assert [f.client_order_id for f in fills] == ["slt-1", "slt-2", "slt-3"]
    assert stream.connections == 3 and stream.resyncs == 2 and stream.renewals == 1
    lag = stream.lag_report()  # speed 1: events carry the wall clock; on loopback, prompt
    assert lag["events"] >= 8 and 0 <= lag["median"] < 500
    position = state.position("BTCUSDT")
    assert position is not None and position.amount == pytest.approx(0.030)
    assert float(positions[0]["positionAmt"]) == position.amount
