"""The simulated exchange's state: positions as the exchange sees them, resting orders, the
current bar of every symbol, and the virtual positions it follows for the learner.

Like ``Book``, a NamedTuple of typed arrays that the compiled backtest and the Python
wrapper hand to the same kernels (``exchange_nb``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from slt.domain.trading.params import CostParams, ExitParams
from slt.domain.trading.position_nb import POSITION_DT

I8, F8, B1 = np.int64, np.float64, np.bool_
Records = np.ndarray

MAX_VENUE_ORDERS = 16
VIRTUAL_CAPACITY = 256

# Phases of a symbol's bar at the exchange.
PHASE_CLOSED = 0  # between bars: a market order waits for the next open
PHASE_OPEN = 1  # at the open: a market order fills at it

# Virtual position slots.
V_FREE = 0
V_PENDING = 1  # decided at a close, enters at the next open
V_OPEN = 2

VENUE_POSITION_DT = np.dtype(
    [
        ("side", I8),
        ("qty", F8),
        ("qty_initial", F8),
        ("entry_price", F8),
        ("entry_time_ms", I8),
        ("leverage", F8),
        ("margin", F8),
        ("liq", F8),
    ],
    align=True,
)

VENUE_ORDER_DT = np.dtype(
    [
        ("seq", I8),  # 0 = free
        ("kind", I8),
        ("side", I8),
        ("quantity", F8),
        ("filled", F8),
        ("price", F8),
        ("reduce_only", B1),
        ("close_position", B1),
        ("leverage", F8),
        ("cancel_at_bar_end", B1),  # a cancel that reaches the exchange late (fault)
    ],
    align=True,
)

VENUE_SYMBOL_DT = np.dtype(
    [
        ("phase", I8),
        ("open_time_ms", I8),
        ("open", F8),
        ("high", F8),
        ("low", F8),
        ("close", F8),
        ("previous_close_ms", I8),  # close time of the previous bar; -1 before the first
        ("gap", B1),  # this bar does not follow the previous one: no price to fill entries at
        ("funding_cursor", I8),
        ("trade_seq", I8),
        # Counters that let a quiet bar skip the work (kept by the kernels, never by hand):
        ("resting", I8),  # orders in the book
        ("markets", I8),  # market orders among them, waiting for an open
        ("late_cancels", I8),  # cancels that take effect at the end of the bar (fault)
        ("virtuals", I8),  # virtual positions pending or open
        ("levels_fresh", B1),  # ``levels[symbol]`` still shows its orders and position
    ],
    align=True,
)

VIRTUAL_META_DT = np.dtype(
    [
        ("state", I8),
        ("symbol", I8),
        ("serial", I8),  # order of the signals, for the outcome rows
        ("signal_time_ms", I8),
        ("entry_after_ms", I8),
        ("direction", I8),
        ("stop_pct", F8),
        ("confidence", F8),
        ("model_version", I8),
    ],
    align=True,
)

# One virtual position's outcome: the learner's label.
VIRTUAL_OUTCOME_DT = np.dtype(
    [
        ("serial", I8),
        ("symbol", I8),
        ("signal_time_ms", I8),
        ("side", I8),
        ("entry_time_ms", I8),
        ("entry_price", F8),
        ("stop_pct", F8),
        ("exit_time_ms", I8),
        ("exit_price", F8),
        ("exit_reason", I8),
        ("return_pct", F8),
        ("closed", B1),  # False: still open at the end of the data (no label yet)
        ("confidence", F8),
        ("model_version", I8),
    ],
    align=True,
)


class Faults(NamedTuple):
    """Exchange behaviour the tests inject, drawn from a seeded generator (all off by default).

    Probabilities are per order or per fill; ``fill_parts`` > 1 splits fills into up to that
    many trades."""

    fill_parts: int = 1
    duplicate_fill_rate: float = 0.0
    reject_entry_rate: float = 0.0
    reject_stop_rate: float = 0.0
    late_cancel_rate: float = 0.0
    seed: int = 0


class VenueParams(NamedTuple):
    costs: CostParams
    exits: ExitParams  # the levels of virtual positions
    timeframe_ms: int
    faults: Faults
    follow_virtual: bool = True  # False: a backtest that keeps no learning data skips them


class Venue(NamedTuple):
    positions: Records  # VENUE_POSITION_DT[symbols]
    orders: Records  # VENUE_ORDER_DT[symbols, MAX_VENUE_ORDERS]
    symbols: Records  # VENUE_SYMBOL_DT[symbols]
    rng: npt.NDArray[np.uint64]  # [1]
    levels: Records  # POSITION_DT[symbols]: the resting orders seen as exit levels
    virtual: Records  # POSITION_DT[capacity]
    virtual_meta: Records  # VIRTUAL_META_DT[capacity]
    counters: npt.NDArray[np.int64]  # [virtual slots in use, next serial, slots below it used]


def new_venue(
    n_symbols: int,
    faults: Faults,
    virtual_capacity: int = VIRTUAL_CAPACITY,
    max_orders: int = MAX_VENUE_ORDERS,
) -> Venue:
    symbols = np.zeros(n_symbols, dtype=VENUE_SYMBOL_DT)
    symbols["previous_close_ms"] = -1
    rng = np.array([(faults.seed * 0x9E3779B97F4A7C15 + 1) % 2**64 or 1], dtype=np.uint64)
    return Venue(
        positions=np.zeros(n_symbols, dtype=VENUE_POSITION_DT),
        orders=np.zeros((n_symbols, max_orders), dtype=VENUE_ORDER_DT),
        symbols=symbols,
        rng=rng,
        levels=np.zeros(n_symbols, dtype=POSITION_DT),
        virtual=np.zeros(virtual_capacity, dtype=POSITION_DT),
        virtual_meta=np.zeros(virtual_capacity, dtype=VIRTUAL_META_DT),
        counters=np.zeros(3, dtype=np.int64),
    )


def grow_virtual(venue: Venue) -> Venue:
    """Twice the room for virtual positions (the kernels never allocate)."""
    n = len(venue.virtual)
    virtual = np.zeros(2 * n, dtype=POSITION_DT)
    meta = np.zeros(2 * n, dtype=VIRTUAL_META_DT)
    virtual[:n] = venue.virtual
    meta[:n] = venue.virtual_meta
    return venue._replace(virtual=virtual, virtual_meta=meta)
