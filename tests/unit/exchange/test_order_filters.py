"""Binance's filters checked before sending: each rule refuses with its name, a quantity is
never changed to fit, a price is put on the tick, and reduce-only orders skip MIN_NOTIONAL."""

from __future__ import annotations

import math

import pytest

from slt.adapters.exchange.order_filters import Refused, SymbolFilters, check, on_step
from slt.engine.messages import PlaceOrder

INFO = {
    "symbol": "BTCUSDT",
    "filters": [
        {"filterType": "PRICE_FILTER", "minPrice": "261.10", "maxPrice": "809484",
         "tickSize": "0.10"},
        {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "1000", "stepSize": "0.001"},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "0.001", "maxQty": "120",
         "stepSize": "0.001"},
        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
        {"filterType": "MIN_NOTIONAL", "notional": "100"},
        {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500",
         "multiplierDecimal": "4"},
    ],
}  # fmt: skip
F = SymbolFilters.from_exchange_info(INFO)


def order(kind: str = "limit", qty: float = 0.01, price: float = 40_000.0, *,
          reduce_only: bool = False, close: bool = False) -> PlaceOrder:  # fmt: skip
    purpose = "stop" if kind == "stop_market" else "entry"
    return PlaceOrder("t-BTCUSDT-1", "BTCUSDT", kind, purpose, 1, qty, price,  # type: ignore[arg-type]
                      reduce_only, close)  # fmt: skip


def ok(o: PlaceOrder, ref: float | None = 40_000.0, orders: int = 0, algos: int = 0) -> dict:
    return check(o, F, reference_price=ref, open_orders=orders, open_algos=algos)


def test_the_filters_are_read_from_exchange_info() -> None:
    assert str(F.tick) == "0.10" and F.market_max_qty == 120 and F.min_notional == 100
    assert F.percent_up == 1.05 and F.max_num_orders == 200


def test_a_good_limit_order_is_put_on_the_tick_and_keeps_its_quantity() -> None:
    assert ok(order(price=40_000.04)) == {"price": "40000", "quantity": "0.01"}
    assert ok(order(qty=0.1 + 0.2)) == {"price": "40000", "quantity": "0.3"}  # float noise


@pytest.mark.parametrize(
    ("o", "rule"),
    [
        (order(qty=0.0105), "stepSize"),
        (order(qty=0.0), "LOT_SIZE"),
        (order(qty=2_000.0), "maxQty"),
        (order(price=100.0, qty=10.0), "minPrice"),
        (order(price=math.nan), "PRICE_FILTER"),
        (order(qty=0.002), "MIN_NOTIONAL"),
        (order(price=43_000.0), "PERCENT_PRICE"),
        (order(price=37_000.0), "PERCENT_PRICE"),
        (order("market", qty=200.0, price=math.nan), "maxQty"),  # MARKET_LOT_SIZE
        (order("market", qty=0.002, price=math.nan), "MIN_NOTIONAL"),
    ],
)
def test_each_rule_refuses_by_name(o: PlaceOrder, rule: str) -> None:
    with pytest.raises(Refused, match=rule):
        ok(o)


def test_reduce_only_and_close_position_skip_min_notional() -> None:
    assert ok(order("market", qty=0.001, price=math.nan, reduce_only=True)) == {
        "quantity": "0.001", "reduceOnly": True}  # fmt: skip
    assert ok(order("stop_market", qty=0.0, price=39_000.0, close=True)) == {
        "triggerPrice": "39000", "closePosition": True}  # fmt: skip


def test_open_order_limits() -> None:
    with pytest.raises(Refused, match="MAX_NUM_ORDERS"):
        ok(order(), orders=200)
    with pytest.raises(Refused, match="conditional"):
        ok(order("stop_market", price=39_000.0, close=True), algos=200)
    assert ok(order(), orders=199)


def test_without_a_mark_price_the_band_and_market_notional_are_left_to_the_exchange() -> None:
    assert ok(order(price=43_000.0), ref=None)["price"] == "43000"
    assert ok(order("market", qty=0.002, price=math.nan), ref=None) == {"quantity": "0.002"}


def test_on_step() -> None:
    assert on_step(0.3000000000000001, F.step) is not None
    assert on_step(0.0015, F.step) is None
