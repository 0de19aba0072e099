"""The account cache fed by the local exchange's real user-data stream, with the stream's
faults: duplicated and reordered events are applied once, the fill of a triggered stop reaches
the engine under the stop's own client id, and the cache ends equal to what REST says."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import numpy as np
import pytest

from slt.adapters.exchange.account_state import AccountState
from slt.adapters.exchange.local.market import SymbolTape
from slt.adapters.exchange.local.tapes import load_tapes
from slt.domain.clock import parse_utc_ms
from slt.engine.messages import OrderAccepted, OrderFilled
from tests.conftest import CATMAN, CATMAN_BTC_5M
from tests.integration.exchange.test_local_exchange_user_stream import events_until, private
from tests.support.binance_calls import Wall, call, ok
from tests.support.local_exchange import Running, real_store, serving

START = parse_utc_ms("2024-01-01")
WALL_13H = parse_utc_ms("2026-12-07") + 13 * 3_600_000
NOW = START + 13 * 3_600_000


@pytest.fixture(scope="module")
def tapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SymbolTape]:
    root = tmp_path_factory.mktemp("account-state-store")
    store = real_store(root, [CATMAN_BTC_5M, CATMAN / "BTC_USDT_USDT-8h-funding_rate.feather"])
    return load_tapes(store, ["BTCUSDT"], START, None)


def trade_and_stop(
    tapes: dict[str, SymbolTape], fault: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A market entry, a stop the market reaches within the hour, a leverage change: the raw
    user-data events, and what REST says at the end."""
    c = tapes["BTCUSDT"].candles
    i = int(np.searchsorted(c.open_time_ms, NOW, "right")) - 1
    trigger = round(float(c.open[i]) - 20.0, 1)
    j = i + int(np.argmax(c.low[i:] <= trigger))
    wall = Wall(WALL_13H)

    async def scenario(ex: Running) -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as session:
            ws = await private(ex, session)
            if fault:
                async with session.post(f"{ex.url}/_sim/faults", json=fault) as answer:
                    assert answer.status == 200
            for path, params in [
                ("/fapi/v1/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                    "quantity": "0.010", "newClientOrderId": "slt-BTC-1"}),
                ("/fapi/v1/algoOrder", {"algoType": "CONDITIONAL", "symbol": "BTCUSDT",
                                        "side": "SELL", "type": "STOP_MARKET",
                                        "closePosition": "true", "triggerPrice": f"{trigger}",
                                        "clientAlgoId": "slt-BTC-2"}),
                ("/fapi/v1/leverage", {"symbol": "BTCUSDT", "leverage": 7}),
            ]:  # fmt: skip
                answer = await asyncio.to_thread(call, ex.url, "POST", path, wall, **params)
                assert answer[0] == 200, answer
            wall.advance(int(c.open_time_ms[j]) + 300_000 - NOW)
            got = await events_until(ws, lambda g: False, seconds=2.5)
            await ws.close()
            return got

    with serving(tapes, START, wall=wall, control=True) as ex:
        events = asyncio.run(scenario(ex))
        rest = {
            "trades": ok(call(ex.url, "GET", "/fapi/v1/userTrades", wall, symbol="BTCUSDT")),
            "balance": ok(call(ex.url, "GET", "/fapi/v3/balance", wall)),
            "positions": ok(call(ex.url, "GET", "/fapi/v3/positionRisk", wall)),
            "algos": ok(call(ex.url, "GET", "/fapi/v1/openAlgoOrders", wall)),
        }
    return events, rest


@pytest.mark.parametrize(
    "fault",
    [None, {"kind": "user_events", "mode": "duplicate", "count": 1000},
     {"kind": "user_events", "mode": "reorder", "count": 1000, "delay_ms": 200}],
    ids=["clean", "every-event-twice", "every-event-reordered"],
)  # fmt: skip
def test_the_cache_applies_each_change_once_and_ends_equal_to_rest(
    tapes: dict[str, SymbolTape], fault: dict[str, Any] | None
) -> None:
    events, rest = trade_and_stop(tapes, fault)
    state = AccountState()
    engine = [e for event in events for e in state.apply(event)]
    fills = [e for e in engine if isinstance(e, OrderFilled)]
    # Every exchange trade reaches the engine exactly once, under the engine's own ids.
    assert sorted(f.trade_id for f in fills) == sorted(t["id"] for t in rest["trades"])
    assert [f.client_order_id for f in sorted(fills, key=lambda f: f.trade_id)] == [
        "slt-BTC-1", "slt-BTC-2"]  # fmt: skip
    by_id = {t["id"]: t for t in rest["trades"]}
    for f in fills:
        assert f.quantity == float(by_id[f.trade_id]["qty"])
        assert f.fee == pytest.approx(float(by_id[f.trade_id]["commission"]))
    accepted = [e.client_order_id for e in engine if isinstance(e, OrderAccepted)]
    assert sorted(accepted) == ["slt-BTC-1", "slt-BTC-2"]
    # The cache now says what REST says.
    assert rest["positions"] == [] and state.positions == {}
    assert rest["algos"] == [] and state.algos == {} and state.orders == {}
    assert state.wallet["USDT"] == pytest.approx(float(rest["balance"][0]["balance"]))
    assert state.leverage == {"BTCUSDT": 7}
    if fault and fault["mode"] == "duplicate":
        assert state.duplicates > 0  # the repeats arrived, and were recognised
    if fault and fault["mode"] == "reorder":
        # The stop's own order was heard of before the ALGO_UPDATE that names it: it waited.
        first_child = next(n for n, e in enumerate(events) if e["e"] == "ORDER_TRADE_UPDATE"
                           and e["o"]["ot"] == "STOP_MARKET")  # fmt: skip
        triggered = next(n for n, e in enumerate(events) if e["e"] == "ALGO_UPDATE"
                         and e["o"]["X"] == "TRIGGERED")  # fmt: skip
        assert first_child < triggered


def test_cache_reads_are_plain_dictionary_reads() -> None:
    state = AccountState()
    event = json.loads(
        '{"e":"ACCOUNT_UPDATE","E":1,"T":1,"a":{"m":"ORDER","B":[{"a":"USDT","wb":"100",'
        '"cw":"100","bc":"0"}],"P":[{"s":"BTCUSDT","pa":"0.010","ep":"42000","bep":"42000",'
        '"cr":"0","up":"1.5","mt":"cross","iw":"0","ps":"BOTH"}]}}'
    )
    state.apply(event)
    position = state.position("BTCUSDT")
    assert position is not None and position.amount == 0.010 and position.entry_price == 42_000
    older = json.loads(json.dumps(event))
    older["E"] = 0
    older["a"]["P"][0]["pa"] = "0.5"
    assert state.apply(older) == [] and state.position("BTCUSDT") is position  # late: ignored
