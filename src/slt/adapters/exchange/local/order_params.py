"""A new order's parameters checked as Binance checks them (reference §2.5, §2.5b, §2.2
filters, §5 codes): every refusal is Binance's code and message, nothing reaches the matcher
half-checked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from slt.adapters.exchange.local import codes
from slt.adapters.exchange.local.market import SymbolTape
from slt.adapters.exchange.local.order_book import (
    CONDITIONAL_TYPES,
    LIMIT,
    MARKET,
    STOP,
    STOP_MARKET,
    TAKE_PROFIT,
    TAKE_PROFIT_MARKET,
    TRAILING_STOP_MARKET,
)
from slt.errors import ExchangeRejected

CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
DECIMAL = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,20})?$")
DECIMAL_RANGE = "^([0-9]{1,20})(\\.[0-9]{1,20})?$"
TIME_IN_FORCE = ("GTC", "IOC", "FOK", "GTX")
LIMIT_MAX_QTY = 1_000.0  # LOT_SIZE maxQty of exchangeInfo
MARKET_MAX_QTY = 120.0  # MARKET_LOT_SIZE maxQty
PERCENT_UP, PERCENT_DOWN = 1.1, 0.5454  # PERCENT_PRICE of exchangeInfo
CALLBACK_MIN, CALLBACK_MAX = 0.1, 20.0  # %, the maximum since 2026-10-23 (reference §1)


@dataclass(frozen=True)
class OrderRequest:
    """A checked order; ``client_id`` None: the exchange names it."""

    symbol: str
    side: str
    type: str
    quantity: float  # 0.0 with close_position
    price: float = 0.0
    time_in_force: str = "GTC"
    reduce_only: bool = False
    close_position: bool = False
    client_id: str | None = None
    respond_result: bool = False
    trigger_price: float = 0.0
    working_type: str = "CONTRACT_PRICE"
    price_protect: bool = False
    activate_price: float = 0.0
    callback_rate: float = 0.0


def _bool(params: dict[str, str], name: str) -> bool:
    text = params.get(name)
    if text is None or text == "":
        return False
    if text.lower() not in ("true", "false"):
        raise codes.invalid_value(name)
    return text.lower() == "true"


def _decimal(params: dict[str, str], name: str) -> Decimal | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    if not DECIMAL.match(text):
        raise codes.illegal_chars(name, DECIMAL_RANGE)
    try:
        return Decimal(text)
    except InvalidOperation as exc:  # the pattern admits only decimals; kept for safety
        raise codes.illegal_chars(name, DECIMAL_RANGE) from exc


def _on_grid(value: Decimal, increment: float, off_grid: ExchangeRejected) -> float:
    step = Decimal(repr(increment))
    exponent = value.normalize().as_tuple().exponent
    digits = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    step_exponent = step.normalize().as_tuple().exponent
    allowed = -step_exponent if isinstance(step_exponent, int) and step_exponent < 0 else 0
    if digits > allowed:
        raise codes.bad_precision()
    if value % step != 0:
        raise off_grid
    return float(value)


def client_id(params: dict[str, str], *names: str) -> str | None:
    """The first of ``names`` given: Binance's pattern, at most 36 characters."""
    for name in names:
        text = params.get(name)
        if text:
            if len(text) > 36:
                raise codes.client_id_too_long()
            if not CLIENT_ID.match(text):
                raise codes.illegal_chars(name, CLIENT_ID.pattern)
            return text
    return None


def _price(params: dict[str, str], name: str, tape: SymbolTape) -> float:
    value = _decimal(params, name)
    if value is None:
        raise codes.mandatory(name)
    if value <= 0:
        raise codes.invalid_value(name)
    return _on_grid(value, tape.rules.tick_size, codes.price_off_tick())


