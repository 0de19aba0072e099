"""Events into the decision core (past tense) and commands out of it (imperative)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from slt.engine.results import Trade

OrderKind = Literal["market", "stop_market", "limit"]
OrderPurpose = Literal[
    "entry", "close", "stop", "emergency_stop", "take_profit", "partial_take_profit"
]


@dataclass(frozen=True)
class CandleClosed:
    """A closed base candle with the signal scored on it (direction 0 = none).

    ``stop_pct`` None takes the configured stop; NaN (an ATR still warming up) means no entry.
    """

    open_time_ms: int
    close_time_ms: int
    open: float
    high: float
    low: float
    close: float
    direction: int = 0
    confidence: float = 0.5
    stop_pct: float | None = None


@dataclass(frozen=True)
class OrderFilled:
    order_id: str
    time_ms: int
    price: float
    quantity: float
    fee: float
    liquidation: bool = False


@dataclass(frozen=True)
class OrderRejected:
    order_id: str
    reason: str


@dataclass(frozen=True)
class FundingPaid:
    time_ms: int
    rate: float
    mark_price: float


@dataclass(frozen=True)
class AccountUpdated:
    time_ms: int
    equity: float


@dataclass(frozen=True)
class ModelChanged:
    version: str


Event = CandleClosed | OrderFilled | OrderRejected | FundingPaid | AccountUpdated | ModelChanged


@dataclass(frozen=True)
class PlaceOrder:
    """``side`` +1 buys, -1 sells; ``price`` is the trigger or limit price (NaN for market)."""

    order_id: str
    kind: OrderKind
    purpose: OrderPurpose
    side: int
    quantity: float
    price: float
    reduce_only: bool
    reason: int = 0  # exit reason recorded when this order closes (part of) a position
    leverage: float = 1.0  # entries: the isolated leverage to set before sending


@dataclass(frozen=True)
class CancelOrder:
    order_id: str


@dataclass(frozen=True)
class OpenVirtualPosition:
    """Every signal, traded or not, becomes a virtual position the learner follows."""

    signal_time_ms: int
    entry_after_ms: int
    direction: int
    confidence: float
    stop_pct: float
    take_profit_pct: float
    model_version: str


@dataclass(frozen=True)
class Persist:
    record: Literal["trade", "fill"]
    trade: Trade | None = None
    details: dict[str, float | int | str] = field(default_factory=dict)


@dataclass(frozen=True)
class Notify:
    text: str


Command = PlaceOrder | CancelOrder | OpenVirtualPosition | Persist | Notify
