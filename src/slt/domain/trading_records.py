"""Paper and live trading records (orders, fills, positions, equity, account, candles).

Money is float in the engine and exact numerics in the database; each ``check_*`` refuses what
must never be stored (NaN, infinities, negative quantities, unknown symbols, over-long strings)
with an error naming the record and the field.
"""

from __future__ import annotations

from dataclasses import dataclass

from slt.domain.records import (
    MAX_NAME,
    RecordError,
    check_choice,
    check_finite,
    check_millis,
    check_not_negative,
    check_positive,
    check_symbol,
    check_text,
    named,
)
from slt.domain.timeframes import TIMEFRAME_MS

MODES = ("backtest", "paper", "live")
MARKETS = ("futures", "spot")
ORDER_KINDS = ("market", "stop_market", "limit", "take_profit_market")
ORDER_PURPOSES = (
    "entry", "close", "stop", "emergency_stop", "take_profit", "partial_take_profit",
)  # fmt: skip
ORDER_STATUSES = ("new", "open", "partially_filled", "filled", "canceled", "rejected", "expired")
POSITION_STATUSES = ("open", "closed")
MAX_EXIT_REASON = 32
MAX_RUN_ID = 32


@dataclass(frozen=True)
class OrderRecord:
    """An order as the engine placed it and as its status moved (stored by ``order_id``)."""

    order_id: str
    mode: str
    symbol: str
    kind: str
    purpose: str
    side: int
    quantity: float
    price: float | None  # trigger or limit price; None for market orders
    reduce_only: bool
    status: str
    created_ms: int
    updated_ms: int
    exchange_order_id: str | None = None
    run_id: str = ""  # the session that placed it ("": recorded before runs were named)


@dataclass(frozen=True)
class FillRecord:
    """One execution. ``fill_id`` (the exchange's trade id) makes a retried write harmless.
    Its row takes the mode and run id of its order."""

    fill_id: str
    order_id: str
    time_ms: int
    price: float
    quantity: float
    fee: float
    liquidation: bool = False


@dataclass(frozen=True)
class PositionRecord:
    """A position, open or closed; ``position_key`` is the engine's id, unique per mode."""

    position_key: str
    mode: str
    symbol: str
    side: int
    quantity: float
    entry_price: float
    leverage: float
    margin: float
    opened_ms: int
    status: str
    closed_ms: int | None = None
    realized_pnl: float = 0.0
    fees: float = 0.0
    funding: float = 0.0
    exit_reason: str | None = None
    run_id: str = ""  # with ``mode``, what makes ``position_key`` unique


@dataclass(frozen=True)
class EquitySnapshot:
    mode: str
    time_ms: int
    equity: float
    cash: float
    unrealized_pnl: float
    run_id: str = ""


@dataclass(frozen=True)
class AccountSnapshot:
    """The account as the exchange (live) or the simulated broker (paper) reported it."""

    mode: str
    time_ms: int
    equity: float
    balance: float
    margin: float


@dataclass(frozen=True)
class Candle:
    """A closed candle collected live (``market_data``), keyed by symbol, market, timeframe
    and open time."""

    symbol: str
    market: str
    timeframe: str
    open_time_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float


def check_run_id(run_id: str) -> None:
    """A session's name; empty on rows written before sessions were named."""
    if not isinstance(run_id, str):
        raise RecordError(f"run_id must be a string, got {run_id!r}")
    if run_id:
        check_text("run_id", run_id, MAX_RUN_ID)


def _side(side: int) -> None:
    if side not in (1, -1) or isinstance(side, bool):
        raise RecordError(f"side must be 1 (buy/long) or -1 (sell/short), got {side!r}")


