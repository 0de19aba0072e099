"""Virtual positions: every signal's outcome, closed by the exit kernels of real positions.

Each signal opens a one-unit position at the next candle's open, as the backtest loop would
fill it, and is walked candle by candle in the loop's order: the time stop decided at the
previous close fills at this open, resting stops and targets are resolved inside the candle
(on 1m candles when both sides are touched and 1m data exists), then levels move at the close.
Virtual positions are independent: they overlap, an opposite signal does not close them, and
there is no equity, sizing, leverage or liquidation, only percentages of the entry.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from slt.domain.features.jit import step_jit
from slt.domain.trading.enums import END_OF_DATA, TIME_STOP
from slt.domain.trading.exits_nb import (
    FILL_COLUMNS,
    FILL_MAKER,
    FILL_PRICE,
    FILL_QTY,
    FILL_REASON,
    is_ambiguous_nb,
    resolve_segment_nb,
    time_stop_due_nb,
    update_levels_nb,
)
from slt.domain.trading.params import CostParams, ExitParams
from slt.domain.trading.position_nb import (
    EMERGENCY,
    ENTRY_PRICE,
    EXIT_VALUE,
    FEES,
    LAST_EXIT_REASON,
    LAST_EXIT_TIME,
    LIQ,
    N_SLOTS,
    QTY,
    QTY_INITIAL,
    REALIZED,
    SIDE,
    apply_exit_nb,
    open_position_nb,
)
from slt.engine.core_nb import entry_fill_terms_nb, exit_fill_terms_nb

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

# Columns of the outcome rows (one per virtual position).
V_SIGNAL_INDEX = 0
V_SIDE = 1
V_ENTRY_TIME = 2
V_ENTRY_PRICE = 3
V_STOP_PCT = 4
V_EXIT_TIME = 5
V_EXIT_PRICE = 6
V_EXIT_REASON = 7
V_RETURN_PCT = 8
V_CLOSED = 9  # 1.0 closed by an exit, 0.0 still open at the end of the data
OUTCOME_COLUMNS = 10


@step_jit
def opens_virtual_nb(
    i: int, open_time_ms: I64, timeframe_ms: int, direction: npt.NDArray[np.int8], stop_pct: F64
) -> bool:
    """A signal at bar ``i``'s close that the loop would enter at bar ``i + 1``'s open: a
    direction, a finite stop above 0, a next candle, and no hole in the data before it."""
    if direction[i] == 0 or not (np.isfinite(stop_pct[i]) and stop_pct[i] > 0.0):
        return False
    return i + 1 < len(open_time_ms) and open_time_ms[i + 1] == open_time_ms[i] + timeframe_ms


@step_jit
def _fill_nb(
    pos: F64,
    price: float,
    qty: float,
    reason: int,
    maker: bool,
    bar_range: float,
    time_ms: int,
    costs: CostParams,
) -> None:
    """One exit fill with the loop's price and fee; the position is flat once it is all sold."""
    fill_price, fee = exit_fill_terms_nb(
        int(pos[SIDE]), price, qty, reason, maker, bar_range, costs
    )
    apply_exit_nb(pos, fill_price, qty, reason, fee, time_ms)
    if pos[QTY] == 0.0:
        pos[SIDE] = 0.0


@step_jit
def _resolve_nb(
    pos: F64, o: float, h: float, low: float, time_ms: int, buf: F64, costs: CostParams
) -> None:
    n = resolve_segment_nb(pos, o, h, low, buf)
    for r in range(n):
        _fill_nb(
            pos,
            buf[r, FILL_PRICE],
            buf[r, FILL_QTY],
            int(buf[r, FILL_REASON]),
            buf[r, FILL_MAKER] > 0,
            h - low,
            time_ms,
            costs,
        )


