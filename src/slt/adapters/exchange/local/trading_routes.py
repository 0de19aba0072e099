"""The local exchange's trading and account endpoints (reference §2.1, §2.5-§2.7): orders,
algo orders, positions, account, balance and the symbol's configuration, for one API account.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from slt.adapters.exchange.local import codes
from slt.adapters.exchange.local import order_answers as answer
from slt.adapters.exchange.local.account import Account, Desk, max_notional
from slt.adapters.exchange.local.answers import price as price_text
from slt.adapters.exchange.local.answers import qty as qty_text
from slt.adapters.exchange.local.order_book import NEW, LocalOrder
from slt.adapters.exchange.local.order_params import (
    check_min_notional,
    check_price_band,
    client_id,
    parse_order,
)
from slt.errors import ExchangeRejected

if TYPE_CHECKING:
    from slt.adapters.exchange.local.server import Call, LocalExchange

MAX_BATCH = 5
_T = TypeVar("_T")


def _account(ex: LocalExchange, call: Call) -> Account:
    assert call.account is not None
    return ex.accounts[call.account.key]


def _desk(ex: LocalExchange, call: Call) -> Desk:
    return _account(ex, call).desk(ex.tape(call.params).symbol)


def _desks(ex: LocalExchange, call: Call) -> list[Desk]:
    """The one symbol asked for, or every symbol of the account."""
    if call.params.get("symbol"):
        return [_desk(ex, call)]
    return list(_account(ex, call).desks.values())


def _id(params: dict[str, str], name: str) -> int | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    if not text.isdigit() or len(text) > 20:
        raise codes.illegal_chars(name, "^[0-9]{1,20}$")
    return int(text)


def _f(value: float) -> str:
    return f"{value:.8f}"


# -- orders ---------------------------------------------------------------------------------


def _place(ex: LocalExchange, account: Account, params: dict[str, str]) -> dict[str, Any]:
    tape = ex.tape(params)
    request = parse_order(params, tape, algo=False)
    now = ex.clock.history_now()
    mark = account.mark(account.desk(tape.symbol), now)
    check_price_band(request, mark, tape)
    check_min_notional(request, mark, tape)
    order, events = account.place(request, now)
    ex.faults.remember_new([order.order_id], ex.wall())
    ex.publish_all(account.api_key, events)
    shown = order if request.respond_result else _as_accepted(order)
    return answer.order_body(tape, shown)


def _as_accepted(order: LocalOrder) -> LocalOrder:
    """An ``ACK`` answer: the order as it was accepted, before it filled."""
    return dataclasses.replace(
        order, status=NEW, executed=0.0, cum_quote=0.0, update_ms=order.time_ms
    )


async def new_order(ex: LocalExchange, call: Call) -> Any:
    return _place(ex, _account(ex, call), call.params)


async def batch_orders(ex: LocalExchange, call: Call) -> Any:
    """Up to five orders; each answer is the order or its error, in the request's order."""
    text = call.params.get("batchOrders")
    if not text:
        raise codes.mandatory("batchOrders")
    try:
        items = json.loads(text)
    except ValueError as exc:
        raise codes.invalid_value("batchOrders") from exc
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise codes.invalid_value("batchOrders")
    if not 1 <= len(items) <= MAX_BATCH:
        raise codes.bad_batch_size()
    account = _account(ex, call)
    results: list[Any] = []
    for item in items:
        params = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in item.items()}
        try:
            results.append(_place(ex, account, params))
        except ExchangeRejected as exc:
            results.append({"code": exc.code, "msg": exc.msg})
    return results


def _lookup(ex: LocalExchange, call: Call) -> tuple[Desk, LocalOrder]:
    desk = _desk(ex, call)
    order_id = _id(call.params, "orderId")
    client = call.params.get("origClientOrderId") or None
    if order_id is None and client is None:
        raise codes.either_id(("orderId", "origClientOrderId"))
    order = _account(ex, call).find(desk, order_id, client)
    if ex.faults.hidden(order.order_id, ex.wall()):  # a fault: Binance "forgets" it a while
        raise codes.no_such_order()
    return desk, order


