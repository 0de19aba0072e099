"""JSON of orders, algo orders and trades as Binance answers and streams them (reference §2.5,
§2.5b, §7.2-§7.4): REST bodies and the user-data events, field for field as the official SDK's
models read them. Times are wire times; numbers are strings with the symbol's decimals."""

from __future__ import annotations

from typing import Any

from slt.adapters.exchange.local.answers import price, qty
from slt.adapters.exchange.local.market import SymbolTape
from slt.adapters.exchange.local.order_book import AlgoOrder, LocalOrder


def _avg(tape: SymbolTape, value: float) -> str:
    return f"{value:.{max(tape.price_decimals, 5)}f}" if value else "0.00"


def order_body(tape: SymbolTape, o: LocalOrder) -> dict[str, Any]:
    """``POST/GET/DELETE /fapi/v1/order`` and the order lists."""
    return {
        "orderId": o.order_id, "symbol": o.symbol, "status": o.status,
        "clientOrderId": o.client_id, "price": price(tape, o.price),
        "avgPrice": _avg(tape, o.avg_price), "origQty": qty(tape, o.quantity),
        "executedQty": qty(tape, o.executed), "cumQty": qty(tape, o.executed),
        "cumQuote": f"{o.cum_quote:.5f}", "timeInForce": o.time_in_force, "type": o.type,
        "reduceOnly": o.reduce_only, "closePosition": o.close_position, "side": o.side,
        "positionSide": "BOTH", "stopPrice": price(tape, o.stop_price),
        "workingType": o.working_type, "priceProtect": o.price_protect,
        "origType": o.orig_type, "priceMatch": "NONE", "selfTradePreventionMode": "EXPIRE_MAKER",
        "goodTillDate": 0, "time": o.time_ms, "updateTime": o.update_ms,
    }  # fmt: skip


def algo_body(tape: SymbolTape, a: AlgoOrder, actual: LocalOrder | None) -> dict[str, Any]:
    """``POST/GET/DELETE /fapi/v1/algoOrder`` and ``openAlgoOrders``; a close-position order
    shows no quantity (reference §2.5b)."""
    body: dict[str, Any] = {
        "algoId": a.algo_id, "clientAlgoId": a.client_algo_id, "algoType": "CONDITIONAL",
        "orderType": a.order_type, "symbol": a.symbol, "side": a.side, "positionSide": "BOTH",
        "timeInForce": a.time_in_force,
        "quantity": None if a.close_position else qty(tape, a.quantity),
        "algoStatus": a.status, "triggerPrice": price(tape, a.trigger_price),
        "price": price(tape, a.price), "icebergQuantity": None,
        "selfTradePreventionMode": "EXPIRE_MAKER", "workingType": a.working_type,
        "priceMatch": "NONE", "closePosition": a.close_position,
        "priceProtect": a.price_protect, "reduceOnly": a.reduce_only,
        "activatePrice": price(tape, a.activate_price) if a.activate_price else "",
        "callbackRate": f"{a.callback_rate:g}" if a.callback_rate else "",
        "createTime": a.create_ms, "updateTime": a.update_ms, "triggerTime": a.trigger_ms,
        "goodTillDate": 0,
    }  # fmt: skip
    body["actualOrderId"] = str(actual.order_id) if actual is not None else ""
    body["actualPrice"] = _avg(tape, actual.avg_price) if actual is not None else "0.00"
    body["actualQty"] = qty(tape, actual.executed) if actual is not None else qty(tape, 0.0)
    body["actualType"] = actual.type if actual is not None else ""
    return body


def order_update(
    tape: SymbolTape,
    o: LocalOrder,
    execution: str,
    event_ms: int,
    *,
    last_qty: float = 0.0,
    last_price: float = 0.0,
    fee: float = 0.0,
    trade_id: int = 0,
    maker: bool = False,
    realized: float = 0.0,
) -> dict[str, Any]:
    """``ORDER_TRADE_UPDATE``: ``execution`` NEW, TRADE, CANCELED, EXPIRED or CALCULATED."""
    return {
        "e": "ORDER_TRADE_UPDATE", "E": event_ms, "T": event_ms,
        "o": {
            "s": o.symbol, "c": o.client_id, "S": o.side, "o": o.type, "f": o.time_in_force,
            "q": qty(tape, o.quantity), "p": price(tape, o.price), "ap": _avg(tape, o.avg_price),
            "sp": price(tape, o.stop_price), "x": execution, "X": o.status, "i": o.order_id,
            "l": qty(tape, last_qty), "z": qty(tape, o.executed),
            "L": price(tape, last_price), "N": "USDT", "n": f"{fee:.8f}", "T": event_ms,
            "t": trade_id, "b": "0", "a": "0", "m": maker, "R": o.reduce_only,
            "wt": o.working_type, "ot": o.orig_type, "ps": "BOTH", "cp": o.close_position,
            "rp": f"{realized:.8f}", "pP": o.price_protect, "si": 0, "ss": 0,
            "V": "EXPIRE_MAKER", "pm": "NONE", "gtd": 0, "er": str(o.expiry_reason),
        },
    }  # fmt: skip


def trade_lite(
    tape: SymbolTape, o: LocalOrder, event_ms: int, last_qty: float, last_price: float,
    trade_id: int, maker: bool,
) -> dict[str, Any]:  # fmt: skip
    """``TRADE_LITE``: the fill without commission or status (reference §7.4)."""
    return {
        "e": "TRADE_LITE", "E": event_ms, "T": event_ms, "s": o.symbol,
        "q": qty(tape, o.quantity), "p": price(tape, o.price), "m": maker, "c": o.client_id,
        "S": o.side, "L": price(tape, last_price), "l": qty(tape, last_qty), "t": trade_id,
        "i": o.order_id,
    }  # fmt: skip


def algo_update(tape: SymbolTape, a: AlgoOrder, event_ms: int,
                actual: LocalOrder | None) -> dict[str, Any]:  # fmt: skip
    """``ALGO_UPDATE`` (reference §7.3); ``rm`` says why a triggered order was refused."""
    body: dict[str, Any] = {
        "caid": a.client_algo_id, "aid": a.algo_id, "at": "CONDITIONAL", "o": a.order_type,
        "s": a.symbol, "S": a.side, "ps": "BOTH", "f": a.time_in_force,
        "q": qty(tape, a.quantity), "X": a.status,
        "ai": str(actual.order_id) if actual is not None else "",
        "ap": _avg(tape, actual.avg_price) if actual is not None else "0.00",
        "aq": qty(tape, actual.executed if actual is not None else 0.0),
        "act": actual.type if actual is not None else "",
        "tp": price(tape, a.trigger_price), "p": price(tape, a.price), "V": "EXPIRE_MAKER",
        "wt": a.working_type, "pm": "NONE", "cp": a.close_position, "pP": a.price_protect,
        "R": a.reduce_only, "tt": a.trigger_ms, "gtd": 0, "rm": a.reject_reason,
    }  # fmt: skip
    if a.order_type == "TRAILING_STOP_MARKET":
        body["ia"] = a.activated
    return {"e": "ALGO_UPDATE", "T": event_ms, "E": event_ms, "o": body}
