"""Binance's order filters checked before an order is sent (issue 14 item 3), so a bad order
becomes a clear rejection event naming the rule instead of a ``-1111``/``-4164`` round trip
that costs weight and time.

Pure: ``SymbolFilters.from_exchange_info`` reads one ``exchangeInfo`` symbol, ``check`` takes
an engine ``PlaceOrder`` and answers the Binance parameters to send or the reason it would be
refused. Quantities are never changed to fit (a silently smaller order is a different trade):
a quantity off the step is refused; a price is put on the tick, as the engine's own rules do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from slt.engine.messages import PlaceOrder

MAX_OPEN_ALGO_ORDERS = 200  # across all symbols since 2025-12-29 (reference §2.2)
_EPS = 1e-9


@dataclass(frozen=True)
class SymbolFilters:
    symbol: str
    tick: Decimal
    min_price: Decimal
    max_price: Decimal
    step: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_step: Decimal
    market_min_qty: Decimal
    market_max_qty: Decimal
    min_notional: float
    percent_up: float  # PERCENT_PRICE multipliers (0: no band)
    percent_down: float
    max_num_orders: int

    @classmethod
    def from_exchange_info(cls, entry: Mapping[str, Any]) -> SymbolFilters:
        f = {x.get("filterType"): x for x in entry.get("filters", [])}
        price, lot = f.get("PRICE_FILTER", {}), f.get("LOT_SIZE", {})
        market = f.get("MARKET_LOT_SIZE", lot)
        band = f.get("PERCENT_PRICE", {})
        return cls(
            str(entry["symbol"]), _dec(price, "tickSize"), _dec(price, "minPrice"),
            _dec(price, "maxPrice"), _dec(lot, "stepSize"), _dec(lot, "minQty"),
            _dec(lot, "maxQty"), _dec(market, "stepSize"), _dec(market, "minQty"),
            _dec(market, "maxQty"),
            float(f.get("MIN_NOTIONAL", {}).get("notional", 0) or 0),
            float(band.get("multiplierUp", 0) or 0), float(band.get("multiplierDown", 0) or 0),
            int(f.get("MAX_NUM_ORDERS", {}).get("limit", 0) or 0),
        )  # fmt: skip


def _dec(filt: Mapping[str, Any], key: str) -> Decimal:
    return Decimal(str(filt.get(key, "0") or "0"))


class Refused(ValueError):
    """The order breaks a filter; the message names the rule and the numbers."""


def on_step(value: float, step: Decimal) -> Decimal | None:
    """``value`` as a multiple of ``step`` if it is one (to float precision), else None."""
    if step <= 0:
        return Decimal(repr(value))
    units = Decimal(repr(value)) / step
    whole = units.to_integral_value(ROUND_HALF_UP)
    if abs(units - whole) > Decimal(str(_EPS)) * max(Decimal(1), abs(units)):
        return None
    return (whole * step).normalize()


def on_tick(value: float, tick: Decimal) -> Decimal:
    if tick <= 0:
        return Decimal(repr(value))
    return ((Decimal(repr(value)) / tick).to_integral_value(ROUND_HALF_UP) * tick).normalize()


def text(value: Decimal) -> str:
    return format(value, "f")


def check(
    order: PlaceOrder,
    f: SymbolFilters,
    *,
    reference_price: float | None,
    open_orders: int,
    open_algos: int,
) -> dict[str, Any]:
    """The Binance parameters of ``order`` (without symbol/side/client id), or ``Refused``.

    ``reference_price`` (the mark price, when the caller has one) prices a market order's
    notional and the PERCENT_PRICE band; ``open_orders`` counts this symbol's open and
    in-flight plain orders, ``open_algos`` all open conditional orders of the account."""
    market = order.kind == "market"
    conditional = order.kind == "stop_market"
    params: dict[str, Any] = {}
    if conditional:
        if open_algos >= MAX_OPEN_ALGO_ORDERS:
            raise Refused(f"{MAX_OPEN_ALGO_ORDERS} conditional orders are open already "
                          "(Binance's account-wide limit)")  # fmt: skip
    elif f.max_num_orders and open_orders >= f.max_num_orders:
        raise Refused(f"MAX_NUM_ORDERS: {open_orders} orders of {f.symbol} are open, "
                      f"the limit is {f.max_num_orders}")  # fmt: skip
    price: Decimal | None = None
    if not market:
        if not order.price == order.price or order.price <= 0:  # NaN or not positive
            raise Refused(f"PRICE_FILTER: price {order.price} is not a positive number")
        price = on_tick(order.price, f.tick)
        if f.min_price > 0 and price < f.min_price:
            raise Refused(f"PRICE_FILTER: price {text(price)} is below minPrice {f.min_price}")
        if f.max_price > 0 and price > f.max_price:
            raise Refused(f"PRICE_FILTER: price {text(price)} is above maxPrice {f.max_price}")
        params["triggerPrice" if conditional else "price"] = text(price)
    if order.close_position:
        if not conditional:
            raise Refused("closePosition is for stop orders only")
        params["closePosition"] = True
        return params
    step, low, high = (
        (f.market_step, f.market_min_qty, f.market_max_qty) if market or conditional
        else (f.step, f.min_qty, f.max_qty)
    )  # fmt: skip
    if not order.quantity == order.quantity or order.quantity <= 0:
        raise Refused(f"LOT_SIZE: quantity {order.quantity} is not a positive number")
    qty = on_step(order.quantity, step)
    if qty is None:
        raise Refused(f"LOT_SIZE: quantity {order.quantity} is not a multiple of stepSize {step}")
    if qty < low:
        raise Refused(f"LOT_SIZE: quantity {text(qty)} is below minQty {low}")
    if high > 0 and qty > high:
        raise Refused(f"LOT_SIZE: quantity {text(qty)} is above maxQty {high}")
    params["quantity"] = text(qty)
    if order.reduce_only:
        params["reduceOnly"] = True
    notional_price = float(price) if price is not None else reference_price
    if not order.reduce_only and notional_price is not None and f.min_notional > 0:
        notional = float(qty) * notional_price
        if notional < f.min_notional - _EPS:
            raise Refused(f"MIN_NOTIONAL: {text(qty)} x {notional_price:g} = {notional:.4f} "
                          f"USDT is below {f.min_notional:g}")  # fmt: skip
    if order.kind == "limit" and reference_price and f.percent_up > 0 and price is not None:
        up, down = reference_price * f.percent_up, reference_price * f.percent_down
        if float(price) > up:
            raise Refused(f"PERCENT_PRICE: limit {text(price)} is above {up:.8g} "
                          f"(mark {reference_price:g} x {f.percent_up:g})")  # fmt: skip
        if float(price) < down:
            raise Refused(f"PERCENT_PRICE: limit {text(price)} is below {down:.8g} "
                          f"(mark {reference_price:g} x {f.percent_down:g})")  # fmt: skip
    return params