async def query_order(ex: LocalExchange, call: Call) -> Any:
    desk, order = _lookup(ex, call)
    return answer.order_body(desk.tape, order)


async def open_order(ex: LocalExchange, call: Call) -> Any:
    desk, order = _lookup(ex, call)
    if not order.is_open:
        raise codes.no_such_order()
    return answer.order_body(desk.tape, order)


def _to_cancel(lookup: Callable[[LocalExchange, Call], _T], ex: LocalExchange, call: Call) -> _T:
    """A cancel of an order Binance cannot find answers -2011, not a query's -2013."""
    try:
        return lookup(ex, call)
    except ExchangeRejected as exc:
        if exc.code == -2013:
            raise codes.unknown_order_sent() from None
        raise


async def cancel_order(ex: LocalExchange, call: Call) -> Any:
    desk, order = _to_cancel(_lookup, ex, call)
    account = _account(ex, call)
    ex.publish_all(account.api_key, account.cancel(desk, order, ex.clock.history_now()))
    return answer.order_body(desk.tape, order)


async def cancel_all(ex: LocalExchange, call: Call) -> Any:
    desk = _desk(ex, call)
    account = _account(ex, call)
    now = ex.clock.history_now()
    for order in desk.open_orders():
        ex.publish_all(account.api_key, account.cancel(desk, order, now))
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


async def open_orders(ex: LocalExchange, call: Call) -> Any:
    desks = _desks(ex, call)
    return [answer.order_body(d.tape, o) for d in desks for o in d.open_orders()]


async def all_orders(ex: LocalExchange, call: Call) -> Any:
    desks = _desks(ex, call)
    start, end = _id(call.params, "startTime"), _id(call.params, "endTime")
    first = _id(call.params, "orderId")
    limit = _id(call.params, "limit") or 500
    if not 1 <= limit <= 1000:
        raise codes.invalid_value("limit")
    rows = [
        (d, o)
        for d in desks
        for o in d.orders.values()
        if (first is None or o.order_id >= first)
        and (start is None or o.time_ms >= start)
        and (end is None or o.time_ms <= end)
    ]
    rows.sort(key=lambda r: r[1].order_id)
    rows = rows[:limit] if first is not None or start is not None else rows[-limit:]
    return [answer.order_body(d.tape, o) for d, o in rows]


async def user_trades(ex: LocalExchange, call: Call) -> Any:
    desk = _desk(ex, call)
    limit = _id(call.params, "limit") or 500
    if not 1 <= limit <= 1000:
        raise codes.invalid_value("limit")
    tape = desk.tape
    return [
        {
            "buyer": t.side == "BUY", "commission": _f(t.commission), "commissionAsset": "USDT",
            "id": t.trade_id, "maker": t.maker, "orderId": t.order_id,
            "price": price_text(tape, t.price), "qty": qty_text(tape, t.qty),
            "quoteQty": _f(t.price * t.qty), "realizedPnl": _f(t.realized), "side": t.side,
            "positionSide": "BOTH", "symbol": t.symbol, "time": t.time_ms,
        }
        for t in desk.trades[-limit:]
    ]  # fmt: skip


async def income(ex: LocalExchange, call: Call) -> Any:
    account = _account(ex, call)
    kind = call.params.get("incomeType")
    symbol = call.params.get("symbol", "").upper()
    rows = [
        i for i in account.income
        if (not kind or i.kind == kind) and (not symbol or i.symbol == symbol)
    ]  # fmt: skip
    limit = _id(call.params, "limit") or 100
    return [
        {"symbol": i.symbol, "incomeType": i.kind, "income": _f(i.amount), "asset": "USDT",
         "info": i.kind, "time": i.time_ms, "tranId": i.time_ms, "tradeId": str(i.trade_id or "")}
        for i in rows[-limit:]
    ]  # fmt: skip


# -- algo orders ----------------------------------------------------------------------------


async def new_algo_order(ex: LocalExchange, call: Call) -> Any:
    tape = ex.tape(call.params)
    request = parse_order(call.params, tape, algo=True)
    account = _account(ex, call)
    algo, events = account.place_algo(request, ex.clock.history_now())
    ex.faults.remember_new([algo.algo_id], ex.wall())
    ex.publish_all(account.api_key, events)
    return answer.algo_body(tape, algo, None)


