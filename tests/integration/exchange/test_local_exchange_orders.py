"""Orders at the local exchange over real BTCUSDT futures candles, on a real HTTP server: fills
where the replayed market puts them, accounting to the cent, and Binance's refusals.

The wall clock stands still until a test moves it, so the replayed moment (and every price)
is exact. Expected prices are computed here from the stored candles and the published fee and
slippage rates, not read back from the server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from slt.adapters.exchange.local.market import SymbolTape
from slt.adapters.exchange.local.tapes import load_tapes
from slt.adapters.store.parquet_store import ParquetStore
from slt.domain.clock import parse_utc_ms
from slt.domain.trading.margin_nb import MAX_LEVERAGE
from tests.conftest import CATMAN, CATMAN_BTC_5M, CATMAN_ETH_5M
from tests.support.binance_calls import Wall, call, ok
from tests.support.local_exchange import real_store, serving

START = parse_utc_ms("2024-01-01")
WALL_13H = parse_utc_ms("2026-12-07") + 13 * 3_600_000  # history: 2024-01-01 13:00:00
NOW = START + 13 * 3_600_000
TF = 300_000
TAKER, MAKER, SLIP = 0.0005, 0.0002, 0.0001  # Binance's VIP 0 fees; the engine's 1 bp


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ParquetStore:
    root: Path = tmp_path_factory.mktemp("orders-store")
    files = [CATMAN_BTC_5M, CATMAN_ETH_5M, CATMAN / "BTC_USDT_USDT-8h-funding_rate.feather"]
    return real_store(root, files)


@pytest.fixture(scope="module")
def tapes(store: ParquetStore) -> dict[str, SymbolTape]:
    return load_tapes(store, ["BTCUSDT", "ETHUSDT"], START, None)


def index_at(tape: SymbolTape, t: int) -> int:
    i = int(np.searchsorted(tape.candles.open_time_ms, t, "right")) - 1
    assert tape.candles.open_time_ms[i] <= t < tape.candles.open_time_ms[i] + TF
    return i


def funding_paid(tape: SymbolTape, amt: float, after: int, until: int) -> float:
    """What a position of ``amt`` pays from ``after`` (exclusive) to ``until`` (inclusive):
    amount x the price at the funding time (the open of its candle) x the rate."""
    assert tape.funding is not None
    total = 0.0
    for t, rate in zip(tape.funding.time_ms.tolist(), tape.funding.rate.tolist(), strict=True):
        if after < t <= until:
            total += amt * float(tape.candles.open[index_at(tape, t)]) * rate
    return total


def test_a_market_order_fills_at_the_open_of_the_candle_in_progress(
    tapes: dict[str, SymbolTape],
) -> None:
    btc = tapes["BTCUSDT"]
    open_ = float(btc.candles.open[index_at(btc, NOW)])
    wall = Wall(WALL_13H)
    with serving(tapes, START, wall=wall) as ex:
        status, headers, order = call(
            ex.url, "POST", "/fapi/v1/order", wall, symbol="BTCUSDT", side="BUY",
            type="MARKET", quantity="0.010", newOrderRespType="RESULT",
            newClientOrderId="entry-1",
        )  # fmt: skip
        assert status == 200, order
        assert headers["X-MBX-ORDER-COUNT-10S"] == "1" and headers["X-MBX-ORDER-COUNT-1M"] == "1"
        [position] = ok(call(ex.url, "GET", "/fapi/v3/positionRisk", wall))
        [balance] = ok(call(ex.url, "GET", "/fapi/v3/balance", wall))
        venue = ex.exchange.accounts[next(iter(ex.exchange.accounts))].desk("BTCUSDT")
        venue_entry = venue.sim.position()[2]
    fill = open_ * (1 + SLIP)
    assert order["status"] == "FILLED" and order["clientOrderId"] == "entry-1"
    assert float(order["avgPrice"]) == pytest.approx(fill, abs=1e-5)
    assert order["executedQty"] == "0.010" and order["time"] == WALL_13H
    assert position["positionAmt"] == "0.010"
    assert float(position["entryPrice"]) == pytest.approx(fill, rel=1e-12)
    assert venue_entry == pytest.approx(fill, rel=1e-12)  # the kernels' own position agrees
    assert float(position["markPrice"]) == open_
    assert float(balance["balance"]) == pytest.approx(10_000 - fill * 0.010 * TAKER, abs=1e-8)


def test_an_ack_answer_shows_the_order_as_accepted_and_a_query_shows_it_filled(
    tapes: dict[str, SymbolTape],
) -> None:
    wall = Wall(WALL_13H)
    with serving(tapes, START, wall=wall) as ex:
        ack = ok(call(ex.url, "POST", "/fapi/v1/order", wall, symbol="ETHUSDT", side="SELL",
                      type="MARKET", quantity="0.100"))  # fmt: skip
        queried = ok(call(ex.url, "GET", "/fapi/v1/order", wall, symbol="ETHUSDT",
                          orderId=ack["orderId"]))  # fmt: skip
        by_client = ok(call(ex.url, "GET", "/fapi/v1/order", wall, symbol="ETHUSDT",
                            origClientOrderId=ack["clientOrderId"]))  # fmt: skip
    assert ack["status"] == "NEW" and ack["executedQty"] == "0.000"
    assert queried["status"] == "FILLED" and queried["executedQty"] == "0.100"
    assert by_client == queried


def test_a_stop_through_the_algo_api_closes_the_position_where_the_candles_first_reach_it(
    tapes: dict[str, SymbolTape],
) -> None:
    btc = tapes["BTCUSDT"]
    c = btc.candles
    i = index_at(btc, NOW)
    entry = float(c.open[i]) * (1 + SLIP)
    trigger = 42_000.0
    j = i + int(np.argmax(c.low[i:] <= trigger))  # the first candle that reaches the stop
    assert c.low[j] <= trigger < c.open[i]
    level = min(float(c.open[j]), trigger)
    exit_price = level * (1 - SLIP)
    exit_ms = int(c.open_time_ms[j]) + TF  # matched when the candle closes
    wall = Wall(WALL_13H)
    with serving(tapes, START, wall=wall) as ex:
        shift = ex.exchange.clock.shift_ms
        ok(call(ex.url, "POST", "/fapi/v1/order", wall, symbol="BTCUSDT", side="BUY",
                type="MARKET", quantity="0.010"))  # fmt: skip
        algo = ok(call(ex.url, "POST", "/fapi/v1/algoOrder", wall, algoType="CONDITIONAL",
                       symbol="BTCUSDT", side="SELL", type="STOP_MARKET", triggerPrice="42000",
                       closePosition="true", clientAlgoId="stop-1"))  # fmt: skip
        assert algo["algoStatus"] == "NEW" and algo["quantity"] is None
        wall.advance(exit_ms - NOW - 1)  # one ms before the candle closes: still open
        assert ok(call(ex.url, "GET", "/fapi/v3/positionRisk", wall))[0]["positionAmt"] == "0.010"
        assert [a["clientAlgoId"] for a in ok(call(ex.url, "GET", "/fapi/v1/openAlgoOrders",
                                                   wall))] == ["stop-1"]  # fmt: skip
        wall.advance(1)
        assert ok(call(ex.url, "GET", "/fapi/v3/positionRisk", wall)) == []
        done = ok(call(ex.url, "GET", "/fapi/v1/algoOrder", wall, algoId=algo["algoId"]))
        trades = ok(call(ex.url, "GET", "/fapi/v1/userTrades", wall, symbol="BTCUSDT"))
        [balance] = ok(call(ex.url, "GET", "/fapi/v3/balance", wall))
        assert ok(call(ex.url, "GET", "/fapi/v1/openAlgoOrders", wall)) == []
    assert done["algoStatus"] == "FINISHED" and done["actualType"] == "MARKET"
    assert float(done["actualPrice"]) == pytest.approx(exit_price, abs=1e-5)
    assert done["triggerTime"] == exit_ms + shift
    assert [t["side"] for t in trades] == ["BUY", "SELL"]
    assert trades[1]["orderId"] == int(done["actualOrderId"])
    realized = (exit_price - entry) * 0.010
    assert float(trades[1]["realizedPnl"]) == pytest.approx(realized, abs=1e-8)
    fees = (entry + exit_price) * 0.010 * TAKER
    funding = funding_paid(btc, 0.010, NOW, int(c.open_time_ms[j]))
    assert funding != 0.0  # the stop came after at least one funding time
    expected = 10_000 + realized - fees - funding
    assert float(balance["balance"]) == pytest.approx(expected, abs=1e-6)


def test_a_resting_limit_entry_fills_at_its_own_price_as_the_maker(
    tapes: dict[str, SymbolTape],
) -> None:
    btc = tapes["BTCUSDT"]
    c = btc.candles
    i = index_at(btc, NOW)
    limit = round(float(c.open[i]) * 0.997, 1)
    j = i + int(np.argmax(c.low[i:] <= limit))
    assert j > i
    wall = Wall(WALL_13H)
    with serving(tapes, START, wall=wall) as ex:
        order = ok(
            call(
                ex.url,
                "POST",
                "/fapi/v1/order",
                wall,
                symbol="BTCUSDT",
                side="BUY",
                type="LIMIT",
                timeInForce="GTC",
                quantity="0.010",
                price=f"{limit:.1f}",
            )
        )
        [resting] = ok(call(ex.url, "GET", "/fapi/v1/openOrders", wall, symbol="BTCUSDT"))
        [before] = ok(call(ex.url, "GET", "/fapi/v3/account", wall))["assets"]
        wall.advance(int(c.open_time_ms[j]) + TF - NOW)
        filled = ok(call(ex.url, "GET", "/fapi/v1/order", wall, symbol="BTCUSDT",
                         orderId=order["orderId"]))  # fmt: skip
        [position] = ok(call(ex.url, "GET", "/fapi/v2/positionRisk", wall, symbol="BTCUSDT"))
        [balance] = ok(call(ex.url, "GET", "/fapi/v2/balance", wall))
    assert resting["orderId"] == order["orderId"] and resting["status"] == "NEW"
    # The open order holds its initial margin at the default leverage (20x).
    assert float(before["openOrderInitialMargin"]) == pytest.approx(limit * 0.010 / 20)
    assert filled["status"] == "FILLED" and float(filled["avgPrice"]) == pytest.approx(limit)
    assert float(position["entryPrice"]) == pytest.approx(limit)
    assert position["leverage"] == "20" and position["marginType"] == "cross"
    funding = funding_paid(btc, 0.010, int(c.open_time_ms[j]), int(c.open_time_ms[j]))
    expected = 10_000 - limit * 0.010 * MAKER - funding
    assert float(balance["balance"]) == pytest.approx(expected, abs=1e-8)
    # Cross margin: the whole wallet backs the one position. Binance's formula for a long,
    # LP = (WB + cum - Q x EP) / (Q x mmr - Q), with the first bracket (notional < 50,000).
    mmr, cum = float(btc.rules.brackets[0, 3]), float(btc.rules.brackets[0, 4])
    lp = (expected + cum - 0.010 * limit) / (0.010 * mmr - 0.010)
    assert lp < 0 and float(position["liquidationPrice"]) == 0.0  # a long it cannot liquidate


def test_an_isolated_position_at_top_leverage_is_liquidated_and_loses_its_isolated_wallet(
    tapes: dict[str, SymbolTape],
) -> None:
    btc = tapes["BTCUSDT"]
    c = btc.candles
    top = int(btc.rules.brackets[0, MAX_LEVERAGE])
    wall = Wall(WALL_13H)
    with serving(tapes, START, wall=wall) as ex:
        assert ok(call(ex.url, "POST", "/fapi/v1/marginType", wall, symbol="BTCUSDT",
                       marginType="ISOLATED")) == {"code": 200, "msg": "success"}  # fmt: skip
        lev = ok(call(ex.url, "POST", "/fapi/v1/leverage", wall, symbol="BTCUSDT",
                      leverage=top))  # fmt: skip
        assert lev["leverage"] == top
        ok(call(ex.url, "POST", "/fapi/v1/order", wall, symbol="BTCUSDT", side="BUY",
                type="MARKET", quantity="0.010"))  # fmt: skip
        [position] = ok(call(ex.url, "GET", "/fapi/v2/positionRisk", wall, symbol="BTCUSDT"))
        liq = float(position["liquidationPrice"])
        wallet_in = float(position["isolatedWallet"])
        i = index_at(btc, NOW)
        j = i + int(np.argmax(c.low[i:] <= liq))
        assert c.low[j] <= liq
        wall.advance(int(c.open_time_ms[j]) + TF - NOW)
        orders = ok(call(ex.url, "GET", "/fapi/v1/allOrders", wall, symbol="BTCUSDT"))
        [balance] = ok(call(ex.url, "GET", "/fapi/v3/balance", wall))
        assert ok(call(ex.url, "GET", "/fapi/v3/positionRisk", wall)) == []
    entry = float(c.open[i]) * (1 + SLIP)
    assert wallet_in == pytest.approx(entry * 0.010 / top)
    assert entry * (1 - 1 / top) < liq < entry
    liquidation = orders[-1]
    assert liquidation["clientOrderId"].startswith("autoclose-")
    assert liquidation["type"] == "LIQUIDATION" and liquidation["status"] == "FILLED"
    assert float(liquidation["avgPrice"]) == pytest.approx(liq, abs=1e-4)
    # The whole isolated wallet is gone (realized loss + the rest to the insurance fund);
    # funding until then was paid from the wallet.
    funding = funding_paid(btc, 0.010, NOW, int(c.open_time_ms[j]))
    expected = 10_000 - entry * 0.010 * TAKER - wallet_in - funding
    assert float(balance["balance"]) == pytest.approx(expected, abs=1e-6)


def test_take_profit_market_triggers_when_the_price_rises_to_it(
    tapes: dict[str, SymbolTape],
) -> None:
    btc = tapes["BTCUSDT"]
    c = btc.candles
    i = index_at(btc, NOW)
    trigger = round(float(c.open[i]) * 1.004, 1)
    j = i + int(np.argmax(c.high[i:] >= trigger))
    assert j > i
    level = max(float(c.open[j]), trigger)
    wall = Wall(WALL_13H)
    with serving(tapes, START, wall=wall) as ex:
        ok(call(ex.url, "POST", "/fapi/v1/order", wall, symbol="BTCUSDT", side="BUY",
                type="MARKET", quantity="0.020"))  # fmt: skip
        algo = ok(
            call(
                ex.url,
                "POST",
                "/fapi/v1/algoOrder",
                wall,
                algoType="CONDITIONAL",
                symbol="BTCUSDT",
                side="SELL",
                type="TAKE_PROFIT_MARKET",
                triggerPrice=f"{trigger:.1f}",
                quantity="0.010",
                reduceOnly="true",
            )
        )
        wall.advance(int(c.open_time_ms[j]) + TF - NOW)
        done = ok(call(ex.url, "GET", "/fapi/v1/algoOrder", wall, algoId=algo["algoId"]))
        [position] = ok(call(ex.url, "GET", "/fapi/v3/positionRisk", wall))
    assert done["algoStatus"] == "FINISHED"
    assert float(done["actualPrice"]) == pytest.approx(level * (1 - SLIP), abs=1e-5)
    assert position["positionAmt"] == "0.010"  # reduced by the order's quantity only


def test_cancel_query_and_duplicate_ids_answer_as_binance_does(
    tapes: dict[str, SymbolTape],
) -> None:
    wall = Wall(WALL_13H)
    with serving(tapes, START, wall=wall) as ex:
        resting = ok(call(ex.url, "POST", "/fapi/v1/order", wall, symbol="BTCUSDT", side="BUY",
                          type="LIMIT", timeInForce="GTC", quantity="0.010", price="30000",
                          newClientOrderId="mine"))  # fmt: skip
        status, _, duplicate = call(
            ex.url,
            "POST",
            "/fapi/v1/order",
            wall,
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.010",
            price="30000",
            newClientOrderId="mine",
        )
        assert (status, duplicate["code"]) == (400, -4116)
        canceled = ok(call(ex.url, "DELETE", "/fapi/v1/order", wall, symbol="BTCUSDT",
                           origClientOrderId="mine"))  # fmt: skip
        assert canceled["status"] == "CANCELED" and canceled["orderId"] == resting["orderId"]
        again = call(ex.url, "DELETE", "/fapi/v1/order", wall, symbol="BTCUSDT",
                     orderId=resting["orderId"])  # fmt: skip
        unknown = call(ex.url, "GET", "/fapi/v1/order", wall, symbol="BTCUSDT", orderId=12345)
        neither = call(ex.url, "GET", "/fapi/v1/order", wall, symbol="BTCUSDT")
        # Once canceled, the id is free again.
        reused = ok(call(ex.url, "POST", "/fapi/v1/order", wall, symbol="BTCUSDT", side="BUY",
                         type="LIMIT", timeInForce="GTC", quantity="0.010", price="30000",
                         newClientOrderId="mine"))  # fmt: skip
        assert reused["orderId"] != resting["orderId"]
        ok(call(ex.url, "DELETE", "/fapi/v1/allOpenOrders", wall, symbol="BTCUSDT"))
        assert ok(call(ex.url, "GET", "/fapi/v1/openOrders", wall)) == []
    assert again[0] == 400 and again[2] == {"code": -2011, "msg": "Unknown order sent."}
    assert unknown[0] == 400 and unknown[2] == {"code": -2013, "msg": "Order does not exist."}
    assert neither[0] == 400 and neither[2]["code"] == -1102


REFUSALS = [
    ({"type": "STOP_MARKET", "quantity": "0.010"}, -4120),
    ({"type": "TAKE_PROFIT_MARKET", "quantity": "0.010"}, -4120),
    ({"type": "MARKET", "quantity": "0.0101"}, -1111),
    ({"type": "MARKET", "quantity": "0"}, -4003),
    ({"type": "MARKET", "quantity": "abc"}, -1100),
    ({"type": "MARKET"}, -1102),
    ({"type": "MARKET", "quantity": "0.001"}, -4164),
    ({"type": "MARKET", "quantity": "0.010", "reduceOnly": "true"}, -2022),
    ({"type": "MARKET", "quantity": "10"}, -2019),
    ({"type": "MARKET", "quantity": "500"}, -4005),
    ({"type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010", "price": "42000.05"}, -1111),
    ({"type": "LIMIT", "quantity": "0.010", "price": "42000"}, -1102),
    ({"type": "LIMIT", "timeInForce": "GTX", "quantity": "0.010", "price": "45000"}, -5022),
    ({"type": "LIMIT", "timeInForce": "FOK", "quantity": "0.010", "price": "40000"}, -5021),
    ({"type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010", "price": "50000"}, -4016),
    ({"type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010", "price": "20000"}, -4024),
    ({"type": "LIMIT", "timeInForce": "GTD", "quantity": "0.010", "price": "40000"}, -1115),
    ({"type": "FOO", "quantity": "0.010"}, -1116),
    ({"type": "MARKET", "quantity": "0.010", "side": "LONG"}, -1117),
    ({"type": "MARKET", "quantity": "0.010", "positionSide": "LONG"}, -4061),
    ({"type": "MARKET", "quantity": "0.010", "newClientOrderId": "x" * 37}, -4015),
    ({"type": "MARKET", "quantity": "0.010", "newClientOrderId": "a b"}, -1100),
    ({"type": "MARKET", "quantity": "0.010", "symbol": "DOGEUSDT"}, -1121),
]


@pytest.mark.parametrize(("params", "code"), REFUSALS, ids=[str(c) for _, c in REFUSALS])
def test_a_bad_order_gets_binances_code_and_nothing_is_placed(
    tapes: dict[str, SymbolTape], params: dict[str, str], code: int
) -> None:
    wall = Wall(WALL_13H)
    sent: dict[str, Any] = {"symbol": "BTCUSDT", "side": "BUY"} | params
    with serving(tapes, START, wall=wall) as ex:
        status, _, body = call(ex.url, "POST", "/fapi/v1/order", wall, **sent)
        assert ok(call(ex.url, "GET", "/fapi/v1/allOrders", wall, symbol="BTCUSDT")) == []
        [balance] = ok(call(ex.url, "GET", "/fapi/v3/balance", wall))
    assert status == 400 and body["code"] == code, body
    assert isinstance(body["msg"], str) and body["msg"]
    assert balance["balance"] == "10000.00000000"


ALGO_REFUSALS = [
    ({"type": "STOP_MARKET", "triggerPrice": "45000", "closePosition": "true"}, -2021),
    ({"type": "TAKE_PROFIT_MARKET", "triggerPrice": "40000", "closePosition": "true"}, -2021),
    (
        {
            "type": "STOP_MARKET",
            "triggerPrice": "40000",
            "closePosition": "true",
            "quantity": "0.010",
        },
        -1106,
    ),
    (
        {
            "type": "STOP_MARKET",
            "triggerPrice": "40000",
            "closePosition": "true",
            "reduceOnly": "true",
        },
        -1106,
    ),
    ({"type": "STOP_MARKET", "quantity": "0.010"}, -1102),
    ({"type": "MARKET", "quantity": "0.010"}, -1116),
    ({"type": "TRAILING_STOP_MARKET", "quantity": "0.010", "callbackRate": "25"}, -1130),
    (
        {
            "type": "TRAILING_STOP_MARKET",
            "quantity": "0.010",
            "callbackRate": "1",
            "activatePrice": "40000",
        },
        -2021,
    ),
    (
        {"type": "STOP_MARKET", "triggerPrice": "40000", "quantity": "0.010", "algoType": "VP"},
        -1130,
    ),
]


@pytest.mark.parametrize(("params", "code"), ALGO_REFUSALS, ids=[str(c) for _, c in ALGO_REFUSALS])
def test_a_bad_algo_order_gets_binances_code(
    tapes: dict[str, SymbolTape], params: dict[str, str], code: int
) -> None:
    wall = Wall(WALL_13H)
    sent: dict[str, Any] = {"symbol": "BTCUSDT", "side": "SELL", "algoType": "CONDITIONAL"} | params
    with serving(tapes, START, wall=wall) as ex:
        status, _, body = call(ex.url, "POST", "/fapi/v1/algoOrder", wall, **sent)
        assert ok(call(ex.url, "GET", "/fapi/v1/openAlgoOrders", wall)) == []
    assert status == 400 and body["code"] == code, body


def test_a_batch_answers_each_order_or_its_error_in_the_order_sent(
    tapes: dict[str, SymbolTape],
) -> None:
    wall = Wall(WALL_13H)
    batch = [
        {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
         "quantity": "0.010", "price": "30000"},
        {"symbol": "BTCUSDT", "side": "BUY", "type": "STOP_MARKET", "quantity": "0.010"},
        {"symbol": "ETHUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.100"},
    ]  # fmt: skip
    with serving(tapes, START, wall=wall) as ex:
        status, headers, answers = call(ex.url, "POST", "/fapi/v1/batchOrders", wall,
                                        batchOrders=json.dumps(batch))  # fmt: skip
        too_many = call(ex.url, "POST", "/fapi/v1/batchOrders", wall,
                        batchOrders=json.dumps(batch * 2))  # fmt: skip
        garbage = call(ex.url, "POST", "/fapi/v1/batchOrders", wall, batchOrders="[{")
    assert status == 200 and headers["X-MBX-ORDER-COUNT-10S"] == "5"
    assert answers[0]["status"] == "NEW" and answers[0]["price"] == "30000.0"
    assert answers[1]["code"] == -4120
    assert answers[2]["symbol"] == "ETHUSDT"
    assert too_many[0] == 400 and too_many[2]["code"] == -4082
    assert garbage[0] == 400 and garbage[2]["code"] == -1130


def test_account_settings_answer_as_binance_and_hedge_mode_is_refused_clearly(
    tapes: dict[str, SymbolTape],
) -> None:
    wall = Wall(WALL_13H)
    with serving(tapes, START, wall=wall) as ex:
        [config] = ok(call(ex.url, "GET", "/fapi/v1/symbolConfig", wall, symbol="BTCUSDT"))
        same = call(ex.url, "POST", "/fapi/v1/marginType", wall, symbol="BTCUSDT",
                    marginType="CROSSED")  # fmt: skip
        too_high = call(ex.url, "POST", "/fapi/v1/leverage", wall, symbol="BTCUSDT",
                        leverage=126)  # fmt: skip
        hedge = call(ex.url, "POST", "/fapi/v1/positionSide/dual", wall, dualSidePosition="true")
        mode = ok(call(ex.url, "GET", "/fapi/v1/positionSide/dual", wall))
        ok(call(ex.url, "POST", "/fapi/v1/order", wall, symbol="BTCUSDT", side="BUY",
                type="MARKET", quantity="0.010"))  # fmt: skip
        with_position = call(ex.url, "POST", "/fapi/v1/marginType", wall, symbol="BTCUSDT",
                             marginType="ISOLATED")  # fmt: skip
    assert config == {
        "symbol": "BTCUSDT",
        "marginType": "CROSSED",
        "isAutoAddMargin": False,
        "leverage": 20,
        "maxNotionalValue": config["maxNotionalValue"],
    }
    assert same[2] == {"code": -4046, "msg": "No need to change margin type."}
    assert too_high[2]["code"] == -4028
    assert hedge[0] == 400 and "One-way Mode only" in hedge[2]["msg"]
    assert mode == {"dualSidePosition": False}
    assert with_position[2]["code"] == -4048


def test_a_cross_position_is_backed_by_the_whole_wallet(tapes: dict[str, SymbolTape]) -> None:
    btc = tapes["BTCUSDT"]
    entry = float(btc.candles.open[index_at(btc, NOW)]) * (1 + SLIP)
    wall = Wall(WALL_13H)
    with serving(tapes, START, wall=wall) as ex:
        ok(call(ex.url, "POST", "/fapi/v1/order", wall, symbol="BTCUSDT", side="BUY",
                type="MARKET", quantity="4.000"))  # fmt: skip
        [position] = ok(call(ex.url, "GET", "/fapi/v2/positionRisk", wall, symbol="BTCUSDT"))
        [balance] = ok(call(ex.url, "GET", "/fapi/v3/balance", wall))
    wallet = 10_000 - entry * 4.0 * TAKER
    assert float(balance["balance"]) == pytest.approx(wallet, abs=1e-6)
    # Binance's formula for one cross long: LP = (WB + cum - Q x EP) / (Q x mmr - Q), with the
    # bracket of the notional (about 170,000 USDT: BTCUSDT's second bracket).
    b = btc.rules.brackets
    row = int(np.searchsorted(b[:, 0], entry * 4.0, "right")) - 1
    assert row == 1
    mmr, cum = float(b[row, 3]), float(b[row, 4])
    expected = (wallet + cum - 4.0 * entry) / (4.0 * mmr - 4.0)
    assert float(position["liquidationPrice"]) == pytest.approx(expected, rel=1e-9)
    assert position["marginType"] == "cross" and float(position["isolatedWallet"]) == 0.0
