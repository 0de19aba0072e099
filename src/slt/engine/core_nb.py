"""The decision core's kernels: what to do at a candle's close, and how fills and funding
change a position. The backtest loop and the event-driven core both call these, so backtest,
paper and live decide with the same code.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from slt.domain.features.jit import step_jit
from slt.domain.trading.costs_nb import fee_nb, taker_price_nb
from slt.domain.trading.enums import LIQUIDATION, OPPOSITE_SIGNAL, TIME_STOP
from slt.domain.trading.exits_nb import time_stop_due_nb
from slt.domain.trading.margin_nb import liquidation_price_nb
from slt.domain.trading.params import CostParams, ExitParams, SizingParams
from slt.domain.trading.position_nb import (
    ENTRY_TIME,
    FUNDING,
    MARGIN,
    QTY,
    SIDE,
    open_position_nb,
)
from slt.domain.trading.sizing_nb import size_position_nb

F64 = npt.NDArray[np.float64]

# Slots of the pending-orders array: market orders decided at a close, filled at the next open.
CLOSE_REASON = 0  # exit reason of a pending close, 0 = none
OPEN_SIDE = 1  # side of a pending entry, 0 = none
OPEN_QTY = 2
OPEN_LEVERAGE = 3
OPEN_STOP_PCT = 4
OPEN_SIGNAL_TIME = 5
PENDING_SLOTS = 6

# Slots of the account array.
CASH = 0
NEXT_POSITION_ID = 1
N_CLOSED = 2  # closed positions, for the recent win rate
ACCOUNT_SLOTS = 3


@step_jit
def recent_win_rate_nb(wins: F64, n_closed: int, p: SizingParams) -> float:
    """Share of winners among the last ``win_rate_lookback`` closed positions (0.5 if too few)."""
    n = min(n_closed, p.win_rate_lookback, len(wins))
    if n < p.win_rate_min_trades or n == 0:
        return 0.5
    total = 0.0
    for k in range(n):
        total += wins[(n_closed - 1 - k) % len(wins)]
    return total / n


@step_jit
def note_outcome_nb(wins: F64, account: F64, won: bool) -> None:
    n_closed = int(account[N_CLOSED])
    wins[n_closed % len(wins)] = 1.0 if won else 0.0
    account[N_CLOSED] = n_closed + 1


@step_jit
def funding_payment_nb(pos: F64, funding_time_ms: int, rate: float, mark_price: float) -> float:
    """Funding a position pays at ``funding_time_ms`` (longs pay a positive rate); 0 if it was
    opened at or after that time."""
    if pos[SIDE] == 0 or funding_time_ms <= pos[ENTRY_TIME]:
        return 0.0
    paid: float = pos[SIDE] * pos[QTY] * mark_price * rate
    pos[FUNDING] += paid
    return paid


@step_jit
def decide_at_close_nb(
    pos: F64,
    account: F64,
    wins: F64,
    pending: F64,
    equity: float,
    close: float,
    open_time_ms: int,
    close_time_ms: int,
    direction: int,
    confidence: float,
    stop_pct: float,
    exits: ExitParams,
    sizing: SizingParams,
    brackets: F64,
    step_size: float,
    min_notional: float,
) -> None:
    """Write the market orders for the next open into ``pending``: a close (time stop or
    opposite signal) and/or an entry sized from the equity at this close."""
    pending[:] = 0.0
    side = int(pos[SIDE])
    if side != 0:
        if time_stop_due_nb(pos, close_time_ms, exits):
            pending[CLOSE_REASON] = TIME_STOP
        elif direction == -side and exits.exit_on_opposite:
            pending[CLOSE_REASON] = OPPOSITE_SIGNAL
    if direction == 0 or not np.isfinite(confidence) or not np.isfinite(stop_pct):
        return
    if side != 0 and not (pending[CLOSE_REASON] == OPPOSITE_SIGNAL and exits.reverse_on_opposite):
        return
    open_margin = pos[MARGIN] if side != 0 and pending[CLOSE_REASON] == 0 else 0.0
    win_rate = recent_win_rate_nb(wins, int(account[N_CLOSED]), sizing)
    qty, lev = size_position_nb(
        direction,
        equity,
        open_margin,
        close,
        stop_pct,
        confidence,
        win_rate,
        sizing,
        brackets,
        step_size,
        min_notional,
        exits.emergency_fraction,
    )
    if qty > 0:
        pending[OPEN_SIDE] = direction
        pending[OPEN_QTY] = qty
        pending[OPEN_LEVERAGE] = lev
        pending[OPEN_STOP_PCT] = stop_pct
        pending[OPEN_SIGNAL_TIME] = open_time_ms


@step_jit
def open_from_fill_nb(
    pos: F64,
    account: F64,
    side: int,
    quantity: float,
    price: float,
    fee: float,
    time_ms: int,
    leverage: float,
    stop_pct: float,
    signal_time_ms: int,
    exits: ExitParams,
    brackets: F64,
    tick_size: float,
) -> float:
    """Open the position an entry fill created; returns the cash change (minus the fee)."""
    liq = liquidation_price_nb(side, price, quantity, quantity * price / leverage, brackets)
    position_id = int(account[NEXT_POSITION_ID])
    account[NEXT_POSITION_ID] = position_id + 1
    open_position_nb(
        pos,
        side,
        quantity,
        price,
        time_ms,
        leverage,
        stop_pct,
        exits.take_profit_pct,
        exits.partial_take_profit_pct,
        exits.partial_fraction,
        liq,
        exits.emergency_fraction,
        fee,
        signal_time_ms,
        position_id,
        tick_size,
    )
    return -fee


@step_jit
def entry_fill_terms_nb(
    side: int, quantity: float, open_: float, bar_range: float, costs: CostParams
) -> tuple[float, float]:
    """(fill price, fee) of a market entry at a candle's open."""
    price = taker_price_nb(open_, side > 0, bar_range, costs)
    return price, fee_nb(price, quantity, False, costs)


@step_jit
def enter_at_open_nb(
    pos: F64,
    account: F64,
    pending: F64,
    open_: float,
    bar_range: float,
    time_ms: int,
    exits: ExitParams,
    costs: CostParams,
    brackets: F64,
    tick_size: float,
) -> float:
    """Fill the pending entry as a taker at this open; returns the cash change (the fee)."""
    side = int(pending[OPEN_SIDE])
    qty = pending[OPEN_QTY]
    price, fee = entry_fill_terms_nb(side, qty, open_, bar_range, costs)
    return open_from_fill_nb(
        pos,
        account,
        side,
        qty,
        price,
        fee,
        time_ms,
        pending[OPEN_LEVERAGE],
        pending[OPEN_STOP_PCT],
        int(pending[OPEN_SIGNAL_TIME]),
        exits,
        brackets,
        tick_size,
    )


@step_jit
def exit_fill_terms_nb(
    side: int,
    price: float,
    quantity: float,
    reason: int,
    maker: bool,
    bar_range: float,
    costs: CostParams,
) -> tuple[float, float]:
    """(fill price, fee) of an exit: limits fill at their level with the maker fee; market and
    stop orders pay slippage and the taker fee; a liquidation has neither."""
    if reason == LIQUIDATION:
        return price, 0.0
    if maker:
        return price, fee_nb(price, quantity, True, costs)
    filled = taker_price_nb(price, side < 0, bar_range, costs)
    return filled, fee_nb(filled, quantity, False, costs)
