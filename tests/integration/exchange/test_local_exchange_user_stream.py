"""The user-data stream of a trading account at the local exchange: what a fill, a stop, a
leverage change and funding send on ``/private/ws``, in order, each event parsed by Binance's
official SDK models (strict pydantic types) without a validation error."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import numpy as np
import pytest

from slt.adapters.exchange.local.market import SymbolTape
from slt.adapters.exchange.local.tapes import load_tapes
from slt.domain.clock import parse_utc_ms
from tests.conftest import CATMAN, CATMAN_BTC_5M
from tests.support.binance_calls import SystemWall, Wall, call
from tests.support.local_exchange import ACCOUNT, Running, real_store, serving

START = parse_utc_ms("2024-01-01")
WALL_13H = parse_utc_ms("2026-12-07") + 13 * 3_600_000
NOW = START + 13 * 3_600_000


@pytest.fixture(scope="module")
def tapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SymbolTape]:
    root = tmp_path_factory.mktemp("user-stream-store")
    store = real_store(root, [CATMAN_BTC_5M, CATMAN / "BTC_USDT_USDT-8h-funding_rate.feather"])
    return load_tapes(store, ["BTCUSDT"], START, None)


def sdk_model(event: dict[str, Any]) -> Any:
    """The SDK's model of the event, validated (raises on a field of the wrong type)."""
    from binance_sdk_derivatives_trading_usds_futures.websocket_streams import models as m

    kind = {
        "ORDER_TRADE_UPDATE": m.OrderTradeUpdate, "ALGO_UPDATE": m.AlgoUpdate,
        "ACCOUNT_UPDATE": m.AccountUpdate, "TRADE_LITE": m.TradeLite,
        "ACCOUNT_CONFIG_UPDATE": m.AccountConfigUpdate,
    }[event["e"]]  # fmt: skip
    parsed = kind.from_dict(event)
    assert parsed is not None
    return parsed


async def events_until(
    ws: aiohttp.ClientWebSocketResponse, enough: Callable[[list[Any]], bool], seconds: float = 10
) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while not enough(got) and time.monotonic() < deadline:
        try:
            msg = await asyncio.wait_for(ws.receive(), deadline - time.monotonic())
        except TimeoutError:
            break
        if msg.type == aiohttp.WSMsgType.TEXT:
            got.append(json.loads(msg.data))
    return got


def finished(events: list[dict[str, Any]]) -> bool:
    return any(e["e"] == "ALGO_UPDATE" and e["o"]["X"] == "FINISHED" for e in events)


def kinds(events: list[dict[str, Any]]) -> list[str]:
    out = []
    for e in events:
        if e["e"] == "ORDER_TRADE_UPDATE":
            out.append(f"order:{e['o']['x']}:{e['o']['X']}")
        elif e["e"] == "ALGO_UPDATE":
            out.append(f"algo:{e['o']['X']}")
        else:
            out.append(e["e"])
    return out


