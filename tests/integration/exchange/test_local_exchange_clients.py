"""Clients nobody here wrote, pointed at the local exchange: ccxt's binanceusdm and Binance's
official SDK read time, markets, candles, funding and the balance, and parse every answer
into their own models (the SDK validates with pydantic)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from slt.adapters.exchange.local.market import SymbolTape
from slt.adapters.exchange.local.tapes import load_tapes
from slt.domain.clock import parse_utc_ms
from tests.conftest import CATMAN, CATMAN_BTC_5M
from tests.support.local_exchange import ACCOUNT, real_store, serving

START = parse_utc_ms("2024-01-01")


@pytest.fixture(scope="module")
def tapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SymbolTape]:
    root = tmp_path_factory.mktemp("clients-store")
    store = real_store(root, [CATMAN_BTC_5M, CATMAN / "BTC_USDT_USDT-8h-funding_rate.feather"])
    return load_tapes(store, ["BTCUSDT"], START, None)


def ccxt_client(url: str) -> Any:
    """ccxt's binanceusdm with its futures URLs on the local exchange. fetchCurrencies reads
    Binance's spot wallet API (sapi), which is no part of futures."""
    import ccxt

    client = ccxt.binanceusdm({"apiKey": ACCOUNT.key, "secret": ACCOUNT.secret,
                               "options": {"fetchCurrencies": False}})  # fmt: skip
    for name in [k for k in client.urls["api"] if k.startswith("fapi") and k != "fapiData"]:
        client.urls["api"][name] = url + client.urls["api"][name][len("https://fapi.binance.com") :]
    return client


def test_ccxt_binanceusdm_loads_markets_candles_funding_and_the_signed_balance(
    tapes: dict[str, SymbolTape],
) -> None:
    with serving(tapes, START) as ex:
        client = ccxt_client(ex.url)
        assert abs(client.fetch_time() - client.milliseconds()) < 5_000
        markets = client.load_markets()
        btc = markets["BTC/USDT:USDT"]
        assert btc["precision"]["price"] == 0.1 and btc["precision"]["amount"] == 0.001
        assert btc["limits"]["cost"]["min"] == 100.0
        candles = client.fetch_ohlcv("BTC/USDT:USDT", "1h", limit=24)
        assert len(candles) == 24
        assert all(b[0] - a[0] == 3_600_000 for a, b in itertools.pairwise(candles))
        assert candles[-1][0] <= client.milliseconds() < candles[-1][0] + 3_600_000
        funding = client.fetch_funding_rate_history("BTC/USDT:USDT", limit=3)
        assert len(funding) == 3 and all(f["timestamp"] <= client.milliseconds() for f in funding)
        balance = client.fetch_balance()
        assert balance["USDT"]["total"] == 10_000.0 and balance["USDT"]["free"] == 10_000.0


def test_binances_sdk_parses_every_answer_into_its_models(tapes: dict[str, SymbolTape]) -> None:
    from binance_common.configuration import ConfigurationRestAPI
    from binance_sdk_derivatives_trading_usds_futures.derivatives_trading_usds_futures import (
        DerivativesTradingUsdsFutures,
    )
    from binance_sdk_derivatives_trading_usds_futures.rest_api.models import (
        KlineCandlestickDataIntervalEnum,
    )

    with serving(tapes, START) as ex:
        config = ConfigurationRestAPI(api_key=ACCOUNT.key, api_secret=ACCOUNT.secret,
                                      base_path=ex.url, retries=0)  # fmt: skip
        rest = DerivativesTradingUsdsFutures(config_rest_api=config).rest_api
        server_time = rest.check_server_time().data().server_time
        assert server_time is not None and server_time > 0
        info = rest.exchange_information().data()
        assert info.symbols is not None and info.symbols[0].symbol == "BTCUSDT"
        filters = {f.filter_type: f for f in info.symbols[0].filters or []}
        assert filters["PRICE_FILTER"].tick_size == "0.1"
        assert filters["MIN_NOTIONAL"].notional == "100"
        rows = rest.kline_candlestick_data(
            "BTCUSDT", KlineCandlestickDataIntervalEnum["INTERVAL_5m"], limit=10
        ).data()
        assert len(rows) == 10
        mark = rest.mark_price(symbol="BTCUSDT").data()
        assert float(mark.actual_instance.mark_price) > 0
        history = rest.get_funding_rate_history(symbol="BTCUSDT", limit=2).data()
        assert len(history) == 2 and history[0].funding_rate
        balance = rest.futures_account_balance_v2().data()
        assert balance[0].asset == "USDT" and balance[0].balance == "10000.00000000"


