"""The engine's fixed-size records and integer codes, shared by the kernels and their wrappers.

Every piece of engine state is a row of a structured array (a field is read by name, an id
stays an integer), and every event and command crosses between kernels as one row of a
record type defined here. Codes are plain ints so numba folds them into constants.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np

I8, F8, B1 = np.int64, np.float64, np.bool_

# Order statuses (NautilusTrader's lifecycle); 0 marks a free slot of the order table.
FREE = 0
INITIALIZED = 1  # decided by the core, not yet sent (or held until a close fills)
SUBMITTED = 2
ACCEPTED = 3
PARTIALLY_FILLED = 4
FILLED = 5
PENDING_CANCEL = 6
CANCELED = 7
REJECTED = 8
EXPIRED = 9
N_STATUSES = 10
STATUS_NAMES = (
    "free",
    "initialized",
    "submitted",
    "accepted",
    "partially_filled",
    "filled",
    "pending_cancel",
    "canceled",
    "rejected",
    "expired",
)

# Event kinds (what happened; the reducer's input).
EV_CANDLE_CLOSED = 1
EV_ORDER_SUBMITTED = 2
EV_ORDER_ACCEPTED = 3
EV_ORDER_FILLED = 4
EV_ORDER_CANCELED = 5
EV_ORDER_CANCEL_REJECTED = 6
EV_ORDER_EXPIRED = 7
EV_ORDER_REJECTED = 8
EV_FUNDING_PAID = 9
EV_MODEL_CHANGED = 10
EV_CLOSE_REQUESTED = 11
EV_ACCOUNT_UPDATED = 12
EV_LIQUIDATED = 13
# Pseudo-event of the order state machine: the core itself asks for a cancel.
EV_CANCEL_REQUESTED = 14
N_EVENT_KINDS = 15

# Command kinds (what the core wants done; its output).
CMD_PLACE_ORDER = 1
CMD_CANCEL_ORDER = 2
CMD_OPEN_VIRTUAL = 3
CMD_PERSIST_TRADE = 4
CMD_NOTIFY = 5

# Order types as the exchange knows them.
MARKET = 1
STOP_MARKET = 2
LIMIT = 3
ORDER_KIND_NAMES: dict[int, Literal["market", "stop_market", "limit"]] = {
    MARKET: "market",
    STOP_MARKET: "stop_market",
    LIMIT: "limit",
}

# Why the core placed an order.
ENTRY = 1
CLOSE = 2
STOP = 3
EMERGENCY_STOP = 4
TAKE_PROFIT_ORDER = 5
PARTIAL_TAKE_PROFIT_ORDER = 6
PURPOSE_NAMES: dict[
    int,
    Literal["entry", "close", "stop", "emergency_stop", "take_profit", "partial_take_profit"],
] = {
    ENTRY: "entry",
    CLOSE: "close",
    STOP: "stop",
    EMERGENCY_STOP: "emergency_stop",
    TAKE_PROFIT_ORDER: "take_profit",
    PARTIAL_TAKE_PROFIT_ORDER: "partial_take_profit",
}

# Notices (CMD_NOTIFY ``code``); the wrapper turns them into words.
NOTE_DUPLICATE_FILL = 1
NOTE_ENTRY_REJECTED = 2
NOTE_ENTRY_EXPIRED = 3
NOTE_STOP_REJECTED_CLOSING = 4
NOTE_STOP_REJECTED_KEPT_OLD = 5
NOTE_ORDER_REJECTED = 6
NOTE_MODEL_CHANGED = 7
NOTE_LATE_EVENT = 8
NOTE_UNEXPECTED_FILL = 9
NOTE_FUNDING_WITHOUT_POSITION = 10

# Integrity failures: the kernel refuses the event and leaves the state as it was.
ERR_ILLEGAL_TRANSITION = 1
ERR_UNKNOWN_ORDER = 2
ERR_OVERFILL = 3
ERR_ORDER_TABLE_FULL = 4
ERR_OUTPUT_FULL = 5
ERR_BAD_EVENT = 6

# Reject / expire reasons the simulated exchange gives (EVENT_DT ``code``).
XR_NONE = 0
XR_NO_MARKET_DATA = 1  # a market entry after a hole in the data: no price to fill at
XR_REDUCE_ONLY_NOTHING = 2  # reduce-only with no position to reduce (Binance: er 4)
XR_UNKNOWN_ORDER = 3  # cancel for an order that is not open (Binance: -2011)
XR_INSUFFICIENT_MARGIN = 4  # injected rejection of an entry (Binance: -2019)
XR_WOULD_TRIGGER = 5  # injected rejection of a stop (Binance: -2021)
XR_UNSUPPORTED = 6  # an order type the simulated exchange does not take
XR_END_OF_DATA = 7
REASON_TEXT = {
    XR_NONE: "",
    XR_NO_MARKET_DATA: "no market data at the fill time",
    XR_REDUCE_ONLY_NOTHING: "reduce-only order with no position to reduce",
    XR_UNKNOWN_ORDER: "unknown order",
    XR_INSUFFICIENT_MARGIN: "margin is insufficient",
    XR_WOULD_TRIGGER: "order would immediately trigger",
    XR_UNSUPPORTED: "order type not supported by the simulated exchange",
    XR_END_OF_DATA: "end of data",
}

# ``status_before_cancel`` of an order a reconciliation marked canceled because the exchange
# no longer listed it: a later word about it (its fill, read late) is not an integrity fault.
MARKED_BY_RECONCILIATION = -1

# Capacities of the per-symbol tables.
MAX_ORDERS = 16
TRADE_ID_RING = 64
MAX_EXIT_FILLS = 32

ORDER_DT = np.dtype(
    [
        ("seq", I8),  # the order's number, unique in the run; 0 = free slot
        ("status", I8),
        ("kind", I8),
        ("purpose", I8),
        ("side", I8),  # +1 buy, -1 sell
        ("quantity", F8),
        ("filled", F8),
        ("price", F8),  # trigger (stop) or limit price; NaN for market
        ("reduce_only", B1),
        ("reason", I8),  # exit reason recorded when it fills
        ("leverage", F8),  # entries: isolated leverage
        ("stop_pct", F8),  # entries
        ("signal_time_ms", I8),  # entries
        ("decision_price", F8),  # entries: the close they were sized at (margin reserved)
        ("confidence", F8),  # entries
        ("held", B1),  # INITIALIZED and not yet sent (a reversal entry waits for its close)
        ("status_before_cancel", I8),
    ],
    align=True,
)

ACCOUNT_DT = np.dtype(
    [
        ("wallet", F8),  # cash: initial + realised PnL - fees - funding (margin included)
        ("next_order_seq", I8),
        ("next_position_id", I8),
        ("n_closed", I8),  # closed positions, for the recent win rate
        ("model_version", I8),  # index into the wrapper's list of version names
        ("reported_equity", F8),  # what the exchange last said (AccountUpdated)
    ],
    align=True,
)

EXIT_DT = np.dtype(
    [
        ("position_id", I8),
        ("time_ms", I8),
        ("price", F8),
        ("qty", F8),
        ("reason", I8),
        ("fee", F8),
    ],
    align=True,
)

# One event, whatever its kind; fields a kind does not use stay 0.
EVENT_DT = np.dtype(
    [
        ("kind", I8),
        ("symbol", I8),
        ("seq", I8),  # order number
        ("time_ms", I8),
        ("trade_id", I8),
        ("price", F8),
        ("qty", F8),
        ("fee", F8),
        ("code", I8),  # reject/expire reason, close reason, model version
        ("open_time_ms", I8),
        ("open", F8),
        ("high", F8),
        ("low", F8),
        ("close", F8),
        ("direction", I8),
        ("confidence", F8),
        ("stop_pct", F8),
        ("gate", B1),
        ("rate", F8),
        ("mark", F8),
    ],
    align=True,
)

# One command, whatever its kind.
COMMAND_DT = np.dtype(
    [
        ("kind", I8),
        ("symbol", I8),
        ("seq", I8),
        ("order_kind", I8),
        ("purpose", I8),
        ("side", I8),
        ("quantity", F8),
        ("price", F8),
        ("reduce_only", B1),
        ("close_position", B1),  # a stop that closes whatever the position holds when it fires
        ("reason", I8),
        ("leverage", F8),
        # virtual positions
        ("signal_time_ms", I8),
        ("entry_after_ms", I8),
        ("direction", I8),
        ("confidence", F8),
        ("stop_pct", F8),
        ("take_profit_pct", F8),
        ("model_version", I8),
        # notices
        ("code", I8),
        ("value", F8),
    ],
    align=True,
)

# One closed position (CMD_PERSIST_TRADE carries its index in the trade buffer).
TRADE_DT = np.dtype(
    [
        ("position_id", I8),
        ("symbol", I8),
        ("side", I8),
        ("entry_time_ms", I8),
        ("entry_price", F8),
        ("exit_time_ms", I8),
        ("exit_price", F8),
        ("qty", F8),
        ("leverage", F8),
        ("margin", F8),
        ("pnl", F8),
        ("fees", F8),
        ("funding", F8),
        ("exit_reason", I8),
        ("signal_time_ms", I8),
        ("n_exits", I8),
    ],
    align=True,
)


class CommandRow(NamedTuple):
    """A COMMAND_DT row as plain Python values (``tolist`` is the quick way out of numpy)."""

    kind: int
    symbol: int
    seq: int
    order_kind: int
    purpose: int
    side: int
    quantity: float
    price: float
    reduce_only: bool
    close_position: bool
    reason: int
    leverage: float
    signal_time_ms: int
    entry_after_ms: int
    direction: int
    confidence: float
    stop_pct: float
    take_profit_pct: float
    model_version: int
    code: int
    value: float


class EventRow(NamedTuple):
    """An EVENT_DT row as plain Python values."""

    kind: int
    symbol: int
    seq: int
    time_ms: int
    trade_id: int
    price: float
    qty: float
    fee: float
    code: int
    open_time_ms: int
    open: float
    high: float
    low: float
    close: float
    direction: int
    confidence: float
    stop_pct: float
    gate: bool
    rate: float
    mark: float