def _algo_lookup(ex: LocalExchange, call: Call) -> tuple[Desk, Any]:
    account = _account(ex, call)
    algo_id = _id(call.params, "algoId")
    client = client_id(call.params, "clientAlgoId")
    if algo_id is None and client is None:
        raise codes.either_id(("algoId", "clientAlgoId"))
    desk = _desk(ex, call) if call.params.get("symbol") else None
    algo = account.find_algo(desk, algo_id, client)
    if ex.faults.hidden(algo.algo_id, ex.wall()):
        raise codes.no_such_order()
    return account.desk(algo.symbol), algo


async def query_algo_order(ex: LocalExchange, call: Call) -> Any:
    desk, algo = _algo_lookup(ex, call)
    return answer.algo_body(desk.tape, algo, desk.orders.get(algo.actual_order_id))


async def cancel_algo_order(ex: LocalExchange, call: Call) -> Any:
    desk, algo = _to_cancel(_algo_lookup, ex, call)
    account = _account(ex, call)
    ex.publish_all(account.api_key, account.cancel_algo(desk, algo, ex.clock.history_now()))
    return {"algoId": algo.algo_id, "clientAlgoId": algo.client_algo_id, "code": "200",
            "msg": "success"}  # fmt: skip


async def open_algo_orders(ex: LocalExchange, call: Call) -> Any:
    desks = _desks(ex, call)
    algo_id = _id(call.params, "algoId")
    return [
        answer.algo_body(d.tape, a, None)
        for d in desks
        for a in d.open_algos()
        if algo_id is None or a.algo_id == algo_id
    ]


async def all_algo_orders(ex: LocalExchange, call: Call) -> Any:
    desk = _desk(ex, call)
    limit = _id(call.params, "limit") or 500
    rows = sorted(desk.algos.values(), key=lambda a: a.algo_id)[-limit:]
    return [answer.algo_body(desk.tape, a, desk.orders.get(a.actual_order_id)) for a in rows]


async def cancel_algo_open_orders(ex: LocalExchange, call: Call) -> Any:
    desk = _desk(ex, call)
    account = _account(ex, call)
    now = ex.clock.history_now()
    for algo in desk.open_algos():
        ex.publish_all(account.api_key, account.cancel_algo(desk, algo, now))
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


# -- positions, account, balance ------------------------------------------------------------


def _position_numbers(account: Account, desk: Desk, now: int) -> dict[str, Any]:
    tape = desk.tape
    mark = account.mark(desk, now)
    notional = desk.amt * mark
    isolated = desk.margin_type == "ISOLATED"
    margin = account.position_margin(desk, now)
    return {
        "symbol": desk.symbol, "positionSide": "BOTH",
        "positionAmt": f"{desk.amt:.{tape.qty_decimals}f}",
        "entryPrice": f"{desk.entry:.8f}".rstrip("0").rstrip(".") if desk.side else "0.0",
        "breakEvenPrice": f"{desk.entry:.8f}" if desk.side else "0.0",
        "markPrice": f"{mark:.8f}", "unRealizedProfit": _f(account.unrealized(desk, now)),
        "liquidationPrice": f"{desk.liquidation_price():.8f}" if desk.side else "0",
        "isolatedMargin": _f(margin + account.unrealized(desk, now)) if isolated else "0",
        "notional": _f(notional), "marginAsset": "USDT",
        "isolatedWallet": _f(desk.isolated_wallet()) if isolated else "0",
        "initialMargin": _f(margin + account.order_margin(desk, now)),
        "maintMargin": _f(desk.maintenance(mark)), "positionInitialMargin": _f(margin),
        "openOrderInitialMargin": _f(account.order_margin(desk, now)), "adl": 0,
        "bidNotional": "0", "askNotional": "0", "updateTime": desk.position_ms,
    }  # fmt: skip


async def position_risk_v3(ex: LocalExchange, call: Call) -> Any:
    """Only symbols with a position or open orders (reference §2.7)."""
    account, now = _account(ex, call), ex.clock.history_now()
    desks = _desks(ex, call)
    return [
        _position_numbers(account, d, now) for d in desks if d.side or d.open_ids or d.open_algo_ids
    ]


