"""WebSocket clients nobody here wrote, pointed at the local exchange's streams: Binance's
official SDK parses every kline, mark-price and user-data frame into its own pydantic models,
and ccxt.pro's binanceusdm builds candles from the kline stream that match the REST ones."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Any

import pytest

from slt.adapters.exchange.local.market import SymbolTape
from slt.adapters.exchange.local.tapes import load_tapes
from slt.domain.clock import parse_utc_ms
from tests.conftest import CATMAN, CATMAN_BTC_5M
from tests.support.local_exchange import ACCOUNT, Running, real_store, serving

START = parse_utc_ms("2024-01-01")


@pytest.fixture(scope="module")
def tapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SymbolTape]:
    root = tmp_path_factory.mktemp("stream-clients-store")
    store = real_store(root, [CATMAN_BTC_5M, CATMAN / "BTC_USDT_USDT-8h-funding_rate.feather"])
    return load_tapes(store, ["BTCUSDT"], START, None)


def ws_base(ex: Running) -> str:
    return ex.url.replace("http://", "ws://")


async def wait_until(condition: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


def test_binances_sdk_parses_every_kline_and_mark_price_frame_into_its_models(
    tapes: dict[str, SymbolTape], caplog: pytest.LogCaptureFixture
) -> None:
    from binance_common.configuration import ConfigurationWebSocketStreams
    from binance_sdk_derivatives_trading_usds_futures.derivatives_trading_usds_futures import (
        DerivativesTradingUsdsFutures,
    )
    from binance_sdk_derivatives_trading_usds_futures.websocket_streams.models import (
        KlineCandlestickStreamsIntervalEnum,
        KlineCandlestickStreamsResponse,
        MarkPriceStreamResponse,
        MarkPriceStreamUpdateSpeedEnum,
    )

    klines: list[Any] = []
    marks: list[Any] = []

    async def scenario(ex: Running) -> None:
        # The SDK appends /stream and opens /market/stream, /public/stream, /private/stream.
        config = ConfigurationWebSocketStreams(stream_url=ws_base(ex))
        streams = DerivativesTradingUsdsFutures(config_ws_streams=config).websocket_streams
        connection = await streams.create_connection()
        try:
            interval = KlineCandlestickStreamsIntervalEnum["INTERVAL_5m"]
            kline_stream = await connection.kline_candlestick_streams("btcusdt", interval)
            kline_stream.on("message", klines.append)
            speed = MarkPriceStreamUpdateSpeedEnum["UPDATE_SPEED_1s"]
            mark_stream = await connection.mark_price_stream("btcusdt", update_speed=speed)
            mark_stream.on("message", marks.append)
            await wait_until(lambda: sum(k.k.x for k in klines) >= 10 and len(marks) >= 2, 10)
        finally:
            await connection.close_connection(close_session=True)

    with caplog.at_level(logging.WARNING), serving(tapes, START, speed=6000) as ex:
        asyncio.run(asyncio.wait_for(scenario(ex), 30))
    assert all(isinstance(k, KlineCandlestickStreamsResponse) for k in klines)
    assert all(isinstance(m, MarkPriceStreamResponse) for m in marks)
    closed = [k.k for k in klines if k.k.x]
    assert len(closed) >= 10 and all(k.i == "5m" and k.s == "BTCUSDT" for k in closed)
    assert {b.t - a.t for a, b in itertools.pairwise(closed)} == {300_000}
    assert len(marks) >= 2 and all(float(m.p) > 0 and m.T > m.E for m in marks)
    problems = [r.getMessage() for r in caplog.records if r.name.startswith("binance")]
    assert problems == []  # no "Error in callback", no validation failure


def test_binances_sdk_follows_the_user_data_stream_to_its_expiry(
    tapes: dict[str, SymbolTape], caplog: pytest.LogCaptureFixture
) -> None:
    from binance_common.configuration import (
        ConfigurationRestAPI,
        ConfigurationWebSocketStreams,
    )
    from binance_sdk_derivatives_trading_usds_futures.derivatives_trading_usds_futures import (
        DerivativesTradingUsdsFutures,
    )
    from binance_sdk_derivatives_trading_usds_futures.websocket_streams.models import (
        AccountUpdate,
        ListenKeyExpired,
    )

    # Binance's documented ACCOUNT_UPDATE example (reference §7.4), as the order code sends it.
    update = {
        "e": "ACCOUNT_UPDATE", "E": 1564745798939, "T": 1564745798938,
        "a": {
            "m": "ORDER",
            "B": [{"a": "USDT", "wb": "122624.12345678", "cw": "100.12345678",
                   "bc": "50.12345678"}],
            "P": [{"s": "BTCUSDT", "pa": "0", "ep": "0.00000", "bep": "0", "cr": "200", "up": "0",
                   "mt": "isolated", "iw": "0.00000000", "ps": "BOTH"}],
        },
    }  # fmt: skip
    events: list[Any] = []

    async def scenario(ex: Running) -> str:
        client = DerivativesTradingUsdsFutures(
            config_rest_api=ConfigurationRestAPI(
                api_key=ACCOUNT.key, api_secret=ACCOUNT.secret, base_path=ex.url, retries=0
            ),
            config_ws_streams=ConfigurationWebSocketStreams(stream_url=ws_base(ex)),
        )
        key = client.rest_api.start_user_data_stream().data().listen_key
        assert key is not None
        connection = await client.websocket_streams.create_connection()
        try:
            stream = await connection.user_data(key)
            stream.on("message", events.append)
            await asyncio.sleep(0.2)
            ex.exchange.hub.publish_user(ACCOUNT.key, update)
            await wait_until(lambda: len(events) >= 1, 5)
            client.rest_api.close_user_data_stream()
            await wait_until(lambda: len(events) >= 2, 5)
        finally:
            await connection.close_connection(close_session=True)
        return key

    with caplog.at_level(logging.WARNING), serving(tapes, START) as ex:
        key = asyncio.run(asyncio.wait_for(scenario(ex), 30))
    kinds = [type(e.actual_instance) for e in events]
    assert kinds == [AccountUpdate, ListenKeyExpired]
    assert events[0].actual_instance.a.B[0].wb == "122624.12345678"
    assert events[1].actual_instance.listen_key == key
    assert [r.getMessage() for r in caplog.records if r.name.startswith("binance")] == []


def test_ccxt_pro_watch_ohlcv_builds_the_candles_the_rest_api_gives(
    tapes: dict[str, SymbolTape],
) -> None:
    import ccxt.pro

    async def scenario(ex: Running) -> tuple[dict[int, list[float]], list[list[float]]]:
        client = ccxt.pro.binanceusdm({"options": {"fetchCurrencies": False}})
        for name in [k for k in client.urls["api"] if k.startswith("fapi") and k != "fapiData"]:
            client.urls["api"][name] = (
                ex.url + client.urls["api"][name][len("https://fapi.binance.com") :]
            )
        # ccxt turns .../ws into .../market/ws for klines, as for Binance since the split.
        client.urls["api"]["ws"]["linear"] = ws_base(ex) + "/ws"
        seen: dict[int, list[float]] = {}
        try:
            await client.load_markets()
            deadline = time.monotonic() + 10
            while len(seen) < 4 and time.monotonic() < deadline:
                for candle in await client.watch_ohlcv("BTC/USDT:USDT", "5m"):
                    seen[candle[0]] = candle
            first = min(seen)
            rest = await client.fetch_ohlcv("BTC/USDT:USDT", "5m", since=first, limit=3)
        finally:
            await client.close()
        return seen, rest

    with serving(tapes, START, speed=600) as ex:  # a 5m candle lasts half a second
        seen, rest = asyncio.run(asyncio.wait_for(scenario(ex), 30))
    starts = sorted(seen)
    assert len(starts) >= 4 and starts == list(range(starts[0], starts[0] + 300_000 * 4, 300_000))
    # The candles that closed while watching ended exactly as the REST API gives them.
    assert [seen[t] for t in starts[:3]] == rest
