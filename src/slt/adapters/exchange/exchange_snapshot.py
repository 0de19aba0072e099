"""What the exchange holds, read over REST for start-up reconciliation (issue 14 item 5):
the wallet, the positions (with their leverage), the open orders and the open conditional
orders, as the engine's ``Reconciled`` event. The engine decides what to do with it (re-place
a missing stop, cancel its own orphans, adopt or refuse what it did not make)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slt.adapters.exchange.binance_rest import BinanceRest
from slt.engine.messages import ExchangeOrder, ExchangePosition, OrderKind, Reconciled

_KINDS: dict[str, OrderKind] = {"LIMIT": "limit", "MARKET": "market", "STOP_MARKET": "stop_market"}


async def read_exchange(rest: BinanceRest, symbols: Sequence[str], time_ms: int) -> Reconciled:
    """One snapshot of the account for ``symbols``; orders of types the engine never places
    (take-profit-market, trailing, ...) are left out: they are not the bot's to manage."""
    wanted = set(symbols)
    balances = (await rest.signed("GET", "/fapi/v3/balance", weight=5)).body
    risk = (await rest.signed("GET", "/fapi/v2/positionRisk", weight=5)).body
    orders = (await rest.signed("GET", "/fapi/v1/openOrders", weight=40)).body
    algos = (await rest.signed("GET", "/fapi/v1/openAlgoOrders", weight=40)).body
    return snapshot(balances, risk, orders, algos, wanted, time_ms)


def snapshot(
    balances: list[dict[str, Any]],
    risk: list[dict[str, Any]],
    orders: list[dict[str, Any]],
    algos: list[dict[str, Any]],
    symbols: set[str],
    time_ms: int,
) -> Reconciled:
    """The REST answers as ``Reconciled`` (pure: the answers' fields as Binance names them)."""
    wallet = next((float(b["balance"]) for b in balances if b["asset"] == "USDT"), 0.0)
    positions = []
    held: dict[str, float] = {}
    for p in risk:
        amount = float(p["positionAmt"])
        if p["symbol"] in symbols and amount:
            held[p["symbol"]] = abs(amount)
            positions.append(
                ExchangePosition(
                    p["symbol"],
                    1 if amount > 0 else -1,
                    abs(amount),
                    float(p["entryPrice"]),
                    float(p["leverage"]),
                )
            )
    found = [
        ExchangeOrder(o["clientOrderId"], o["symbol"], _KINDS[o["type"]],
                      1 if o["side"] == "BUY" else -1, float(o["origQty"]), float(o["price"]),
                      bool(o["reduceOnly"]))
        for o in orders if o["symbol"] in symbols and o["type"] in _KINDS
    ]  # fmt: skip
    for a in algos:
        if a["symbol"] not in symbols or a["orderType"] != "STOP_MARKET":
            continue
        quantity = held.get(a["symbol"], 0.0) if a["closePosition"] else float(a["quantity"])
        found.append(ExchangeOrder(
            a["clientAlgoId"], a["symbol"], "stop_market", 1 if a["side"] == "BUY" else -1,
            quantity, float(a["triggerPrice"]), bool(a["reduceOnly"] or a["closePosition"]),
        ))  # fmt: skip
    return Reconciled(time_ms, wallet, tuple(positions), tuple(found))
