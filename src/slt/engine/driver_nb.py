"""The compiled backtest: bars of every symbol through the simulated exchange and the decision
step, events and commands routed between them as they would be live.

Per step (one bar open time, every symbol with a bar then): the exchange opens each bar
(funding, market orders at the open), then matches inside each bar (resting orders, virtual
positions) and closes it, then the core sees each bar's close. Every event the exchange emits
goes to the decision step (``apply_event_nb``) in the order it was emitted, every command the
core issues goes back to the exchange, until nothing is left. A symbol's last bar gets no close
decision: its data ends, the exchange opens at the last close and the core closes what is open
there.

The Python event driver (``event_driver``) runs the same exchange kernels and the same
decision step through the reducer, event object by event object; tests hold the two equal.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from slt.domain.features.jit import step_jit
from slt.domain.trading.enums import END_OF_DATA
from slt.domain.trading.exits_nb import FILL_COLUMNS
from slt.engine.book import Book, DecisionParams, Outbox, SymbolTable
from slt.engine.decision_nb import account_equity_nb, apply_event_nb, quiet_close_nb
from slt.engine.exchange_nb import end_of_data_nb, execute_nb, match_phase_nb, open_phase_nb
from slt.engine.records import (
    CMD_CANCEL_ORDER,
    CMD_NOTIFY,
    CMD_OPEN_VIRTUAL,
    CMD_PLACE_ORDER,
    ERR_OUTPUT_FULL,
    EV_CANDLE_CLOSED,
    EV_CLOSE_REQUESTED,
    EV_MODEL_CHANGED,
    EVENT_DT,
    EXIT_DT,
    MAX_EXIT_FILLS,
    TRADE_DT,
)
from slt.engine.venue import VIRTUAL_OUTCOME_DT, Venue, VenueParams

I64 = np.ndarray
F64 = np.ndarray
EVENT_QUEUE = 4096


class Market(NamedTuple):
    """Every symbol's bars in step order (open time, then symbol), with their signals."""

    bar_time_ms: I64
    bar_symbol: I64
    open: F64
    high: F64
    low: F64
    close: F64
    last_of_symbol: np.ndarray  # bool: the symbol's last bar (its data ends after it)
    direction: np.ndarray  # int8
    confidence: F64
    stop_pct: F64
    gate: np.ndarray  # bool: the model lets the signal trade
    minute_start: I64  # per bar: its 1m candles in the minute arrays, -1 if none
    minute_end: I64
    minute_time_ms: I64
    minute_open: F64
    minute_high: F64
    minute_low: F64
    funding_start: I64  # per symbol: its rows of the funding arrays
    funding_end: I64
    funding_time_ms: I64
    funding_rate: F64
    funding_mark: F64
    model_time_ms: I64  # a model change applies from the first close at or after its time
    model_version: I64


class Run(NamedTuple):
    """What the compiled driver produced; ``error`` < 0 if an event was refused."""

    trades: np.ndarray  # TRADE_DT
    exits: np.ndarray  # EXIT_DT
    step_time_ms: I64  # open time of each step
    equity: F64  # at each step's close
    outcomes: np.ndarray  # VIRTUAL_OUTCOME_DT
    events: int
    notices: I64  # per notice code
    error: int
    fault: I64


@njit(cache=True)
def _grow(records: np.ndarray, need: int) -> np.ndarray:
    if len(records) >= need:
        return records
    bigger = np.zeros(max(need, 2 * len(records)), dtype=records.dtype)
    bigger[: len(records)] = records
    return bigger


class Scratch(NamedTuple):
    """The driver's working arrays, and where it is (so a run can resume after growing)."""

    queue: np.ndarray  # EVENT_DT: events waiting to be applied
    buf: F64  # fill rows of one segment
    notices: I64  # per notice code
    step_time: I64
    equity: F64
    cursor: I64  # [next bar, steps done, events applied, next model change, error]


@step_jit
def _route(
    book: Book,
    table: SymbolTable,
    dp: DecisionParams,
    out: Outbox,
    venue: Venue,
    vp: VenueParams,
    queue: np.ndarray,
    tail: int,
    notices: I64,
) -> tuple[int, int]:
    """Deliver the queued events in order, sending each command back to the exchange.
    Returns (events applied, error code or 0)."""
    head = 0
    while head < tail:
        rc = apply_event_nb(book, table, dp, out, queue[head])
        head += 1
        if rc < 0:
            return head, rc
        for c in range(out.counts[0]):
            cmd = out.commands[c]
            if (
                cmd.kind == CMD_PLACE_ORDER
                or cmd.kind == CMD_CANCEL_ORDER
                or (cmd.kind == CMD_OPEN_VIRTUAL)
            ):
                tail = execute_nb(venue, vp, table, cmd, queue, tail)
            elif cmd.kind == CMD_NOTIFY and cmd.code < len(notices):
                notices[cmd.code] += 1
        out.counts[0] = 0
        if tail > len(queue) - 64:
            return head, -ERR_OUTPUT_FULL  # a runaway cascade
    return head, 0