def parse_order(params: dict[str, str], tape: SymbolTape, *, algo: bool) -> OrderRequest:
    """``POST /fapi/v1/order`` (``algo`` False) or ``/fapi/v1/algoOrder`` parameters, checked
    in the order Binance checks them; -4120 for a conditional type sent to the order endpoint.
    """
    side = params.get("side")
    if not side:
        raise codes.mandatory("side")
    if side not in ("BUY", "SELL"):
        raise codes.bad_side()
    kind = params.get("type")
    if not kind:
        raise codes.mandatory("type")
    if algo:
        algo_type = params.get("algoType")
        if not algo_type:
            raise codes.mandatory("algoType")
        if algo_type != "CONDITIONAL":
            raise codes.invalid_value("algoType")
        if kind not in CONDITIONAL_TYPES:
            raise codes.bad_order_type()
    elif kind in CONDITIONAL_TYPES:
        raise codes.use_algo_api()
    elif kind not in (MARKET, LIMIT):
        raise codes.bad_order_type()
    position_side = params.get("positionSide", "BOTH") or "BOTH"
    if position_side != "BOTH":
        raise codes.position_side_mismatch()  # One-way Mode: only BOTH
    close_position = algo and _bool(params, "closePosition")
    if close_position and kind not in (STOP_MARKET, TAKE_PROFIT_MARKET):
        raise codes.invalid_value("closePosition")
    reduce_only = _bool(params, "reduceOnly")
    if close_position and "reduceOnly" in params:
        raise codes.not_required("reduceOnly")
    needs_price = kind in (LIMIT, STOP, TAKE_PROFIT)
    tif = params.get("timeInForce") or ""
    if needs_price:
        if not tif:
            if kind == LIMIT:
                raise codes.mandatory("timeInForce")
            tif = "GTC"
        if tif not in TIME_IN_FORCE:
            raise codes.bad_time_in_force()
    else:
        tif = "GTC" if not tif or kind != MARKET else tif
    quantity = _decimal(params, "quantity")
    if close_position:
        if quantity is not None:
            raise codes.not_required("quantity")
        qty = 0.0
    else:
        if quantity is None:
            raise codes.mandatory("quantity")
        if quantity <= 0:
            raise codes.qty_not_positive()
        qty = _on_grid(quantity, tape.rules.step_size, codes.qty_off_step())
        if qty < tape.rules.step_size:
            raise codes.qty_not_positive()
        if qty > (MARKET_MAX_QTY if kind.endswith(MARKET) else LIMIT_MAX_QTY):
            raise codes.qty_too_large()
    if needs_price:
        price = _price(params, "price", tape)
    else:
        if params.get("price") and kind == MARKET:
            raise codes.not_required("price")
        price = 0.0
    trigger = 0.0
    activate, callback = 0.0, 0.0
    if kind in (STOP_MARKET, TAKE_PROFIT_MARKET, STOP, TAKE_PROFIT):
        trigger = _price(params, "triggerPrice", tape)
    elif kind == TRAILING_STOP_MARKET:
        rate = _decimal(params, "callbackRate")
        if rate is None:
            raise codes.mandatory("callbackRate")
        callback = float(rate)
        if not CALLBACK_MIN <= callback <= CALLBACK_MAX:
            raise codes.invalid_value("callbackRate")
        if params.get("activatePrice"):
            activate = _price(params, "activatePrice", tape)
    working = params.get("workingType") or "CONTRACT_PRICE"
    if working not in ("CONTRACT_PRICE", "MARK_PRICE"):
        raise codes.invalid_value("workingType")
    resp = params.get("newOrderRespType") or ("RESULT" if algo else "ACK")
    if resp not in ("ACK", "RESULT"):
        raise codes.invalid_value("newOrderRespType")
    ids = ("clientAlgoId", "newClientOrderId") if algo else ("newClientOrderId",)
    return OrderRequest(
        symbol=tape.symbol, side=side, type=kind, quantity=qty, price=price,
        time_in_force=tif, reduce_only=reduce_only, close_position=close_position,
        client_id=client_id(params, *ids), respond_result=resp == "RESULT",
        trigger_price=trigger, working_type=working, price_protect=_bool(params, "priceProtect"),
        activate_price=activate, callback_rate=callback,
    )  # fmt: skip


def check_price_band(request: OrderRequest, mark: float, tape: SymbolTape) -> None:
    """PERCENT_PRICE: a limit price within [mark x 0.5454, mark x 1.1] (the reference price is
    not documented; the mark is the nearest documented relative)."""
    if request.type not in (LIMIT, STOP, TAKE_PROFIT) or mark <= 0:
        return
    decimals = tape.price_decimals
    if request.price > mark * PERCENT_UP:
        raise codes.price_above_band(f"{mark * PERCENT_UP:.{decimals}f}")
    if request.price < mark * PERCENT_DOWN:
        raise codes.price_below_band(f"{mark * PERCENT_DOWN:.{decimals}f}")


def check_min_notional(request: OrderRequest, reference_price: float, tape: SymbolTape) -> None:
    """MIN_NOTIONAL, unless reduce-only (or close-position)."""
    if request.reduce_only or request.close_position:
        return
    price = request.price if request.type == LIMIT else reference_price
    if request.quantity * price < tape.rules.min_notional - 1e-9:
        minimum = tape.rules.min_notional
        raise codes.min_notional(f"{minimum:g}")
