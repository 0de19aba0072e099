"""The zero-polling account cache (issue 14 item 2): user-data events in, an in-memory
``AccountState`` whose reads are plain dictionary reads, and the engine events each change
means.

Binance's stream may deliver an event twice, late, or out of order across event types
(reference §7.1; the local exchange injects all three). Applying is therefore idempotent: a
trade is applied once by its (symbol, trade id), an order or algo status once per (id,
status), and positions and balances only from an ``ACCOUNT_UPDATE`` at least as new as the
last one applied. The fill of a triggered conditional order carries a client id the engine
never chose; it is reported under the engine's ``clientAlgoId``, and when it arrives before
the ``ALGO_UPDATE`` that names it, it waits for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slt.engine.messages import (
    AccountUpdated,
    Event,
    FillStatus,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    PositionLiquidated,
)

OPEN = ("NEW", "PARTIALLY_FILLED")
ALGO_OPEN = ("NEW",)


@dataclass
class Position:
    symbol: str
    amount: float  # signed: one-way mode
    entry_price: float
    unrealized: float
    margin_type: str  # "cross" / "isolated"
    isolated_wallet: float
    update_ms: int


@dataclass
class OpenOrder:
    order_id: int
    client_id: str
    symbol: str
    side: str
    type: str
    status: str
    quantity: float
    executed: float
    price: float
    stop_price: float
    reduce_only: bool
    update_ms: int


@dataclass
class OpenAlgo:
    algo_id: int
    client_algo_id: str
    symbol: str
    side: str
    type: str
    status: str
    trigger_price: float
    quantity: float
    close_position: bool
    update_ms: int


@dataclass
class AccountState:
    """The account as the streams told it; every read is synchronous and does no I/O."""

    wallet: dict[str, float] = field(default_factory=dict)  # asset -> wallet balance
    positions: dict[str, Position] = field(default_factory=dict)  # open positions only
    orders: dict[str, OpenOrder] = field(default_factory=dict)  # client id -> open order
    algos: dict[str, OpenAlgo] = field(default_factory=dict)  # client algo id -> open algo
    leverage: dict[str, int] = field(default_factory=dict)
    events_applied: int = 0
    duplicates: int = 0
    _trades: set[tuple[str, int]] = field(default_factory=set, repr=False)
    _statuses: set[tuple[str, int, str]] = field(default_factory=set, repr=False)
    _account_ms: dict[str, int] = field(default_factory=dict, repr=False)
    _actual: dict[int, str] = field(default_factory=dict, repr=False)  # order id -> algo id
    _waiting: dict[int, list[dict[str, Any]]] = field(default_factory=dict, repr=False)

    # -- reads ----------------------------------------------------------------------------

    def position(self, symbol: str) -> Position | None:
        return self.positions.get(symbol)

    def open_order(self, client_id: str) -> OpenOrder | None:
        return self.orders.get(client_id)

    def open_algo(self, client_algo_id: str) -> OpenAlgo | None:
        return self.algos.get(client_algo_id)

    def account_time(self, symbol: str) -> int:
        """``E`` of the newest position update applied for ``symbol`` (-1: none yet)."""
        return self._account_ms.get(symbol, -1)

    def seen_trade(self, symbol: str, trade_id: int) -> bool:
        return (symbol, trade_id) in self._trades

    def mark_trade(self, symbol: str, trade_id: int) -> None:
        """A trade learnt from REST (a resync): the stream's copy, if it comes, is a repeat."""
        self._trades.add((symbol, trade_id))

    def load_rest(
        self,
        account: dict[str, Any],
        positions: list[dict[str, Any]],
        orders: list[dict[str, Any]],
        algos: list[dict[str, Any]],
    ) -> None:
        """The account as REST says it is now (``/fapi/v3/account``, ``/fapi/v3/positionRisk``,
        ``openOrders``, ``openAlgoOrders``): after a reconnect, what the stream missed."""
        for asset in account.get("assets", []):
            self.wallet[str(asset["asset"])] = float(asset["walletBalance"])
            self._account_ms["$" + str(asset["asset"])] = int(asset.get("updateTime", 0))
        self.positions = {}
        for p in positions:
            amount = float(p["positionAmt"])
            symbol = str(p["symbol"])
            self._account_ms[symbol] = max(self._account_ms.get(symbol, -1), int(p["updateTime"]))
            if amount:
                isolated = float(p.get("isolatedWallet", 0) or 0)
                self.positions[symbol] = Position(
                    symbol, amount, float(p["entryPrice"]), float(p["unRealizedProfit"]),
                    "isolated" if isolated else "cross", isolated, int(p["updateTime"]),
                )  # fmt: skip
        self.orders = {
            str(o["clientOrderId"]): OpenOrder(
                int(o["orderId"]), str(o["clientOrderId"]), str(o["symbol"]), str(o["side"]),
                str(o["type"]), str(o["status"]), float(o["origQty"]), float(o["executedQty"]),
                float(o["price"]), float(o["stopPrice"]), bool(o["reduceOnly"]),
                int(o["updateTime"]),
            )
            for o in orders
        }  # fmt: skip
        self.algos = {
            str(a["clientAlgoId"]): OpenAlgo(
                int(a["algoId"]), str(a["clientAlgoId"]), str(a["symbol"]), str(a["side"]),
                str(a["orderType"]), str(a["algoStatus"]), float(a["triggerPrice"]),
                float(a["quantity"] or 0), bool(a["closePosition"]), int(a["updateTime"]),
            )
            for a in algos
        }  # fmt: skip

    # -- events ---------------------------------------------------------------------------

    def apply(self, event: dict[str, Any]) -> list[Event]:
        """Apply one user-data event; the engine events it means (none for a repeat)."""
        kind = event.get("e")
        if kind == "ORDER_TRADE_UPDATE":
            return self._order_update(event)
        if kind == "ALGO_UPDATE":
            return self._algo_update(event)
        if kind == "ACCOUNT_UPDATE":
            return self._account_update(event)
        if kind == "ACCOUNT_CONFIG_UPDATE" and "ac" in event:
            self.leverage[event["ac"]["s"]] = int(event["ac"]["l"])
        return []

    def _order_update(self, event: dict[str, Any]) -> list[Event]:
        o = event["o"]
        order_id, status, execution = int(o["i"]), str(o["X"]), str(o["x"])
        algo_client = self._actual.get(order_id)
        if algo_client is None and str(o.get("ot", "")) in _CONDITIONAL and not _is_known(self, o):
            # The fill of a triggered algo order came before the ALGO_UPDATE naming it.
            self._waiting.setdefault(order_id, []).append(event)
            return []
        client = algo_client or str(o["c"])
        symbol = str(o["s"])
        out: list[Event] = []
        if execution in ("TRADE", "CALCULATED"):
            key = (symbol, int(o["t"]))
            if key in self._trades:
                self.duplicates += 1
                return []
            self._trades.add(key)
            fill_status: FillStatus = "filled" if status == "FILLED" else "partially_filled"
            if o.get("o") == "LIQUIDATION":
                out.append(PositionLiquidated(symbol, int(o["t"]), int(o["T"]), float(o["L"]),
                                              float(o["l"])))  # fmt: skip
            else:
                out.append(OrderFilled(client, symbol, int(o["t"]), int(o["T"]), float(o["L"]),
                                       float(o["l"]), float(o["n"]), fill_status))  # fmt: skip
        else:
            key3 = ("order", order_id, execution)
            if key3 in self._statuses:
                self.duplicates += 1
                return []
            self._statuses.add(key3)
            if execution == "NEW" and algo_client is None:
                out.append(OrderAccepted(client, symbol))
            elif execution == "CANCELED":
                out.append(OrderCanceled(client, symbol))
            elif execution == "EXPIRED":
                out.append(OrderExpired(client, symbol, f"expiry reason {o.get('er', '')}"))
        self.events_applied += 1
        self._track_order(o, client, status)
        return out

    def _track_order(self, o: dict[str, Any], client: str, status: str) -> None:
        if status in OPEN and not self._actual.get(int(o["i"])):
            self.orders[client] = OpenOrder(
                int(o["i"]), client, str(o["s"]), str(o["S"]), str(o["o"]), status,
                float(o["q"]), float(o["z"]), float(o["p"]), float(o["sp"]), bool(o["R"]),
                int(o["T"]),
            )  # fmt: skip
        else:
            self.orders.pop(client, None)

    def _algo_update(self, event: dict[str, Any]) -> list[Event]:
        a = event["o"]
        algo_id, status, client, symbol = int(a["aid"]), str(a["X"]), str(a["caid"]), str(a["s"])
        key = ("algo", algo_id, status)
        if key in self._statuses:
            self.duplicates += 1
            return []
        self._statuses.add(key)
        self.events_applied += 1
        out: list[Event] = []
        if status == "NEW":
            self.algos[client] = OpenAlgo(
                algo_id, client, symbol, str(a["S"]), str(a["o"]), status, float(a["tp"]),
                float(a["q"]), bool(a["cp"]), int(event["E"]),
            )  # fmt: skip
            out.append(OrderAccepted(client, symbol))
        else:
            self.algos.pop(client, None)
            if status == "CANCELED":
                out.append(OrderCanceled(client, symbol))
            elif status in ("REJECTED", "EXPIRED"):
                out.append(OrderRejected(client, symbol, str(a.get("rm", ""))))
        actual = str(a.get("ai") or "")
        if actual.isdigit() and int(actual) not in self._actual:
            self._actual[int(actual)] = client
            for waiting in self._waiting.pop(int(actual), []):
                out += self._order_update(waiting)
        return out

    def _account_update(self, event: dict[str, Any]) -> list[Event]:
        a, stamp = event["a"], int(event["E"])
        applied = False
        for b in a.get("B", []):
            asset = str(b["a"])
            if stamp >= self._account_ms.get("$" + asset, -1):
                self._account_ms["$" + asset] = stamp
                self.wallet[asset] = float(b["wb"])
                applied = True
        for p in a.get("P", []):
            symbol = str(p["s"])
            if stamp < self._account_ms.get(symbol, -1):
                continue  # an older update arriving late: the newer one stands
            self._account_ms[symbol] = stamp
            applied = True
            amount = float(p["pa"])
            if amount == 0:
                self.positions.pop(symbol, None)
            else:
                self.positions[symbol] = Position(
                    symbol, amount, float(p["ep"]), float(p["up"]), str(p["mt"]),
                    float(p["iw"]), stamp,
                )  # fmt: skip
        if not applied:
            self.duplicates += 1
            return []
        self.events_applied += 1
        equity = self.wallet.get("USDT", 0.0) + sum(p.unrealized for p in self.positions.values())
        return [AccountUpdated(stamp, equity)]


_CONDITIONAL = ("STOP_MARKET", "TAKE_PROFIT_MARKET", "STOP", "TAKE_PROFIT", "TRAILING_STOP_MARKET")


def _is_known(state: AccountState, o: dict[str, Any]) -> bool:
    """An order with a conditional original type that the cache already tracks by its own
    client id (placed directly, not through the Algo API)."""
    return str(o["c"]) in state.orders
