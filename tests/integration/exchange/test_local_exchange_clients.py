"""Clients nobody here wrote, pointed at the local exchange: ccxt's binanceusdm and Binance's
official SDK read time, markets, candles, funding and the balance, and parse every answer
into their own models (the SDK validates with pydantic)."""

from __future__ import annotations

import itertools

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


def test_ccxt_binanceusdm_loads_markets_candles_funding_and_the_signed_balance(
    tapes: dict[str, SymbolTape],
) -> None:
    import ccxt

    with serving(tapes, START) as ex:
        # fetchCurrencies reads Binance's spot wallet API (sapi), which is no part of futures.
        client = ccxt.binanceusdm({"apiKey": ACCOUNT.key, "secret": ACCOUNT.secret,
                                   "options": {"fetchCurrencies": False}})  # fmt: skip
        for name in [k for k in client.urls["api"] if k.startswith("fapi") and k != "fapiData"]:
            client.urls["api"][name] = (
                ex.url + client.urls["api"][name][len("https://fapi.binance.com") :]
            )
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
