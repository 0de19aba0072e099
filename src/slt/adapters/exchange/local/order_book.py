"""The local exchange's orders as Binance reports them (reference §2.5-§2.6, §7.2-§7.3):
ordinary orders of the matching engine and conditional (algo) orders of the Algo Service.

Quantities and prices are floats already on the symbol's step and tick; the answers format
them with the symbol's decimals.
"""

from __future__ import annotations

from dataclasses import dataclass

# Order status (reference §2.6) and algo status (§7.3).
NEW, PARTIALLY_FILLED, FILLED = "NEW", "PARTIALLY_FILLED", "FILLED"
CANCELED, REJECTED, EXPIRED = "CANCELED", "REJECTED", "EXPIRED"
OPEN_STATUSES = (NEW, PARTIALLY_FILLED)
TRIGGERED, FINISHED = "TRIGGERED", "FINISHED"
ALGO_OPEN = (NEW,)

MARKET, LIMIT = "MARKET", "LIMIT"
STOP_MARKET, TAKE_PROFIT_MARKET = "STOP_MARKET", "TAKE_PROFIT_MARKET"
STOP, TAKE_PROFIT, TRAILING_STOP_MARKET = "STOP", "TAKE_PROFIT", "TRAILING_STOP_MARKET"
LIQUIDATION = "LIQUIDATION"
CONDITIONAL_TYPES = (STOP_MARKET, TAKE_PROFIT_MARKET, STOP, TAKE_PROFIT, TRAILING_STOP_MARKET)
ORDER_TYPES = (MARKET, LIMIT)

# Expiry reasons of ORDER_TRADE_UPDATE's ``er`` (reference §7.2).
ER_NONE, ER_IOC, ER_REDUCE_ONLY, ER_LIQUIDATION, ER_MARKET = 0, 2, 4, 5, 9
ER_FOK, ER_POST_ONLY = 10, 11

# Where an open order is matched: by the engine's venue kernels (market orders, reduce-only
# stops and limits: the backtest's own orders) or by the local exchange's outer matcher.
AT_VENUE, AT_BOOK = "venue", "book"


def side_sign(side: str) -> int:
    return 1 if side == "BUY" else -1


@dataclass
class LocalOrder:
    """An order of the matching engine; ``time_ms``/``update_ms`` are wire times."""

    order_id: int
    client_id: str
    symbol: str
    side: str
    type: str
    quantity: float  # 0 with close_position: whatever the position holds
    price: float = 0.0
    time_in_force: str = "GTC"
    reduce_only: bool = False
    close_position: bool = False
    stop_price: float = 0.0
    working_type: str = "CONTRACT_PRICE"
    orig_type: str = ""
    price_protect: bool = False
    status: str = NEW
    executed: float = 0.0
    cum_quote: float = 0.0
    time_ms: int = 0
    update_ms: int = 0
    matched_at: str = AT_BOOK
    leverage: float = 20.0
    expiry_reason: int = ER_NONE
    activate_price: float = 0.0
    callback_rate: float = 0.0

    def __post_init__(self) -> None:
        if not self.orig_type:
            self.orig_type = self.type

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def avg_price(self) -> float:
        return self.cum_quote / self.executed if self.executed > 0 else 0.0

    @property
    def sign(self) -> int:
        return side_sign(self.side)

    @property
    def left(self) -> float:
        return max(self.quantity - self.executed, 0.0)


@dataclass
class AlgoOrder:
    """A conditional order of the Algo Service: it waits for its trigger, then sends the
    actual order (``actual_order_id``) to the matching engine."""

    algo_id: int
    client_algo_id: str
    symbol: str
    side: str
    order_type: str
    quantity: float  # 0 with close_position
    trigger_price: float
    price: float = 0.0
    time_in_force: str = "GTC"
    working_type: str = "CONTRACT_PRICE"
    close_position: bool = False
    reduce_only: bool = False
    price_protect: bool = False
    activate_price: float = 0.0
    callback_rate: float = 0.0
    status: str = NEW
    create_ms: int = 0
    update_ms: int = 0
    trigger_ms: int = 0
    actual_order_id: int = 0  # the matching engine's order once triggered (reserved at once
    # for a stop the venue holds, whose trigger and fill are one step of the kernels)
    reject_reason: str = ""
    activated: bool = False  # trailing: the activation price was reached
    extreme: float = 0.0  # trailing: the best price since activation

    @property
    def is_open(self) -> bool:
        return self.status in ALGO_OPEN

    @property
    def sign(self) -> int:
        return side_sign(self.side)