def check_order(order: OrderRecord) -> None:
    def run() -> None:
        check_text("order_id", order.order_id, MAX_NAME)
        check_choice("mode", order.mode, MODES)
        check_symbol(order.symbol)
        check_choice("kind", order.kind, ORDER_KINDS)
        check_choice("purpose", order.purpose, ORDER_PURPOSES)
        _side(order.side)
        check_positive("quantity", order.quantity)
        if order.price is not None:
            check_positive("price", order.price)
        elif order.kind != "market":
            raise RecordError(f"a {order.kind} order needs a price")
        check_choice("status", order.status, ORDER_STATUSES)
        check_millis("created_ms", order.created_ms)
        check_millis("updated_ms", order.updated_ms)
        if order.updated_ms < order.created_ms:
            raise RecordError("updated_ms lies before created_ms")
        if order.exchange_order_id is not None:
            check_text("exchange_order_id", order.exchange_order_id, MAX_NAME)
        check_run_id(order.run_id)

    named("order", repr(order.order_id), run)


def check_fill(fill: FillRecord) -> None:
    def run() -> None:
        check_text("fill_id", fill.fill_id, MAX_NAME)
        check_text("order_id", fill.order_id, MAX_NAME)
        check_millis("time_ms", fill.time_ms)
        check_positive("price", fill.price)
        check_positive("quantity", fill.quantity)
        check_finite("fee", fill.fee)  # a maker rebate is a negative fee

    named("fill", repr(fill.fill_id), run)


def check_position(position: PositionRecord) -> None:
    def run() -> None:
        check_text("position_key", position.position_key, MAX_NAME)
        check_choice("mode", position.mode, MODES)
        check_symbol(position.symbol)
        _side(position.side)
        check_not_negative("quantity", position.quantity)
        check_positive("entry_price", position.entry_price)
        check_positive("leverage", position.leverage)
        if position.leverage > 999:
            raise RecordError(f"leverage {position.leverage!r} is above 999")
        check_not_negative("margin", position.margin)
        check_millis("opened_ms", position.opened_ms)
        check_choice("status", position.status, POSITION_STATUSES)
        for name in ("realized_pnl", "fees", "funding"):
            check_finite(name, getattr(position, name))
        if position.status == "closed":
            if position.closed_ms is None:
                raise RecordError("a closed position needs closed_ms")
            if position.exit_reason is None:
                raise RecordError("a closed position needs exit_reason")
        if position.closed_ms is not None:
            check_millis("closed_ms", position.closed_ms)
            if position.closed_ms < position.opened_ms:
                raise RecordError("closed_ms lies before opened_ms")
        if position.exit_reason is not None:
            check_text("exit_reason", position.exit_reason, MAX_EXIT_REASON)
        check_run_id(position.run_id)

    named("position", repr(position.position_key), run)


def check_equity_snapshot(snapshot: EquitySnapshot) -> None:
    def run() -> None:
        check_choice("mode", snapshot.mode, MODES)
        check_millis("time_ms", snapshot.time_ms)
        check_not_negative("equity", snapshot.equity)
        check_finite("cash", snapshot.cash)
        check_finite("unrealized_pnl", snapshot.unrealized_pnl)
        check_run_id(snapshot.run_id)

    named("equity snapshot", str(snapshot.time_ms), run)


def check_account_snapshot(snapshot: AccountSnapshot) -> None:
    def run() -> None:
        check_choice("mode", snapshot.mode, MODES)
        check_millis("time_ms", snapshot.time_ms)
        check_not_negative("equity", snapshot.equity)
        check_not_negative("balance", snapshot.balance)
        check_not_negative("margin", snapshot.margin)

    named("account snapshot", str(snapshot.time_ms), run)


def check_candle(candle: Candle) -> None:
    def run() -> None:
        check_symbol(candle.symbol)
        check_choice("market", candle.market, MARKETS)
        check_choice("timeframe", candle.timeframe, TIMEFRAME_MS)
        check_millis("open_time_ms", candle.open_time_ms)
        for name in ("open", "high", "low", "close"):
            check_positive(name, getattr(candle, name))
        check_not_negative("volume", candle.volume)
        if candle.high < max(candle.open, candle.close) or candle.low > min(
            candle.open, candle.close
        ):
            raise RecordError("high/low do not enclose open and close")

    named("candle", f"{candle.symbol} {candle.timeframe} {candle.open_time_ms}", run)
