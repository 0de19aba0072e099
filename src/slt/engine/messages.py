"""Events into the portfolio reducer (past tense) and commands out of it (imperative).

Immutable NamedTuples (four times quicker to build than frozen dataclasses, and a backtest
builds hundreds of thousands), so a shell can make them from any source (a backtest's
simulated exchange, Binance's streams, a journal) and a journal can store them as they are.
Two messages are equal only if they are of the same type. Orders are named by their client
order id (``identity``); sides are +1 buy and -1 sell; times are int64 ms since the epoch, UTC.
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple, TypeVar

from slt.domain.results import Trade

OrderKind = Literal["market", "stop_market", "limit"]
OrderPurpose = Literal[
    "entry", "close", "stop", "emergency_stop", "take_profit", "partial_take_profit"
]
FillStatus = Literal["partially_filled", "filled"]
_T = TypeVar("_T")


def _typed(cls: type[_T]) -> type[_T]:
    """Equality and hash that include the type (a tuple would equal another message type
    with the same fields) and take NaN for equal to NaN."""

    def eq(self: tuple[Any, ...], other: object) -> bool:
        if type(self) is not type(other):
            return False
        # NaN (the price of a market order) equals NaN here: same message, same fields.
        return all(a == b or (a != a and b != b) for a, b in zip(self, other, strict=True))

    def ne(self: tuple[Any, ...], other: object) -> bool:
        return not eq(self, other)

    def hash_(self: tuple[Any, ...]) -> int:
        return hash((type(self).__name__, tuple(self)))

    cls.__eq__ = eq  # type: ignore[assignment, method-assign]
    cls.__ne__ = ne  # type: ignore[assignment, method-assign]
    cls.__hash__ = hash_  # type: ignore[assignment, method-assign]
    return cls


# --- events --------------------------------------------------------------------------------


@_typed
class CandleClosed(NamedTuple):
    """A closed base candle of ``symbol`` with the signal scored on it (direction 0: none).

    ``stop_pct`` NaN (an ATR still warming up) means no entry; ``gate`` False means the model
    turned the signal down: it is followed as a virtual position, not traded."""

    symbol: str
    open_time_ms: int
    close_time_ms: int
    open: float
    high: float
    low: float
    close: float
    direction: int = 0
    confidence: float = 0.5
    stop_pct: float = math.nan
    gate: bool = True


@_typed
class OrderSubmitted(NamedTuple):
    client_order_id: str
    symbol: str


@_typed
class OrderAccepted(NamedTuple):
    client_order_id: str
    symbol: str


@_typed
class OrderFilled(NamedTuple):
    """One exchange trade of an order; ``status`` is the order's status after it, as the
    exchange reports it (a market order may fill in several trades)."""

    client_order_id: str
    symbol: str
    trade_id: int
    time_ms: int
    price: float
    quantity: float
    fee: float
    status: FillStatus = "filled"


@_typed
class OrderCanceled(NamedTuple):
    client_order_id: str
    symbol: str


@_typed
class OrderCancelRejected(NamedTuple):
    client_order_id: str
    symbol: str
    reason: str = ""


@_typed
class OrderExpired(NamedTuple):
    client_order_id: str
    symbol: str
    reason: str = ""


@_typed
class OrderRejected(NamedTuple):
    client_order_id: str
    symbol: str
    reason: str = ""


@_typed
class PositionLiquidated(NamedTuple):
    """The exchange closed the position at its liquidation price (the margin is lost)."""

    symbol: str
    trade_id: int
    time_ms: int
    price: float
    quantity: float


@_typed
class FundingPaid(NamedTuple):
    """Funding of the symbol's position: ``amount`` paid (negative: received), in USDT."""

    symbol: str
    time_ms: int
    rate: float
    mark_price: float
    amount: float


@_typed
class AccountUpdated(NamedTuple):
    time_ms: int
    equity: float


@_typed
class ModelChanged(NamedTuple):
    version: str