async def position_risk_v2(ex: LocalExchange, call: Call) -> Any:
    account, now = _account(ex, call), ex.clock.history_now()
    desks = _desks(ex, call)
    rows = []
    for d in desks:
        n = _position_numbers(account, d, now)
        cap = f"{max_notional(d.tape, d.leverage):g}"
        rows.append({
            "entryPrice": n["entryPrice"], "breakEvenPrice": n["breakEvenPrice"],
            "marginType": "isolated" if d.margin_type == "ISOLATED" else "cross",
            "isAutoAddMargin": "false", "isolatedMargin": n["isolatedMargin"],
            "leverage": str(d.leverage), "liquidationPrice": n["liquidationPrice"],
            "markPrice": n["markPrice"], "maxNotionalValue": cap,
            "positionAmt": n["positionAmt"], "notional": n["notional"],
            "isolatedWallet": n["isolatedWallet"], "symbol": d.symbol,
            "unRealizedProfit": n["unRealizedProfit"], "positionSide": "BOTH",
            "updateTime": d.position_ms,
        })  # fmt: skip
    return rows


def _totals(account: Account, now: int) -> dict[str, float]:
    desks = list(account.desks.values())
    position_im = sum(account.position_margin(d, now) for d in desks)
    order_im = sum(account.order_margin(d, now) for d in desks)
    unrealized = sum(account.unrealized(d, now) for d in desks)
    maint = sum(d.maintenance(account.mark(d, now)) for d in desks if d.side)
    available = account.available(now)
    return {
        "wallet": account.wallet, "unrealized": unrealized, "margin": account.wallet + unrealized,
        "im": position_im + order_im, "pim": position_im, "oim": order_im, "mm": maint,
        "cross_unpnl": account.cross_unrealized(now), "available": available,
        "withdraw": max(min(available, account.wallet), 0.0),
    }  # fmt: skip


async def balance(ex: LocalExchange, call: Call) -> Any:
    account, now = _account(ex, call), ex.clock.history_now()
    t = _totals(account, now)
    return [
        {
            "accountAlias": "SgsR", "asset": "USDT", "balance": _f(t["wallet"]),
            "crossWalletBalance": _f(t["wallet"]), "crossUnPnl": _f(t["cross_unpnl"]),
            "availableBalance": _f(t["available"]), "maxWithdrawAmount": _f(t["withdraw"]),
            "marginAvailable": True, "updateTime": account.update_ms or ex.opened_ms,
        }
    ]  # fmt: skip


async def account_v3(ex: LocalExchange, call: Call) -> Any:
    account, now = _account(ex, call), ex.clock.history_now()
    t = _totals(account, now)
    asset = {
        "asset": "USDT", "walletBalance": _f(t["wallet"]), "unrealizedProfit": _f(t["unrealized"]),
        "marginBalance": _f(t["margin"]), "maintMargin": _f(t["mm"]), "initialMargin": _f(t["im"]),
        "positionInitialMargin": _f(t["pim"]), "openOrderInitialMargin": _f(t["oim"]),
        "crossWalletBalance": _f(t["wallet"]), "crossUnPnl": _f(t["cross_unpnl"]),
        "availableBalance": _f(t["available"]), "maxWithdrawAmount": _f(t["withdraw"]),
        "updateTime": account.update_ms or ex.opened_ms,
    }  # fmt: skip
    positions = []
    for d in account.desks.values():
        if not d.side:
            continue
        n = _position_numbers(account, d, now)
        positions.append({
            "symbol": d.symbol, "positionSide": "BOTH", "positionAmt": n["positionAmt"],
            "unrealizedProfit": n["unRealizedProfit"], "isolatedMargin": n["isolatedMargin"],
            "notional": n["notional"], "isolatedWallet": n["isolatedWallet"],
            "initialMargin": n["initialMargin"], "maintMargin": n["maintMargin"],
            "updateTime": d.position_ms,
        })  # fmt: skip
    return {
        "totalInitialMargin": _f(t["im"]), "totalMaintMargin": _f(t["mm"]),
        "totalWalletBalance": _f(t["wallet"]), "totalUnrealizedProfit": _f(t["unrealized"]),
        "totalMarginBalance": _f(t["margin"]), "totalPositionInitialMargin": _f(t["pim"]),
        "totalOpenOrderInitialMargin": _f(t["oim"]), "totalCrossWalletBalance": _f(t["wallet"]),
        "totalCrossUnPnl": _f(t["cross_unpnl"]), "availableBalance": _f(t["available"]),
        "maxWithdrawAmount": _f(t["withdraw"]), "assets": [asset], "positions": positions,
    }  # fmt: skip