@step_jit
def walk_virtual_nb(
    pos: F64,
    start: int,
    open_time_ms: I64,
    o: F64,
    h: F64,
    low: F64,
    c: F64,
    timeframe_ms: int,
    sub_start: I64,
    sub_end: I64,
    sub_time_ms: I64,
    sub_o: F64,
    sub_h: F64,
    sub_low: F64,
    exits: ExitParams,
    costs: CostParams,
    tick_size: float,
    buf: F64,
) -> bool:
    """Walk a position opened at bar ``start``'s open until it is closed (True) or the data
    ends (False: marked out at the last close as END_OF_DATA, like the loop's last trade)."""
    n = len(o)
    for j in range(start, n):
        t = open_time_ms[j]
        # The loop decides a time stop at the previous close and fills it at this open.
        if j > start and time_stop_due_nb(pos, open_time_ms[j - 1] + timeframe_ms, exits):
            _fill_nb(pos, o[j], pos[QTY], TIME_STOP, False, h[j] - low[j], t, costs)
            return True
        if sub_start[j] >= 0 and is_ambiguous_nb(pos, h[j], low[j]):
            for m in range(sub_start[j], sub_end[j]):
                _resolve_nb(pos, sub_o[m], sub_h[m], sub_low[m], sub_time_ms[m], buf, costs)
                if pos[SIDE] == 0:
                    break
        else:
            _resolve_nb(pos, o[j], h[j], low[j], t, buf, costs)
        if pos[SIDE] == 0:
            return True
        update_levels_nb(pos, h[j], low[j], exits, tick_size)
    last = n - 1
    _fill_nb(
        pos, c[last], pos[QTY], END_OF_DATA, False, 0.0, open_time_ms[last] + timeframe_ms, costs
    )
    return False


@njit(cache=True)
def virtual_outcomes_nb(
    open_time_ms: I64,
    o: F64,
    h: F64,
    low: F64,
    c: F64,
    timeframe_ms: int,
    direction: npt.NDArray[np.int8],
    stop_pct: F64,
    sub_start: I64,
    sub_end: I64,
    sub_time_ms: I64,
    sub_o: F64,
    sub_h: F64,
    sub_low: F64,
    exits: ExitParams,
    costs: CostParams,
    tick_size: float,
) -> F64:
    """One outcome row per virtual position, in signal order (see the ``V_*`` columns)."""
    n = len(o)
    count = 0
    for i in range(n):
        if opens_virtual_nb(i, open_time_ms, timeframe_ms, direction, stop_pct):
            count += 1
    out = np.empty((count, OUTCOME_COLUMNS))
    pos = np.zeros(N_SLOTS)
    buf = np.empty((2, FILL_COLUMNS))
    k = 0
    for i in range(n):
        if not opens_virtual_nb(i, open_time_ms, timeframe_ms, direction, stop_pct):
            continue
        side = 1 if direction[i] > 0 else -1
        entry = i + 1
        price, fee = entry_fill_terms_nb(side, 1.0, o[entry], h[entry] - low[entry], costs)
        open_position_nb(
            pos,
            side,
            1.0,
            price,
            open_time_ms[entry],
            1.0,
            stop_pct[i],
            exits.take_profit_pct,
            exits.partial_take_profit_pct,
            exits.partial_fraction,
            0.0,
            0.0,
            fee,
            open_time_ms[i],
            k,
            tick_size,
        )
        # No margin, so nothing to liquidate: 0 turns both levels off in resolve_segment_nb
        # (open_position_nb only does so for longs; a short's emergency would sit at its entry).
        pos[LIQ] = 0.0
        pos[EMERGENCY] = 0.0
        closed = walk_virtual_nb(
            pos,
            entry,
            open_time_ms,
            o,
            h,
            low,
            c,
            timeframe_ms,
            sub_start,
            sub_end,
            sub_time_ms,
            sub_o,
            sub_h,
            sub_low,
            exits,
            costs,
            tick_size,
            buf,
        )
        out[k, V_SIGNAL_INDEX] = i
        out[k, V_SIDE] = side
        out[k, V_ENTRY_TIME] = open_time_ms[entry]
        out[k, V_ENTRY_PRICE] = pos[ENTRY_PRICE]
        out[k, V_STOP_PCT] = stop_pct[i]
        out[k, V_EXIT_TIME] = pos[LAST_EXIT_TIME]
        out[k, V_EXIT_PRICE] = pos[EXIT_VALUE] / pos[QTY_INITIAL]
        out[k, V_EXIT_REASON] = pos[LAST_EXIT_REASON]
        out[k, V_RETURN_PCT] = (
            (pos[REALIZED] - pos[FEES]) / (pos[QTY_INITIAL] * pos[ENTRY_PRICE]) * 100.0
        )
        out[k, V_CLOSED] = 1.0 if closed else 0.0
        k += 1
    return out