async def private(ex: Running, session: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse:
    async with session.post(f"{ex.url}/fapi/v1/listenKey",
                            headers={"X-MBX-APIKEY": ACCOUNT.key}) as answer:  # fmt: skip
        key = (await answer.json())["listenKey"]
    ws_url = ex.url.replace("http://", "ws://") + f"/private/ws?listenKey={key}"
    return await session.ws_connect(ws_url)


def test_a_fill_a_stop_and_a_leverage_change_stream_binances_events_in_order(
    tapes: dict[str, SymbolTape],
) -> None:
    c = tapes["BTCUSDT"].candles
    i = int(np.searchsorted(c.open_time_ms, NOW, "right")) - 1
    # A stop the market reaches within the hour (a listenKey lives 60 min of wall time).
    trigger = round(float(c.open[i]) - 20.0, 1)
    j = i + int(np.argmax(c.low[i:] <= trigger))
    assert j <= i + 7
    wall = Wall(WALL_13H)

    async def scenario(ex: Running) -> tuple[list[Any], list[Any], list[Any]]:
        async with aiohttp.ClientSession() as session:
            ws = await private(ex, session)
            order = await asyncio.to_thread(
                call, ex.url, "POST", "/fapi/v1/order", wall, symbol="BTCUSDT", side="BUY",
                type="MARKET", quantity="0.010", newClientOrderId="buy-1",
            )  # fmt: skip
            assert order[0] == 200, order
            filled = await events_until(ws, lambda got: len(got) >= 4)
            await asyncio.to_thread(
                call, ex.url, "POST", "/fapi/v1/algoOrder", wall, algoType="CONDITIONAL",
                symbol="BTCUSDT", side="SELL", type="STOP_MARKET", closePosition="true",
                triggerPrice=f"{trigger:.1f}", clientAlgoId="stop-1",
            )  # fmt: skip
            await asyncio.to_thread(
                call, ex.url, "POST", "/fapi/v1/leverage", wall, symbol="BTCUSDT", leverage=5
            )
            configured = await events_until(ws, lambda got: len(got) >= 2)
            wall.advance(int(c.open_time_ms[j]) + 300_000 - NOW)  # the market loop moves on
            stopped = await events_until(ws, finished)
            await ws.close()
            return filled, configured, stopped

    with serving(tapes, START, wall=wall) as ex:
        filled, configured, stopped = asyncio.run(scenario(ex))
    for event in filled + configured + stopped:
        sdk_model(event)
    assert kinds(filled) == ["order:NEW:NEW", "TRADE_LITE", "order:TRADE:FILLED", "ACCOUNT_UPDATE"]
    trade = filled[2]["o"]
    assert trade["c"] == "buy-1" and trade["l"] == "0.010" and trade["N"] == "USDT"
    assert filled[3]["a"]["m"] == "ORDER" and filled[3]["a"]["P"][0]["pa"] == "0.010"
    assert kinds(configured) == ["algo:NEW", "ACCOUNT_CONFIG_UPDATE"]
    assert configured[1]["ac"] == {"s": "BTCUSDT", "l": 5}
    # Funding may be paid before the stop; the stop's own events come in this order.
    stop_events = kinds(stopped)
    tail = stop_events[stop_events.index("algo:TRIGGERED") :]
    assert tail == ["algo:TRIGGERED", "order:NEW:NEW", "TRADE_LITE", "order:TRADE:FILLED",
                    "ACCOUNT_UPDATE", "algo:FINISHED"]  # fmt: skip
    last = stopped[-1]["o"]
    assert last["caid"] == "stop-1" and last["ai"] and last["aq"] == "0.010"
    closing = next(e for e in stopped if e["e"] == "ORDER_TRADE_UPDATE" and e["o"]["x"] == "TRADE")
    assert closing["o"]["ot"] == "STOP_MARKET" and closing["o"]["cp"] is True
    assert float(closing["o"]["rp"]) < 0  # a stop below the entry loses
    assert stopped[-1]["E"] >= closing["E"] >= filled[-1]["E"]  # ordered by event time
    funding = [e for e in stopped if e["e"] == "ACCOUNT_UPDATE" and e["a"]["m"] == "FUNDING_FEE"]
    expected_fundings = int(
        np.sum(
            (tapes["BTCUSDT"].funding.time_ms > NOW)  # type: ignore[union-attr]
            & (tapes["BTCUSDT"].funding.time_ms <= c.open_time_ms[j])  # type: ignore[union-attr]
        )
    )
    assert len(funding) == expected_fundings
    assert all(e["a"]["P"] == [] for e in funding)  # cross margin: balances only


def test_a_position_near_liquidation_gets_one_margin_call_then_is_liquidated(
    tapes: dict[str, SymbolTape],
) -> None:
    """Market time runs 30,000 times the wall clock (a week in 20 s), so the stream keeps its
    pings and listenKey on real wall time."""
    from binance_sdk_derivatives_trading_usds_futures.websocket_streams import models as m

    btc = tapes["BTCUSDT"]
    c = btc.candles
    wall = SystemWall()

    async def scenario(ex: Running) -> tuple[list[Any], dict[str, Any], list[Any]]:
        async with aiohttp.ClientSession() as session:
            ws = await private(ex, session)
            for path, params in [
                ("/fapi/v1/marginType", {"symbol": "BTCUSDT", "marginType": "ISOLATED"}),
                ("/fapi/v1/leverage", {"symbol": "BTCUSDT", "leverage": 125}),
                ("/fapi/v1/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                    "quantity": "0.010"}),
            ]:  # fmt: skip
                answer = await asyncio.to_thread(call, ex.url, "POST", path, wall, **params)
                assert answer[0] == 200, answer
            _, _, rows = await asyncio.to_thread(
                call, ex.url, "GET", "/fapi/v2/positionRisk", wall, symbol="BTCUSDT"
            )
            got = await events_until(ws, liquidated, seconds=25)
            _, _, trades = await asyncio.to_thread(
                call, ex.url, "GET", "/fapi/v1/userTrades", wall, symbol="BTCUSDT"
            )
            await ws.close()
            return got, rows[0], trades

    with serving(tapes, START, speed=30_000, wall=wall) as ex:
        got, position, trades = asyncio.run(scenario(ex))
    assert liquidated(got), "no liquidation within a week of market time"
    for event in got:
        if event["e"] == "MARGIN_CALL":
            assert m.MarginCall.from_dict(event) is not None
        else:
            sdk_model(event)
    liq, iw = float(position["liquidationPrice"]), float(position["isolatedWallet"])
    entry = float(trades[0]["price"])
    i = int(np.searchsorted(c.open_time_ms, trades[0]["time"], "right")) - 1
    j = i + int(np.argmax(c.low[i:] <= liq))
    expected = margin_calls_due(btc, entry, iw, i, j)
    calls = [e for e in got if e["e"] == "MARGIN_CALL"]
    assert len(calls) == expected
    assert all(e["p"][0]["mt"] == "ISOLATED" and e["p"][0]["pa"] == "0.010" for e in calls)
    closing = [e for e in got if e["e"] == "ORDER_TRADE_UPDATE" and e["o"]["o"] == "LIQUIDATION"]
    assert closing[-1]["o"]["x"] == "CALCULATED"
    assert closing[-1]["o"]["c"].startswith("autoclose-")
    assert closing[-1]["T"] == int(c.open_time_ms[j]) + 300_000  # when that candle closed


def margin_calls_due(tape: SymbolTape, entry: float, iw: float, i: int, j: int) -> int:
    """Independently: how often a close of candles i..j-1 entered the margin-call band of a
    0.010 long (maintenance >= 80 % of the isolated wallet + unrealized PnL) from outside."""
    from slt.domain.trading.margin_nb import CUM, MMR, bracket_row_nb

    b, c = tape.rules.brackets, tape.candles
    risky = []
    for k in range(i, j):
        mark = float(c.close[k])
        row = bracket_row_nb(b, 0.010 * mark)
        mm = 0.010 * mark * float(b[row, MMR]) - float(b[row, CUM])
        risky.append(mm >= 0.8 * (iw + (mark - entry) * 0.010))
    return sum(1 for was, now in zip([False, *risky], risky, strict=False) if now and not was)


def liquidated(events: list[dict[str, Any]]) -> bool:
    return any(e["e"] == "ORDER_TRADE_UPDATE" and e["o"]["o"] == "LIQUIDATION" for e in events)


def test_a_close_near_the_liquidation_price_sends_one_margin_call_before_it(
    tapes: dict[str, SymbolTape],
) -> None:
    """In process, with the wall clock moved by hand: an entry (found in the data) whose
    position has a close inside the margin-call band before it is liquidated."""
    from slt.adapters.exchange.local.auth import Authenticator
    from slt.adapters.exchange.local.clock import ReplayClock
    from slt.adapters.exchange.local.order_params import OrderRequest
    from slt.adapters.exchange.local.server import LocalExchange
    from slt.domain.trading.margin_nb import liquidation_price_nb
    from slt.engine.symbol_venue import symbol_venue

    btc = tapes["BTCUSDT"]
    c, b = btc.candles, btc.rules.brackets

    def scenario() -> tuple[int, int, int] | None:
        """(entry candle, liquidation candle, margin calls due before it) for a 100x long:
        one each time a close enters the band from outside."""
        for i in range(int(np.searchsorted(c.open_time_ms, START)), len(c.open) - 1):
            entry = float(c.open[i]) * 1.0001
            iw = entry * 0.010 / 100
            liq = liquidation_price_nb(1, entry, 0.010, iw, b)
            j = i + int(np.argmax(c.low[i:] <= liq))
            if c.low[j] > liq:
                return None
            calls = margin_calls_due(btc, entry, iw, i, j)
            if calls:
                return i, j, calls
        return None

    found = scenario()
    assert found is not None, "the data holds no such entry"
    i, j, calls = found
    wall = Wall(WALL_13H - NOW + int(c.open_time_ms[i]))
    ex = LocalExchange(tapes, ReplayClock.start(START, 1.0, wall), Authenticator([ACCOUNT], wall),
                       wall=wall, venues=symbol_venue)  # fmt: skip
    published: list[dict[str, Any]] = []
    ex.publish_user = lambda key, event: published.append(event)  # type: ignore[method-assign]
    ex.catch_up()
    account = ex.accounts[ACCOUNT.key]
    desk = account.desk("BTCUSDT")
    account.set_margin_type(desk, "ISOLATED")
    account.set_leverage(desk, 100, ex.clock.history_now())
    account.place(OrderRequest("BTCUSDT", "BUY", "MARKET", 0.010), ex.clock.history_now())
    wall.advance(int(c.open_time_ms[j]) + 300_000 - int(c.open_time_ms[i]))
    ex.catch_up()
    kinds_seen = [e["e"] if e["e"] != "ORDER_TRADE_UPDATE" else e["o"]["o"] for e in published]
    assert kinds_seen.count("MARGIN_CALL") == calls  # not again while it stays in the band
    assert kinds_seen.index("MARGIN_CALL") < kinds_seen.index("LIQUIDATION")


def test_ccxt_pro_watches_its_orders_on_the_user_data_stream(
    tapes: dict[str, SymbolTape],
) -> None:
    """ccxt.pro's binanceusdm opens its listenKey and private stream itself (from the base
    URL it is given) and sees its market order closed."""
    import ccxt.pro

    async def scenario(ex: Running) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        client = ccxt.pro.binanceusdm({"apiKey": ACCOUNT.key, "secret": ACCOUNT.secret,
                                       "options": {"fetchCurrencies": False}})  # fmt: skip
        for name in [k for k in client.urls["api"] if k.startswith("fapi") and k != "fapiData"]:
            client.urls["api"][name] = ex.url + client.urls["api"][name][len(BINANCE) :]
        client.urls["api"]["ws"]["linear"] = ex.url.replace("http://", "ws://") + "/ws"
        try:
            await client.load_markets()
            watcher = asyncio.ensure_future(client.watch_orders("BTC/USDT:USDT"))
            await asyncio.sleep(0.5)  # the subscription is made before the order
            order = await client.create_order("BTC/USDT:USDT", "market", "buy", 0.01)
            seen = await asyncio.wait_for(watcher, 10)
            while seen[-1]["status"] != "closed":  # NEW first, then the fill
                seen = await asyncio.wait_for(client.watch_orders("BTC/USDT:USDT"), 10)
            return order, seen
        finally:
            await client.close()

    with serving(tapes, START) as ex:
        order, seen = asyncio.run(asyncio.wait_for(scenario(ex), 30))
    assert [(o["id"], o["status"]) for o in seen] == [(order["id"], "closed")]
    assert seen[-1]["filled"] == 0.01 and seen[-1]["side"] == "buy"


BINANCE = "https://fapi.binance.com"