@_typed
class CloseRequested(NamedTuple):
    """Close the symbol's whole position at market; ``reason`` names an exit reason
    (``end_of_data``, ``emergency_close``, ...)."""

    symbol: str
    reason: str = "emergency_close"


@_typed
class ExchangePosition(NamedTuple):
    symbol: str
    side: int
    quantity: float
    entry_price: float
    leverage: float = 1.0


@_typed
class ExchangeOrder(NamedTuple):
    client_order_id: str
    symbol: str
    kind: OrderKind
    side: int
    quantity: float
    price: float
    reduce_only: bool


@_typed
class Reconciled(NamedTuple):
    """What the exchange holds, as a shell read it at start-up (or after a gap in its view):
    the core re-places missing stops, cancels its own orphan orders, and adopts or flattens
    positions it did not open."""

    time_ms: int
    wallet_balance: float
    positions: tuple[ExchangePosition, ...] = ()
    open_orders: tuple[ExchangeOrder, ...] = ()


OrderEvent = (
    OrderSubmitted
    | OrderAccepted
    | OrderFilled
    | OrderCanceled
    | OrderCancelRejected
    | OrderExpired
    | OrderRejected
)
Event = (
    CandleClosed
    | OrderEvent
    | PositionLiquidated
    | FundingPaid
    | AccountUpdated
    | ModelChanged
    | CloseRequested
    | Reconciled
)


# --- commands ------------------------------------------------------------------------------


@_typed
class PlaceOrder(NamedTuple):
    """``price`` is the trigger (stop) or limit price, NaN for market; ``close_position``: a
    stop that closes whatever the position holds when it fires (Binance closePosition)."""

    client_order_id: str
    symbol: str
    kind: OrderKind
    purpose: OrderPurpose
    side: int
    quantity: float
    price: float
    reduce_only: bool
    close_position: bool = False
    reason: str = ""  # exit reason recorded when it fills
    leverage: float = 1.0  # entries: the isolated leverage to set before sending


@_typed
class CancelOrder(NamedTuple):
    client_order_id: str
    symbol: str


@_typed
class OpenVirtualPosition(NamedTuple):
    """Every signal, traded or not, becomes a virtual position the learner follows."""

    symbol: str
    signal_time_ms: int
    entry_after_ms: int
    direction: int
    confidence: float
    stop_pct: float
    take_profit_pct: float
    model_version: str


@_typed
class Persist(NamedTuple):
    """A closed position to record."""

    trade: Trade


@_typed
class Notify(NamedTuple):
    text: str
    level: Literal["info", "warning"] = "info"
    symbol: str = ""


Command = PlaceOrder | CancelOrder | OpenVirtualPosition | Persist | Notify

EVENT_TYPES: dict[str, type] = {
    t.__name__: t
    for t in (
        CandleClosed,
        OrderSubmitted,
        OrderAccepted,
        OrderFilled,
        OrderCanceled,
        OrderCancelRejected,
        OrderExpired,
        OrderRejected,
        PositionLiquidated,
        FundingPaid,
        AccountUpdated,
        ModelChanged,
        CloseRequested,
        Reconciled,
    )
}


def event_to_dict(event: Event) -> dict[str, Any]:
    """``{"type": name, **fields}``, nested positions and orders as dicts (for journals)."""
    fields = event._asdict()
    if isinstance(event, Reconciled):
        fields["positions"] = [p._asdict() for p in event.positions]
        fields["open_orders"] = [o._asdict() for o in event.open_orders]
    return {"type": type(event).__name__, **fields}


def event_from_dict(data: dict[str, Any]) -> Event:
    """The inverse of ``event_to_dict``; a ``KeyError``/``TypeError`` on an unknown type or
    field, which callers turn into their own error naming the line."""
    fields = dict(data)
    kind = EVENT_TYPES[fields.pop("type")]
    if kind is Reconciled:
        fields["positions"] = tuple(ExchangePosition(**p) for p in fields.get("positions", ()))
        fields["open_orders"] = tuple(ExchangeOrder(**o) for o in fields.get("open_orders", ()))
    event: Event = kind(**fields)
    return event
