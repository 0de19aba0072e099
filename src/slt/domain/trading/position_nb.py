"""A position as a typed record, and the fills that change it.

One record type serves every position the engine follows: a real one (isolated margin,
leverage, liquidation price) and a virtual one (one unit, no margin: the learner's view of a
signal). Records are rows of a structured array, so kernels update them in place and a field
is read by name. ``side == 0`` means flat.

Cash accounting: fees, funding and realised PnL move cash; the isolated margin is part of cash
and only locked, so equity = cash + unrealised PnL at any price.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from slt.domain.features.jit import step_jit
from slt.domain.trading.enums import LIQUIDATION, PARTIAL_TAKE_PROFIT, STOP_LOSS
from slt.domain.trading.margin_nb import round_price_nb
from slt.domain.trading.params import ExitParams

# A numba record (a row of a POSITION_DT array); numba types it, Python sees ``np.void``.
Position = Any

POSITION_DT = np.dtype(
    [
        ("side", np.int64),  # +1 long, -1 short, 0 flat
        ("qty", np.float64),  # remaining base quantity
        ("qty_initial", np.float64),
        ("entry_price", np.float64),
        ("entry_time_ms", np.int64),
        ("leverage", np.float64),
        ("margin", np.float64),  # isolated margin still locked (shrinks with partial exits)
        ("stop", np.float64),  # protective stop price in force (initial, break-even, trailed)
        ("stop_reason", np.int64),  # exit reason recorded when the stop fills
        ("target", np.float64),  # take-profit price, NaN if none
        ("partial_price", np.float64),  # partial take-profit price, NaN if none or done
        ("partial_qty", np.float64),
        ("best", np.float64),  # most favourable price since entry (high long, low short)
        ("emergency", np.float64),  # emergency-close price, 0 if none
        ("liq", np.float64),  # liquidation price, 0 if none (a long that cannot be liquidated)
        ("fees", np.float64),
        ("funding", np.float64),  # funding paid (negative: received)
        ("realized", np.float64),  # gross price PnL of the exits so far
        ("signal_time_ms", np.int64),
        ("position_id", np.int64),
        ("stop_pct", np.float64),
        ("exit_value", np.float64),  # sum of exit price x quantity, for the average exit price
        ("last_exit_time_ms", np.int64),
        ("last_exit_reason", np.int64),
        ("confidence", np.float64),  # the confidence the entry was sized with
        ("n_exits", np.int64),  # exit fills so far (rows in the engine's exit log)
    ],
    align=True,
)


def new_positions(n: int) -> np.ndarray[Any, np.dtype[np.void]]:
    """``n`` flat positions."""
    return np.zeros(n, dtype=POSITION_DT)


@step_jit
def open_position_nb(
    pos: Position,
    side: int,
    quantity: float,
    price: float,
    time_ms: int,
    leverage: float,
    fee: float,
    liquidation_price: float,
    signal_time_ms: int,
    position_id: int,
) -> None:
    """A position opened by one fill; its exit levels come from ``set_levels_nb``.

    A ``liquidation_price`` of 0 means none: a virtual position, or a long that cannot be
    liquidated.
    """
    pos.side = side
    pos.qty = quantity
    pos.qty_initial = quantity
    pos.entry_price = price
    pos.entry_time_ms = time_ms
    pos.leverage = leverage
    pos.margin = quantity * price / leverage
    pos.liq = liquidation_price
    pos.fees = fee
    pos.funding = 0.0
    pos.realized = 0.0
    pos.signal_time_ms = signal_time_ms
    pos.position_id = position_id
    pos.exit_value = 0.0
    pos.last_exit_time_ms = 0
    pos.last_exit_reason = 0
    pos.confidence = np.nan
    pos.n_exits = 0


@step_jit
def add_to_position_nb(
    pos: Position, quantity: float, price: float, fee: float, liquidation_price: float
) -> None:
    """A further fill of the order that opened the position: the entry becomes the average."""
    total = pos.qty + quantity
    pos.entry_price = (pos.entry_price * pos.qty + price * quantity) / total
    pos.margin += quantity * price / pos.leverage
    pos.qty = total
    pos.qty_initial = total
    pos.fees += fee
    pos.liq = liquidation_price


@step_jit
def set_levels_nb(pos: Position, stop_pct: float, p: ExitParams, tick_size: float) -> None:
    """Stop, targets and emergency close as percentages of the entry price (the fill, so of
    the real entry), on the exchange's tick grid."""
    side = pos.side
    price = pos.entry_price
    pos.stop_pct = stop_pct
    pos.stop = round_price_nb(price * (1.0 - side * stop_pct / 100.0), tick_size)
    pos.stop_reason = STOP_LOSS
    pos.target = (
        round_price_nb(price * (1.0 + side * p.take_profit_pct / 100.0), tick_size)
        if p.take_profit_pct > 0
        else np.nan
    )
    if p.partial_take_profit_pct > 0 and 0 < p.partial_fraction < 1:
        pos.partial_price = round_price_nb(
            price * (1.0 + side * p.partial_take_profit_pct / 100.0), tick_size
        )
        pos.partial_qty = pos.qty_initial * p.partial_fraction
    else:
        pos.partial_price = np.nan
        pos.partial_qty = 0.0
    pos.best = price
    if pos.liq > 0:
        pos.emergency = round_price_nb(price + (pos.liq - price) * p.emergency_fraction, tick_size)
    else:
        pos.emergency = 0.0


@step_jit
def unrealized_pnl_nb(pos: Position, price: float) -> float:
    if pos.side == 0:
        return 0.0
    pnl: float = pos.side * pos.qty * (price - pos.entry_price)
    return pnl


@step_jit
def apply_exit_nb(
    pos: Position, price: float, quantity: float, reason: int, fee: float, time_ms: int
) -> float:
    """Reduce the position by ``quantity`` at ``price``; returns the cash change.

    A liquidation loses the whole remaining isolated margin, whatever the price. ``qty`` reaches
    exactly 0 once nothing is left; the caller records the trade, then sets ``side`` to 0.
    """
    qty = min(quantity, pos.qty)
    share = qty / pos.qty
    gross: float = (
        -pos.margin * share if reason == LIQUIDATION else pos.side * qty * (price - pos.entry_price)
    )
    pos.realized += gross
    pos.fees += fee
    pos.exit_value += price * qty
    pos.margin -= pos.margin * share
    pos.qty -= qty
    pos.last_exit_time_ms = time_ms
    pos.last_exit_reason = reason
    if reason == PARTIAL_TAKE_PROFIT:
        pos.partial_price = np.nan
    if pos.qty <= pos.qty_initial * 1e-12:
        pos.qty = 0.0
    return gross - fee


@step_jit
def net_pnl_nb(pos: Position) -> float:
    """Realised PnL after fees and funding: the one net-PnL formula of the engine."""
    pnl: float = pos.realized - pos.fees - pos.funding
    return pnl