async def account_v2(ex: LocalExchange, call: Call) -> Any:
    body = await account_v3(ex, call)
    account = _account(ex, call)
    body["assets"][0] |= {"marginAvailable": True}
    for row in body["positions"]:
        d = account.desk(row["symbol"])
        row |= {
            "leverage": str(d.leverage), "isolated": d.margin_type == "ISOLATED",
            "entryPrice": f"{d.entry:.8f}", "maxNotional": f"{max_notional(d.tape, d.leverage):g}",
            "bidNotional": "0", "askNotional": "0",
        }  # fmt: skip
    return {
        "feeTier": 0, "feeBurn": False, "canTrade": True, "canDeposit": True,
        "canWithdraw": True, "updateTime": 0, "multiAssetsMargin": False, "tradeGroupId": -1,
    } | body  # fmt: skip


# -- configuration --------------------------------------------------------------------------


def _config_row(d: Desk) -> dict[str, Any]:
    return {
        "symbol": d.symbol, "marginType": d.margin_type, "isAutoAddMargin": False,
        "leverage": d.leverage, "maxNotionalValue": f"{max_notional(d.tape, d.leverage):g}",
    }  # fmt: skip


async def symbol_config(ex: LocalExchange, call: Call) -> Any:
    desks = _desks(ex, call)
    return [_config_row(d) for d in desks]


async def account_config(ex: LocalExchange, call: Call) -> Any:
    return {
        "feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": True,
        "dualSidePosition": False, "updateTime": 0, "multiAssetsMargin": False,
        "tradeGroupId": -1,
    }  # fmt: skip


async def change_leverage(ex: LocalExchange, call: Call) -> Any:
    desk = _desk(ex, call)
    text = call.params.get("leverage")
    if not text:
        raise codes.mandatory("leverage")
    if not text.isdigit():
        raise codes.bad_leverage(text[:20])
    account = _account(ex, call)
    ex.publish_all(account.api_key, account.set_leverage(desk, int(text), ex.clock.history_now()))
    return {"leverage": desk.leverage,
            "maxNotionalValue": f"{max_notional(desk.tape, desk.leverage):g}",
            "symbol": desk.symbol}  # fmt: skip


async def change_margin_type(ex: LocalExchange, call: Call) -> Any:
    desk = _desk(ex, call)
    kind = call.params.get("marginType")
    if not kind:
        raise codes.mandatory("marginType")
    if kind.upper() not in ("ISOLATED", "CROSSED"):
        raise codes.invalid_value("marginType")
    _account(ex, call).set_margin_type(desk, kind.upper())
    return {"code": 200, "msg": "success"}


async def position_mode(ex: LocalExchange, call: Call) -> Any:
    return {"dualSidePosition": False}


async def change_position_mode(ex: LocalExchange, call: Call) -> Any:
    text = call.params.get("dualSidePosition")
    if not text:
        raise codes.mandatory("dualSidePosition")
    if text.lower() == "true":
        raise codes.hedge_mode_unsupported()
    if text.lower() != "false":
        raise codes.invalid_value("dualSidePosition")
    raise codes.position_side_unchanged()


async def commission_rate(ex: LocalExchange, call: Call) -> Any:
    costs = _account(ex, call).costs
    return {
        "symbol": ex.tape(call.params).symbol,
        "makerCommissionRate": f"{costs.maker_fee_pct / 100:.6f}",
        "takerCommissionRate": f"{costs.taker_fee_pct / 100:.6f}",
    }
