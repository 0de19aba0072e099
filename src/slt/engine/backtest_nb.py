"""The backtest loop: the simulated broker and the decision core over arrays, in numba.

Per candle: funding due at its open, the market orders decided at the previous close filled
at its open, resting stops and targets resolved inside it (on 1m candles when both sides are
touched and 1m data exists, else worst case), then the decision at its close.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from slt.domain.trading.enums import END_OF_DATA
from slt.domain.trading.exits_nb import (
    FILL_COLUMNS,
    FILL_MAKER,
    FILL_PRICE,
    FILL_QTY,
    FILL_REASON,
    is_ambiguous_nb,
    resolve_segment_nb,
    update_levels_nb,
)
from slt.domain.trading.params import CostParams, ExitParams, SizingParams
from slt.domain.trading.position_nb import (
    ENTRY_PRICE,
    ENTRY_TIME,
    EXIT_VALUE,
    FEES,
    FUNDING,
    LAST_EXIT_REASON,
    LAST_EXIT_TIME,
    LEVERAGE,
    N_SLOTS,
    POSITION_ID,
    QTY,
    QTY_INITIAL,
    REALIZED,
    SIDE,
    SIGNAL_TIME,
    apply_exit_nb,
    unrealized_pnl_nb,
)
from slt.engine.core_nb import (
    ACCOUNT_SLOTS,
    CASH,
    CLOSE_REASON,
    OPEN_SIDE,
    PENDING_SLOTS,
    decide_at_close_nb,
    enter_at_open_nb,
    exit_fill_terms_nb,
    funding_payment_nb,
    note_outcome_nb,
)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

# Columns of the trade rows (one per closed position).
T_ID = 0
T_SIDE = 1
T_ENTRY_TIME = 2
T_ENTRY_PRICE = 3
T_EXIT_TIME = 4
T_EXIT_PRICE = 5
T_QTY = 6
T_LEVERAGE = 7
T_MARGIN = 8
T_PNL = 9
T_FEES = 10
T_FUNDING = 11
T_EXIT_REASON = 12
T_SIGNAL_TIME = 13
TRADE_COLUMNS = 14

# Columns of the exit-fill rows.
X_ID = 0
X_TIME = 1
X_PRICE = 2
X_QTY = 3
X_REASON = 4
X_FEE = 5
EXIT_COLUMNS = 6


@njit(cache=True)
def _record_trade(pos: F64, trades: F64, k: int) -> None:
    trades[k, T_ID] = pos[POSITION_ID]
    trades[k, T_SIDE] = pos[SIDE]
    trades[k, T_ENTRY_TIME] = pos[ENTRY_TIME]
    trades[k, T_ENTRY_PRICE] = pos[ENTRY_PRICE]
    trades[k, T_EXIT_TIME] = pos[LAST_EXIT_TIME]
    trades[k, T_EXIT_PRICE] = pos[EXIT_VALUE] / pos[QTY_INITIAL]
    trades[k, T_QTY] = pos[QTY_INITIAL]
    trades[k, T_LEVERAGE] = pos[LEVERAGE]
    trades[k, T_MARGIN] = pos[QTY_INITIAL] * pos[ENTRY_PRICE] / pos[LEVERAGE]
    trades[k, T_PNL] = pos[REALIZED] - pos[FEES] - pos[FUNDING]
    trades[k, T_FEES] = pos[FEES]
    trades[k, T_FUNDING] = pos[FUNDING]
    trades[k, T_EXIT_REASON] = pos[LAST_EXIT_REASON]
    trades[k, T_SIGNAL_TIME] = pos[SIGNAL_TIME]


@njit(cache=True)
def _exit(
    pos: F64,
    account: F64,
    wins: F64,
    price: float,
    qty: float,
    reason: int,
    maker: bool,
    bar_range: float,
    time_ms: int,
    costs: CostParams,
    trades: F64,
    exits_out: F64,
    counts: I64,
) -> None:
    """Apply one exit fill, record it, and record the trade when the position is closed."""
    fill_price, fee = exit_fill_terms_nb(
        int(pos[SIDE]), price, qty, reason, maker, bar_range, costs
    )
    k = counts[1]
    exits_out[k, X_ID] = pos[POSITION_ID]
    exits_out[k, X_TIME] = time_ms
    exits_out[k, X_PRICE] = fill_price
    exits_out[k, X_QTY] = min(qty, pos[QTY])
    exits_out[k, X_REASON] = reason
    exits_out[k, X_FEE] = fee
    counts[1] = k + 1
    account[CASH] += apply_exit_nb(pos, fill_price, qty, reason, fee, time_ms)
    if pos[QTY] == 0.0:
        _record_trade(pos, trades, counts[0])
        note_outcome_nb(wins, account, trades[counts[0], T_PNL] > 0)
        counts[0] += 1
        pos[SIDE] = 0.0


@njit(cache=True)
def _resolve(
    pos: F64,
    account: F64,
    wins: F64,
    o: float,
    h: float,
    low: float,
    time_ms: int,
    buf: F64,
    costs: CostParams,
    trades: F64,
    exits_out: F64,
    counts: I64,
) -> None:
    n = resolve_segment_nb(pos, o, h, low, buf)
    for r in range(n):
        _exit(
            pos,
            account,
            wins,
            buf[r, FILL_PRICE],
            buf[r, FILL_QTY],
            int(buf[r, FILL_REASON]),
            buf[r, FILL_MAKER] > 0,
            h - low,
            time_ms,
            costs,
            trades,
            exits_out,
            counts,
        )


@njit(cache=True)
def backtest_nb(
    open_time_ms: I64,
    o: F64,
    h: F64,
    low: F64,
    c: F64,
    timeframe_ms: int,
    direction: npt.NDArray[np.int8],
    confidence: F64,
    stop_pct: F64,
    funding_time_ms: I64,
    funding_rate: F64,
    funding_mark: F64,
    sub_start: I64,
    sub_end: I64,
    sub_time_ms: I64,
    sub_o: F64,
    sub_h: F64,
    sub_low: F64,
    exits: ExitParams,
    costs: CostParams,
    sizing: SizingParams,
    brackets: F64,
    tick_size: float,
    step_size: float,
    min_notional: float,
    initial_equity: float,
) -> tuple[F64, F64, F64, npt.NDArray[np.bool_]]:
    """(trade rows, exit-fill rows, equity at each close, position open during each candle)."""
    n = len(o)
    pos = np.zeros(N_SLOTS)
    account = np.zeros(ACCOUNT_SLOTS)
    account[CASH] = initial_equity
    wins = np.zeros(max(sizing.win_rate_lookback, 1))
    pending = np.zeros(PENDING_SLOTS)
    trades = np.empty((n + 1, TRADE_COLUMNS))
    exits_out = np.empty((2 * n + 2, EXIT_COLUMNS))
    counts = np.zeros(2, dtype=np.int64)
    equity = np.empty(n)
    in_position = np.zeros(n, dtype=np.bool_)
    buf = np.empty((2, FILL_COLUMNS))
    fi = 0
    while fi < len(funding_time_ms) and funding_time_ms[fi] <= open_time_ms[0]:
        fi += 1
    for i in range(n):
        t = open_time_ms[i]
        rng = h[i] - low[i]
        while fi < len(funding_time_ms) and funding_time_ms[fi] <= t:
            mark = funding_mark[fi]
            if not np.isfinite(mark):
                mark = o[i]
            account[CASH] -= funding_payment_nb(pos, funding_time_ms[fi], funding_rate[fi], mark)
            fi += 1
        if pending[CLOSE_REASON] != 0 and pos[SIDE] != 0:
            _exit(
                pos,
                account,
                wins,
                o[i],
                pos[QTY],
                int(pending[CLOSE_REASON]),
                False,
                rng,
                t,
                costs,
                trades,
                exits_out,
                counts,
            )
        gap = i > 0 and t != open_time_ms[i - 1] + timeframe_ms
        if pending[OPEN_SIDE] != 0 and pos[SIDE] == 0 and not gap:
            account[CASH] += enter_at_open_nb(
                pos, account, pending, o[i], rng, t, exits, costs, brackets, tick_size
            )
        pending[:] = 0.0
        if pos[SIDE] != 0:
            in_position[i] = True
            if sub_start[i] >= 0 and is_ambiguous_nb(pos, h[i], low[i]):
                for j in range(sub_start[i], sub_end[i]):
                    _resolve(
                        pos,
                        account,
                        wins,
                        sub_o[j],
                        sub_h[j],
                        sub_low[j],
                        sub_time_ms[j],
                        buf,
                        costs,
                        trades,
                        exits_out,
                        counts,
                    )
                    if pos[SIDE] == 0:
                        break
            else:
                _resolve(
                    pos,
                    account,
                    wins,
                    o[i],
                    h[i],
                    low[i],
                    t,
                    buf,
                    costs,
                    trades,
                    exits_out,
                    counts,
                )
        if pos[SIDE] != 0:
            update_levels_nb(pos, h[i], low[i], exits, tick_size)
        eq = account[CASH] + unrealized_pnl_nb(pos, c[i])
        equity[i] = eq
        if i + 1 < n:
            decide_at_close_nb(
                pos,
                account,
                wins,
                pending,
                eq,
                c[i],
                t,
                t + timeframe_ms,
                int(direction[i]),
                confidence[i],
                stop_pct[i],
                exits,
                sizing,
                brackets,
                step_size,
                min_notional,
            )
    if pos[SIDE] != 0:
        last = n - 1
        _exit(
            pos,
            account,
            wins,
            c[last],
            pos[QTY],
            END_OF_DATA,
            False,
            0.0,
            open_time_ms[last] + timeframe_ms,
            costs,
            trades,
            exits_out,
            counts,
        )
        equity[last] = account[CASH]
    return trades[: counts[0]].copy(), exits_out[: counts[1]].copy(), equity, in_position