def test_binances_sdk_trades_and_reads_orders_positions_and_the_account(
    tapes: dict[str, SymbolTape],
) -> None:
    from binance_common.configuration import ConfigurationRestAPI
    from binance_sdk_derivatives_trading_usds_futures.derivatives_trading_usds_futures import (
        DerivativesTradingUsdsFutures,
    )
    from binance_sdk_derivatives_trading_usds_futures.rest_api import models as m

    with serving(tapes, START) as ex:
        config = ConfigurationRestAPI(api_key=ACCOUNT.key, api_secret=ACCOUNT.secret,
                                      base_path=ex.url, retries=0)  # fmt: skip
        rest = DerivativesTradingUsdsFutures(config_rest_api=config).rest_api
        assert rest.change_margin_type("BTCUSDT", m.ChangeMarginTypeMarginTypeEnum["ISOLATED"]
                                       ).data().code == 200  # fmt: skip
        assert rest.change_initial_leverage("BTCUSDT", 10).data().leverage == 10
        order = rest.new_order(
            "BTCUSDT", m.NewOrderSideEnum["BUY"], m.NewOrderTypeEnum["MARKET"], quantity=0.01,
            new_order_resp_type=m.NewOrderNewOrderRespTypeEnum["RESULT"],
        ).data()  # fmt: skip
        assert order.status == "FILLED" and order.executed_qty == "0.010"
        price = float(order.additional_properties["avgPrice"])  # not in the SDK model
        stop = rest.new_algo_order(
            m.NewAlgoOrderAlgoTypeEnum["CONDITIONAL"], "BTCUSDT", m.NewAlgoOrderSideEnum["SELL"],
            m.NewAlgoOrderTypeEnum["STOP_MARKET"], trigger_price=round(price * 0.9, 1),
            close_position=m.NewAlgoOrderClosePositionEnum["TRUE"], client_algo_id="sdk-stop",
        ).data()  # fmt: skip
        assert stop.algo_status == "NEW" and stop.client_algo_id == "sdk-stop"
        limit = rest.new_order(
            "BTCUSDT", m.NewOrderSideEnum["SELL"], m.NewOrderTypeEnum["LIMIT"], quantity=0.01,
            price=round(price * 1.05, 1), time_in_force=m.NewOrderTimeInForceEnum["GTC"],
            reduce_only=m.NewOrderReduceOnlyEnum["TRUE"],
        ).data()  # fmt: skip
        assert limit.status == "NEW" and limit.reduce_only is True
        assert rest.query_order("BTCUSDT", order_id=order.order_id).data().status == "FILLED"
        assert [o.order_id for o in rest.current_all_open_orders().data()] == [limit.order_id]
        algos = rest.current_all_algo_open_orders().data()
        assert [a.algo_id for a in algos] == [stop.algo_id]
        assert rest.query_algo_order(algo_id=stop.algo_id).data().algo_status == "NEW"
        [position] = rest.position_information_v3(symbol="BTCUSDT").data()
        assert position.position_amt == "0.010" and float(position.isolated_wallet or 0) > 0
        [v2] = rest.position_information_v2(symbol="BTCUSDT").data()
        assert v2.leverage == "10" and v2.margin_type == "isolated"
        account = rest.account_information_v3().data()
        assert account.positions is not None and account.positions[0].symbol == "BTCUSDT"
        assert rest.account_information_v2().data().can_trade is True
        assert rest.futures_account_balance_v3().data()[0].asset == "USDT"
        assert rest.symbol_configuration(symbol="BTCUSDT").data()[0].leverage == 10
        assert rest.get_current_position_mode().data().dual_side_position is False
        trades = rest.account_trade_list("BTCUSDT").data()
        assert [t.order_id for t in trades] == [order.order_id]
        assert len(rest.all_orders("BTCUSDT").data()) == 2
        canceled = rest.cancel_order("BTCUSDT", order_id=limit.order_id).data()
        assert canceled.status == "CANCELED"
        gone = rest.cancel_algo_order(algo_id=stop.algo_id).data()
        assert gone.algo_id == stop.algo_id
        assert rest.current_all_algo_open_orders().data() == []


def test_ccxt_places_market_limit_and_stop_orders_and_reads_positions(
    tapes: dict[str, SymbolTape],
) -> None:
    with serving(tapes, START) as ex:
        client = ccxt_client(ex.url)
        symbol = "BTC/USDT:USDT"
        client.load_markets()
        bought = client.create_order(symbol, "market", "buy", 0.01)
        assert bought["id"] and bought["amount"] == 0.01
        [position] = [p for p in client.fetch_positions([symbol]) if p["contracts"]]
        assert position["side"] == "long" and position["contracts"] == 0.01
        entry = float(position["entryPrice"])
        limit = client.create_order(symbol, "limit", "sell", 0.01, round(entry * 1.05, 1),
                                    {"reduceOnly": True})  # fmt: skip
        assert limit["status"] == "open"
        stop = client.create_order(
            symbol,
            "market",
            "sell",
            0.01,
            None,
            {"stopLossPrice": round(entry * 0.9, 1), "reduceOnly": True},
        )
        assert stop["id"]
        # ccxt sends a stop to the Algo Order API, as Binance requires since December 2025.
        [algo] = client.fapiPrivateGetOpenAlgoOrders()
        assert algo["orderType"] == "STOP_MARKET" and float(algo["triggerPrice"]) < entry
        # ...and queries and cancels it there, with its trigger flag.
        trigger = {"trigger": True}
        assert [o["id"] for o in client.fetch_open_orders(symbol, params=trigger)] == [stop["id"]]
        assert client.fetch_order(stop["id"], symbol, trigger)["status"] == "open"
        client.cancel_order(stop["id"], symbol, trigger)
        assert client.fetch_open_orders(symbol, params=trigger) == []
        open_ids = {o["id"] for o in client.fetch_open_orders(symbol)}
        assert limit["id"] in open_ids
        client.cancel_order(limit["id"], symbol)
        assert client.fetch_order(limit["id"], symbol)["status"] == "canceled"
        balance = client.fetch_balance()
        assert 9_990 < balance["USDT"]["total"] < 10_000
        trades = client.fetch_my_trades(symbol)
        assert [t["side"] for t in trades] == ["buy"]