@step_jit
def _candle_event(queue: np.ndarray, k: int, m: Market, i: int, close_ms: int) -> None:
    e = queue[k]
    e.kind = EV_CANDLE_CLOSED
    e.symbol = m.bar_symbol[i]
    e.open_time_ms = m.bar_time_ms[i]
    e.time_ms = close_ms
    e.open = m.open[i]
    e.high = m.high[i]
    e.low = m.low[i]
    e.close = m.close[i]
    e.direction = m.direction[i]
    e.confidence = m.confidence[i]
    e.stop_pct = m.stop_pct[i]
    e.gate = m.gate[i]


NEED_ROOM = 1


@step_jit
def run_steps_nb(
    m: Market,
    table: SymbolTable,
    dp: DecisionParams,
    vp: VenueParams,
    book: Book,
    venue: Venue,
    out: Outbox,
    x: Scratch,
    outcomes: np.ndarray,
    n_outcomes: int,
) -> tuple[int, int]:
    """Steps from ``x.cursor`` on, until the end (0), a table that needs room (NEED_ROOM), or
    a refused event (the error < 0). Returns (that status, outcomes written). Compiled without
    reference counting: nothing in here allocates, and a step costs a few dozen nanoseconds."""
    n = len(m.bar_time_ms)
    n_symbols = len(book.positions)
    first = x.cursor[0]
    step = x.cursor[1]
    model_next = x.cursor[3]
    queue = x.queue
    while first < n:
        if (
            len(venue.virtual_meta) - venue.counters[0] < 2 * n_symbols + 2
            or len(outcomes) < n_outcomes + len(venue.virtual)
            or len(out.trades) < out.counts[1] + 2 * n_symbols + 2
            or len(out.exits) < out.counts[2] + (2 * n_symbols + 2) * MAX_EXIT_FILLS
        ):
            x.cursor[0] = first
            x.cursor[1] = step
            x.cursor[3] = model_next
            return NEED_ROOM, n_outcomes
        last = first
        while last + 1 < n and m.bar_time_ms[last + 1] == m.bar_time_ms[first]:
            last += 1
        x.step_time[step] = m.bar_time_ms[first]
        close_ms = m.bar_time_ms[first] + vp.timeframe_ms
        rc = 0
        # The open of every bar of the step: funding due, market orders waiting for it, the
        # virtual entries. Then inside every bar: the position's orders, late cancels, the
        # virtual exits; the bar closes before the core answers (a market order it sends then
        # waits for the next open). The same phase kernels as the event driver's, inlined.
        for i in range(first, last + 1):
            s = m.bar_symbol[i]
            f0, f1 = m.funding_start[s], m.funding_end[s]
            tail = open_phase_nb(
                venue, vp, table, s, m.bar_time_ms[i], m.open[i], m.high[i], m.low[i],
                m.close[i], m.funding_time_ms, m.funding_rate, m.funding_mark, f0, f1, queue,
            )  # fmt: skip
            if tail > 0:
                applied, rc = _route(book, table, dp, out, venue, vp, queue, tail, x.notices)
                x.cursor[2] += applied
                if rc < 0:
                    break
        for i in range(first, last + 1):
            if rc < 0:
                break
            s = m.bar_symbol[i]
            a, b = m.minute_start[i], m.minute_end[i]
            if a < 0:
                a, b = 0, 0
            tail, n_outcomes = match_phase_nb(
                venue, vp, table, s, m.minute_time_ms[a:b], m.minute_open[a:b],
                m.minute_high[a:b], m.minute_low[a:b], x.buf, queue, outcomes, n_outcomes,
            )  # fmt: skip
            if tail > 0:
                applied, rc = _route(book, table, dp, out, venue, vp, queue, tail, x.notices)
                x.cursor[2] += applied
        # Model changes in force from this close on, then the close of every bar that has a
        # next one (a close without a signal on a flat symbol only sets its mark).
        tail = 0
        while (
            rc == 0
            and model_next < len(m.model_time_ms)
            and (m.model_time_ms[model_next] <= close_ms)
        ):
            queue[tail].kind = EV_MODEL_CHANGED
            queue[tail].code = m.model_version[model_next]
            tail += 1
            model_next += 1
        for i in range(first, last + 1):
            if rc < 0 or m.last_of_symbol[i]:
                continue
            s = m.bar_symbol[i]
            if tail == 0 and quiet_close_nb(
                book.positions, book.marks, s, m.direction[i], m.high[i], m.low[i], m.close[i],
                close_ms, dp.exits, table.tick_size[s],
            ):  # fmt: skip
                x.cursor[2] += 1
                continue
            _candle_event(queue, tail, m, i, close_ms)
            tail += 1
        if tail > 0 and rc == 0:
            applied, rc = _route(book, table, dp, out, venue, vp, queue, tail, x.notices)
            x.cursor[2] += applied
        # The end of a symbol's data: the exchange opens at its last close, the core closes.
        for i in range(first, last + 1):
            if rc < 0 or not m.last_of_symbol[i]:
                continue
            s = m.bar_symbol[i]
            tail, n_outcomes = end_of_data_nb(
                venue, vp, table, s, m.close[i], close_ms, queue, 0, outcomes, n_outcomes
            )
            queue[tail].kind = EV_CLOSE_REQUESTED
            queue[tail].symbol = s
            queue[tail].code = END_OF_DATA
            tail += 1
            applied, rc = _route(book, table, dp, out, venue, vp, queue, tail, x.notices)
            x.cursor[2] += applied
        if rc < 0:
            x.cursor[4] = rc
            return rc, n_outcomes
        x.equity[step] = account_equity_nb(book.account, book.positions, book.marks)
        step += 1
        first = last + 1
    x.cursor[0] = first
    x.cursor[1] = step
    x.cursor[3] = model_next
    return 0, n_outcomes


