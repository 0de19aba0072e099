"""An open position as a float64 array with named slots, and the fills that change it.

One array instead of a NamedTuple so kernels update it in place; ``SIDE == 0`` means flat.
Cash accounting: fees, funding and realised PnL move cash; the isolated margin is part of cash
and only locked, so equity = cash + unrealised PnL at any price.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from slt.domain.features.jit import step_jit
from slt.domain.trading.enums import LIQUIDATION, PARTIAL_TAKE_PROFIT, STOP_LOSS
from slt.domain.trading.margin_nb import round_price_nb

F64 = npt.NDArray[np.float64]

SIDE = 0
QTY = 1  # remaining base quantity
QTY_INITIAL = 2
ENTRY_PRICE = 3
ENTRY_TIME = 4
LEVERAGE = 5
MARGIN = 6  # isolated margin still locked (shrinks with partial exits)
STOP = 7  # protective stop price in force (initial, break-even or trailed)
STOP_REASON = 8  # exit reason recorded when STOP fills
TARGET = 9  # take-profit price, NaN if none
PARTIAL_PRICE = 10  # partial take-profit price, NaN if none or done
PARTIAL_QTY = 11
BEST = 12  # most favourable price seen since entry (high for longs, low for shorts)
EMERGENCY = 13
LIQ = 14  # liquidation price (0 for a long that cannot be liquidated)
FEES = 15
FUNDING = 16  # funding paid (negative: received)
REALIZED = 17  # gross price PnL of the exits so far
SIGNAL_TIME = 18
POSITION_ID = 19
STOP_PCT = 20
EXIT_VALUE = 21  # sum of exit price x quantity, for the average exit price
LAST_EXIT_TIME = 22
LAST_EXIT_REASON = 23
N_SLOTS = 24


def new_position() -> F64:
    return np.zeros(N_SLOTS, dtype=np.float64)


@step_jit
def open_position_nb(
    pos: F64,
    side: int,
    quantity: float,
    price: float,
    time_ms: int,
    leverage: float,
    stop_pct: float,
    take_profit_pct: float,
    partial_pct: float,
    partial_fraction: float,
    liquidation_price: float,
    emergency_fraction: float,
    fee: float,
    signal_time_ms: int,
    position_id: int,
    tick_size: float,
) -> None:
    """Levels are set from the fill price, so they are percentages of the real entry; the
    exchange takes order prices only on its tick grid, so they are rounded to it."""
    pos[:] = 0.0
    pos[SIDE] = side
    pos[QTY] = quantity
    pos[QTY_INITIAL] = quantity
    pos[ENTRY_PRICE] = price
    pos[ENTRY_TIME] = time_ms
    pos[LEVERAGE] = leverage
    pos[MARGIN] = quantity * price / leverage
    pos[STOP] = round_price_nb(price * (1.0 - side * stop_pct / 100.0), tick_size)
    pos[STOP_REASON] = STOP_LOSS
    pos[TARGET] = (
        round_price_nb(price * (1.0 + side * take_profit_pct / 100.0), tick_size)
        if take_profit_pct > 0
        else np.nan
    )
    if partial_pct > 0 and 0 < partial_fraction < 1:
        pos[PARTIAL_PRICE] = round_price_nb(price * (1.0 + side * partial_pct / 100.0), tick_size)
        pos[PARTIAL_QTY] = quantity * partial_fraction
    else:
        pos[PARTIAL_PRICE] = np.nan
    pos[BEST] = price
    pos[LIQ] = liquidation_price
    pos[EMERGENCY] = round_price_nb(
        price + (liquidation_price - price) * emergency_fraction, tick_size
    )
    if side == 1 and liquidation_price <= 0:
        pos[EMERGENCY] = 0.0
    pos[FEES] = fee
    pos[SIGNAL_TIME] = signal_time_ms
    pos[POSITION_ID] = position_id
    pos[STOP_PCT] = stop_pct


@step_jit
def unrealized_pnl_nb(pos: F64, price: float) -> float:
    if pos[SIDE] == 0:
        return 0.0
    pnl: float = pos[SIDE] * pos[QTY] * (price - pos[ENTRY_PRICE])
    return pnl


@step_jit
def apply_exit_nb(
    pos: F64, price: float, quantity: float, reason: int, fee: float, time_ms: int
) -> float:
    """Reduce the position by ``quantity`` at ``price``; returns the cash change.

    A liquidation loses the whole remaining isolated margin, whatever the price.
    """
    qty = min(quantity, pos[QTY])
    share = qty / pos[QTY]
    gross: float = (
        -pos[MARGIN] * share
        if reason == LIQUIDATION
        else pos[SIDE] * qty * (price - pos[ENTRY_PRICE])
    )
    pos[REALIZED] += gross
    pos[FEES] += fee
    pos[EXIT_VALUE] += price * qty
    pos[MARGIN] -= pos[MARGIN] * share
    pos[QTY] -= qty
    pos[LAST_EXIT_TIME] = time_ms
    pos[LAST_EXIT_REASON] = reason
    if reason == PARTIAL_TAKE_PROFIT:
        pos[PARTIAL_PRICE] = np.nan
    if pos[QTY] <= pos[QTY_INITIAL] * 1e-12:
        pos[QTY] = 0.0
    return gross - fee
