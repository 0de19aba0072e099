"""The start-up snapshot read from the local exchange: a position with its leverage, a
resting reduce-only target and a close-position stop become the engine's ``Reconciled``."""

from __future__ import annotations

import asyncio

import pytest

from slt.adapters.exchange.binance_rest import BinanceRest
from slt.adapters.exchange.exchange_snapshot import read_exchange
from slt.adapters.exchange.local.market import SymbolTape
from slt.adapters.exchange.local.tapes import load_tapes
from slt.domain.clock import parse_utc_ms
from slt.engine.messages import ExchangeOrder, ExchangePosition, Reconciled
from tests.conftest import CATMAN_BTC_5M, CATMAN_ETH_5M
from tests.support.local_exchange import ACCOUNT, Running, real_store, serving

START = parse_utc_ms("2024-01-01")


@pytest.fixture(scope="module")
def tapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SymbolTape]:
    store = real_store(tmp_path_factory.mktemp("snapshot-store"), [CATMAN_BTC_5M, CATMAN_ETH_5M])
    return load_tapes(store, ["BTCUSDT", "ETHUSDT"], START, None)


def test_the_snapshot_holds_the_position_its_orders_and_nothing_of_other_symbols(
    tapes: dict[str, SymbolTape],
) -> None:
    async def scenario(ex: Running) -> tuple[Reconciled, float, float]:
        async with BinanceRest(ex.url, ACCOUNT.key, ACCOUNT.secret) as rest:
            await rest.signed("POST", "/fapi/v1/leverage", {"symbol": "BTCUSDT", "leverage": 5})
            entry = await rest.submit("/fapi/v1/order", {
                "symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.010",
                "newOrderRespType": "RESULT", "newClientOrderId": "slt-BTC-1"})  # fmt: skip
            price = float(entry.body["avgPrice"])
            target, stop = round(price * 1.05, 1), round(price * 0.95, 1)
            await rest.submit("/fapi/v1/order", {
                "symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
                "quantity": "0.010", "price": target, "reduceOnly": "true",
                "newClientOrderId": "slt-BTC-3"})  # fmt: skip
            await rest.submit("/fapi/v1/algoOrder", {
                "algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": "SELL",
                "type": "STOP_MARKET", "triggerPrice": stop, "closePosition": "true",
                "clientAlgoId": "slt-BTC-2"})  # fmt: skip
            await rest.submit(
                "/fapi/v1/order",
                {  # another symbol: not the bot's here
                    "symbol": "ETHUSDT",
                    "side": "SELL",
                    "type": "MARKET",
                    "quantity": "0.100",
                },
            )
            return await read_exchange(rest, ["BTCUSDT"], 1), price, stop

    with serving(tapes, START) as ex:
        seen, price, stop = asyncio.run(asyncio.wait_for(scenario(ex), 30))
        wallet = ex.exchange.accounts[ACCOUNT.key].wallet
    assert seen.wallet_balance == pytest.approx(wallet)
    assert seen.positions == (ExchangePosition("BTCUSDT", 1, 0.010, pytest.approx(price), 5.0),)
    assert set(seen.open_orders) == {
        ExchangeOrder("slt-BTC-3", "BTCUSDT", "limit", -1, 0.010, round(price * 1.05, 1), True),
        ExchangeOrder("slt-BTC-2", "BTCUSDT", "stop_market", -1, 0.010, stop, True),
    }