@njit(cache=True)
def run_market_nb(
    m: Market,
    table: SymbolTable,
    dp: DecisionParams,
    vp: VenueParams,
    book: Book,
    venue: Venue,
    out: Outbox,
) -> tuple[Run, Venue, Outbox]:
    """Run every step; between stretches of steps, grow the tables that ran short."""
    n = len(m.bar_time_ms)
    n_symbols = len(book.positions)
    n_steps = 0
    for i in range(n):
        if i == 0 or m.bar_time_ms[i] != m.bar_time_ms[i - 1]:
            n_steps += 1
    x = Scratch(
        np.zeros(EVENT_QUEUE, dtype=EVENT_DT),
        np.empty((2, FILL_COLUMNS)),
        np.zeros(16, dtype=np.int64),
        np.zeros(n_steps, dtype=np.int64),
        np.zeros(n_steps),
        np.zeros(5, dtype=np.int64),
    )
    outcomes = np.zeros(256, dtype=VIRTUAL_OUTCOME_DT)
    n_outcomes = 0
    while True:
        status, n_outcomes = run_steps_nb(m, table, dp, vp, book, venue, out, x, outcomes,
                                          n_outcomes)  # fmt: skip
        if status != NEED_ROOM:
            break
        if len(venue.virtual_meta) - venue.counters[0] < 2 * n_symbols + 2:
            venue = _grown_venue(venue)
        outcomes = _grow(outcomes, n_outcomes + len(venue.virtual))
        out = Outbox(
            out.commands,
            _grow(out.trades, out.counts[1] + 2 * n_symbols + 2),
            _grow(out.exits, out.counts[2] + (2 * n_symbols + 2) * MAX_EXIT_FILLS),
            out.counts,
            out.fault,
        )
    run = Run(
        out.trades[: out.counts[1]].copy(),
        out.exits[: out.counts[2]].copy(),
        x.step_time,
        x.equity,
        outcomes[:n_outcomes].copy(),
        x.cursor[2],
        x.notices,
        x.cursor[4],
        out.fault.copy(),
    )
    return run, venue, out


@njit(cache=True)
def _grown_venue(venue: Venue) -> Venue:
    grown = len(venue.virtual) * 2
    virtual = np.zeros(grown, dtype=venue.virtual.dtype)
    meta = np.zeros(grown, dtype=venue.virtual_meta.dtype)
    virtual[: len(venue.virtual)] = venue.virtual
    meta[: len(venue.virtual_meta)] = venue.virtual_meta
    return Venue(venue.positions, venue.orders, venue.symbols, venue.rng, venue.levels, virtual,
                 meta, venue.counters)  # fmt: skip


def empty_records() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, dtype=TRADE_DT), np.zeros(0, dtype=EXIT_DT)
