"""The decision step: every event the portfolio reducer applies, as kernels over the ``Book``.

``apply_event_nb`` is the one entry: the compiled backtest calls it for every event of the
simulated exchange, the Python reducer for every event of paper or live trading, so both
decide with the same code. A kernel either applies an event whole or refuses it (returns a
negative error code, details in ``Outbox.fault``) before touching the state.

What the core does on each event:

- candle closed: move trailing and break-even stops (a new stop first; the old one is
  cancelled once the new one is accepted), open a virtual position for every signal, then
  decide a time-stop or opposite-signal close and a new entry sized from the account's equity
  within the account's caps. A reversal's entry waits until the close has filled (one-way
  mode nets orders against the position, so sending both at once could flip it twice).
- entry filled: open (or add to) the position; once the entry is done, place its stop,
  emergency stop, partial and final targets.
- exit filled or liquidated: reduce the position; when it is flat, record the trade, cancel
  what still rests, and send a held reversal entry.
- a fill with a trade id already seen is ignored with a notice, never applied twice.
"""

from __future__ import annotations

import numpy as np

from slt.domain.features.jit import inline_jit, step_jit
from slt.domain.trading.enums import (
    EMERGENCY_CLOSE,
    LIQUIDATION,
    OPPOSITE_SIGNAL,
    PARTIAL_TAKE_PROFIT,
    TAKE_PROFIT,
    TIME_STOP,
)
from slt.domain.trading.exits_nb import next_levels_nb, time_stop_due_nb, update_levels_nb
from slt.domain.trading.margin_nb import liquidation_price_nb
from slt.domain.trading.params import ExitParams, MarketRules, SizingParams
from slt.domain.trading.position_nb import (
    Position,
    add_to_position_nb,
    apply_exit_nb,
    net_pnl_nb,
    open_position_nb,
    set_levels_nb,
    unrealized_pnl_nb,
)
from slt.domain.trading.sizing_nb import size_position_nb
from slt.engine.book import COMMANDS_PER_EVENT, Book, DecisionParams, Outbox, SymbolTable
from slt.engine.orders_nb import TRANSITIONS, is_live_nb, is_terminal_nb, next_status_nb
from slt.engine.records import (
    ACCEPTED,
    CANCELED,
    CLOSE,
    CMD_CANCEL_ORDER,
    CMD_NOTIFY,
    CMD_OPEN_VIRTUAL,
    CMD_PERSIST_TRADE,
    CMD_PLACE_ORDER,
    EMERGENCY_STOP,
    ENTRY,
    ERR_BAD_EVENT,
    ERR_ILLEGAL_TRANSITION,
    ERR_ORDER_TABLE_FULL,
    ERR_OUTPUT_FULL,
    ERR_OVERFILL,
    ERR_UNKNOWN_ORDER,
    EV_ACCOUNT_UPDATED,
    EV_CANCEL_REQUESTED,
    EV_CANDLE_CLOSED,
    EV_CLOSE_REQUESTED,
    EV_FUNDING_PAID,
    EV_LIQUIDATED,
    EV_MODEL_CHANGED,
    EV_ORDER_ACCEPTED,
    EV_ORDER_CANCEL_REJECTED,
    EV_ORDER_CANCELED,
    EV_ORDER_EXPIRED,
    EV_ORDER_FILLED,
    EV_ORDER_REJECTED,
    EV_ORDER_SUBMITTED,
    FILLED,
    FREE,
    INITIALIZED,
    LIMIT,
    MARKET,
    MAX_EXIT_FILLS,
    NOTE_DUPLICATE_FILL,
    NOTE_ENTRY_EXPIRED,
    NOTE_ENTRY_REJECTED,
    NOTE_FUNDING_WITHOUT_POSITION,
    NOTE_LATE_EVENT,
    NOTE_MODEL_CHANGED,
    NOTE_ORDER_REJECTED,
    NOTE_STOP_REJECTED_CLOSING,
    NOTE_STOP_REJECTED_KEPT_OLD,
    NOTE_UNEXPECTED_FILL,
    PARTIAL_TAKE_PROFIT_ORDER,
    PARTIALLY_FILLED,
    PENDING_CANCEL,
    STOP,
    STOP_MARKET,
    SUBMITTED,
    TAKE_PROFIT_ORDER,
    TRADE_ID_RING,
)

# Order-table slots an event may need (entry, close, a moved stop, four protective orders).
SLOTS_PER_EVENT = 7
_QTY_TOLERANCE = 1e-9


# --- account -------------------------------------------------------------------------------


@step_jit
def market_rules_nb(table: SymbolTable, sym: int) -> MarketRules:
    return MarketRules(
        table.tick_size[sym],
        table.step_size[sym],
        table.min_notional[sym],
        table.brackets[sym, : table.n_brackets[sym]],
    )


@step_jit
def account_equity_nb(account: Position, positions: Position, marks: np.ndarray) -> float:
    """Wallet plus every position's unrealised PnL at its symbol's last close."""
    equity: float = account[0].wallet
    for s in range(len(positions)):
        equity += unrealized_pnl_nb(positions[s], marks[s])
    return equity


@step_jit
def equity_nb(book: Book) -> float:
    return account_equity_nb(book.account, book.positions, book.marks)


@step_jit
def recent_win_rate_nb(wins: np.ndarray, n_closed: int, p: SizingParams) -> float:
    """Share of winners among the last ``win_rate_lookback`` closed positions (0.5 if too few)."""
    n = min(n_closed, p.win_rate_lookback, len(wins))
    if n < p.win_rate_min_trades or n == 0:
        return 0.5
    total = 0.0
    for k in range(n):
        total += wins[(n_closed - 1 - k) % len(wins)]
    return total / n


@step_jit
def _note_outcome_nb(book: Book, won: bool) -> None:
    account = book.account[0]
    book.wins[account.n_closed % len(book.wins)] = 1.0 if won else 0.0
    account.n_closed += 1


@step_jit
def exposure_nb(book: Book, sym: int, closing: bool) -> tuple[float, int]:
    """(isolated margin in use or reserved, positions open or on their way) across the account,
    leaving out ``sym``'s position when it is being closed."""
    margin = 0.0
    count = 0
    for s in range(len(book.positions)):
        pos = book.positions[s]
        counted = False
        if pos.side != 0 and not (s == sym and closing):
            margin += pos.margin
            count += 1
            counted = True
        for k in range(book.orders.shape[1]):
            o = book.orders[s, k]
            if o.purpose == ENTRY and is_live_nb(o.status):
                margin += (o.quantity - o.filled) * o.decision_price / o.leverage
                if not counted:
                    count += 1
                    counted = True
    return margin, count


# --- outbox --------------------------------------------------------------------------------


@step_jit
def _room_nb(out: Outbox) -> bool:
    room: bool = (
        out.counts[0] + COMMANDS_PER_EVENT <= len(out.commands)
        and out.counts[1] + 1 <= len(out.trades)
        and out.counts[2] + MAX_EXIT_FILLS <= len(out.exits)
    )
    return room


@step_jit
def _fail_nb(out: Outbox, code: int, sym: int, seq: int, status: int) -> int:
    out.fault[0] = code
    out.fault[1] = sym
    out.fault[2] = seq
    out.fault[3] = status
    return -code


@step_jit
def _command_nb(out: Outbox, kind: int, sym: int) -> int:
    k = out.counts[0]
    out.counts[0] = k + 1
    c = out.commands[k]
    c.kind = kind
    c.symbol = sym
    c.seq = 0
    c.order_kind = 0
    c.purpose = 0
    c.side = 0
    c.quantity = 0.0
    c.price = np.nan
    c.reduce_only = False
    c.close_position = False
    c.reason = 0
    c.leverage = 1.0
    c.signal_time_ms = 0
    c.entry_after_ms = 0
    c.direction = 0
    c.confidence = np.nan
    c.stop_pct = np.nan
    c.take_profit_pct = np.nan
    c.model_version = 0
    c.code = 0
    c.value = 0.0
    row: int = k
    return row


@step_jit
def _notify_nb(out: Outbox, sym: int, code: int, seq: int, value: float) -> None:
    k = _command_nb(out, CMD_NOTIFY, sym)
    out.commands[k].code = code
    out.commands[k].seq = seq
    out.commands[k].value = value


# --- orders --------------------------------------------------------------------------------


@step_jit
def find_order_nb(book: Book, sym: int, seq: int) -> int:
    for k in range(book.orders.shape[1]):
        if book.orders[sym, k].seq == seq and book.orders[sym, k].status != FREE:
            return k
    return -1


@step_jit
def _has_slots_nb(book: Book, sym: int, need: int) -> bool:
    """At least ``need`` order slots free or reusable; stops at the ``need``-th (a full scan
    per event cost more than the rest of a quiet event)."""
    n = 0
    for k in range(book.orders.shape[1]):
        status = book.orders[sym, k].status
        if status == FREE or is_terminal_nb(status):
            n += 1
            if n >= need:
                return True
    return False


@step_jit
def _alloc_slot_nb(book: Book, sym: int) -> int:
    """A free slot, else the finished order with the lowest number (kept so that late events
    about recent orders are still recognised)."""
    best = -1
    for k in range(book.orders.shape[1]):
        o = book.orders[sym, k]
        if o.status == FREE:
            return k
        if is_terminal_nb(o.status) and (best < 0 or o.seq < book.orders[sym, best].seq):
            best = k
    return best


@step_jit
def _new_order_nb(
    book: Book,
    sym: int,
    kind: int,
    purpose: int,
    side: int,
    quantity: float,
    price: float,
    reason: int,
) -> int:
    """A new order in the table, INITIALIZED and held; callers checked there is room."""
    k = _alloc_slot_nb(book, sym)
    account = book.account[0]
    o = book.orders[sym, k]
    o.seq = account.next_order_seq
    account.next_order_seq += 1
    o.status = INITIALIZED
    o.kind = kind
    o.purpose = purpose
    o.side = side
    o.quantity = quantity
    o.filled = 0.0
    o.price = price
    o.reduce_only = purpose != ENTRY
    o.reason = reason
    o.leverage = 1.0
    o.stop_pct = np.nan
    o.signal_time_ms = 0
    o.decision_price = np.nan
    o.confidence = np.nan
    o.held = True
    o.status_before_cancel = 0
    return k


@step_jit
def _send_nb(book: Book, out: Outbox, sym: int, k: int) -> None:
    """Emit the PlaceOrder of a held order; it stays INITIALIZED until it is submitted."""
    o = book.orders[sym, k]
    o.held = False
    c = _command_nb(out, CMD_PLACE_ORDER, sym)
    cmd = out.commands[c]
    cmd.seq = o.seq
    cmd.order_kind = o.kind
    cmd.purpose = o.purpose
    cmd.side = o.side
    cmd.quantity = o.quantity
    cmd.price = o.price
    cmd.reduce_only = o.reduce_only
    cmd.close_position = o.kind == STOP_MARKET and o.reduce_only
    cmd.reason = o.reason
    cmd.leverage = o.leverage


@step_jit
def _place_nb(
    book: Book,
    out: Outbox,
    sym: int,
    kind: int,
    purpose: int,
    side: int,
    quantity: float,
    price: float,
    reason: int,
) -> int:
    k = _new_order_nb(book, sym, kind, purpose, side, quantity, price, reason)
    _send_nb(book, out, sym, k)
    return k


@step_jit
def _cancel_nb(book: Book, out: Outbox, sym: int, k: int) -> None:
    """Ask to cancel a live order: a held one is dropped, a sent one waits in PENDING_CANCEL."""
    o = book.orders[sym, k]
    if not is_live_nb(o.status) or o.status == PENDING_CANCEL:
        return
    if o.status == INITIALIZED and o.held:
        o.status = CANCELED
        return
    o.status_before_cancel = o.status
    o.status = next_status_nb(TRANSITIONS, o.status, EV_CANCEL_REQUESTED)
    c = _command_nb(out, CMD_CANCEL_ORDER, sym)
    out.commands[c].seq = o.seq


@step_jit
def _live_order_nb(book: Book, sym: int, purpose: int) -> int:
    for k in range(book.orders.shape[1]):
        o = book.orders[sym, k]
        if o.purpose == purpose and is_live_nb(o.status) and o.status != PENDING_CANCEL:
            return k
    return -1


@step_jit
def _market_close_nb(book: Book, out: Outbox, sym: int, reason: int) -> None:
    """A reduce-only market order for the whole position, unless one is already on its way."""
    if _live_order_nb(book, sym, CLOSE) >= 0:
        return
    pos = book.positions[sym]
    _place_nb(book, out, sym, MARKET, CLOSE, -pos.side, pos.qty, np.nan, reason)


@step_jit
def _stop_order_nb(book: Book, out: Outbox, sym: int) -> None:
    pos = book.positions[sym]
    _place_nb(book, out, sym, STOP_MARKET, STOP, -pos.side, pos.qty, pos.stop, pos.stop_reason)


@step_jit
def _protect_nb(book: Book, out: Outbox, sym: int) -> None:
    """Stop and emergency stop for the whole position, partial and final targets."""
    pos = book.positions[sym]
    side = -pos.side
    _stop_order_nb(book, out, sym)
    if pos.emergency > 0:
        _place_nb(
            book, out, sym, STOP_MARKET, EMERGENCY_STOP, side, pos.qty, pos.emergency,
            EMERGENCY_CLOSE,
        )  # fmt: skip
    if not np.isnan(pos.partial_price):
        _place_nb(
            book, out, sym, LIMIT, PARTIAL_TAKE_PROFIT_ORDER, side, pos.partial_qty,
            pos.partial_price, PARTIAL_TAKE_PROFIT,
        )  # fmt: skip
    if not np.isnan(pos.target):
        _place_nb(book, out, sym, LIMIT, TAKE_PROFIT_ORDER, side, pos.qty, pos.target, TAKE_PROFIT)


@step_jit
def _cancel_older_stops_nb(book: Book, out: Outbox, sym: int, seq: int) -> None:
    """A replacement stop is in force: cancel the stops it replaces (place-before-cancel)."""
    for k in range(book.orders.shape[1]):
        o = book.orders[sym, k]
        if o.purpose == STOP and o.seq < seq and is_live_nb(o.status):
            _cancel_nb(book, out, sym, k)


@step_jit
def _newest_other_stop_nb(book: Book, sym: int, seq: int) -> int:
    best = -1
    for k in range(book.orders.shape[1]):
        o = book.orders[sym, k]
        mine = o.purpose == STOP and o.seq != seq and is_live_nb(o.status)
        if mine and o.status != PENDING_CANCEL and (best < 0 or o.seq > book.orders[sym, best].seq):
            best = k
    return best


# --- positions -----------------------------------------------------------------------------


@step_jit
def _log_exit_nb(book: Book, sym: int, price: float, qty: float, reason: int, fee: float,
                 time_ms: int) -> None:  # fmt: skip
    """One row per exit fill; beyond the log's size the last row absorbs the rest."""
    pos = book.positions[sym]
    n = pos.n_exits
    if n < MAX_EXIT_FILLS:
        row = book.exit_log[sym, n]
        row.position_id = pos.position_id
        row.time_ms = time_ms
        row.price = price
        row.qty = qty
        row.reason = reason
        row.fee = fee
        pos.n_exits = n + 1
        return
    row = book.exit_log[sym, MAX_EXIT_FILLS - 1]
    total = row.qty + qty
    row.price = (row.price * row.qty + price * qty) / total
    row.qty = total
    row.fee += fee
    row.time_ms = time_ms
    row.reason = reason


@step_jit
def _record_trade_nb(book: Book, out: Outbox, sym: int) -> None:
    """The closed position as a trade row with its exit rows: the one trade assembly."""
    pos = book.positions[sym]
    t = out.counts[1]
    out.counts[1] = t + 1
    row = out.trades[t]
    row.position_id = pos.position_id
    row.symbol = sym
    row.side = pos.side
    row.entry_time_ms = pos.entry_time_ms
    row.entry_price = pos.entry_price
    row.exit_time_ms = pos.last_exit_time_ms
    row.exit_price = pos.exit_value / pos.qty_initial
    row.qty = pos.qty_initial
    row.leverage = pos.leverage
    row.margin = pos.qty_initial * pos.entry_price / pos.leverage
    row.pnl = net_pnl_nb(pos)
    row.fees = pos.fees
    row.funding = pos.funding
    row.exit_reason = pos.last_exit_reason
    row.signal_time_ms = pos.signal_time_ms
    row.n_exits = pos.n_exits
    e = out.counts[2]
    for k in range(pos.n_exits):
        out.exits[e + k] = book.exit_log[sym, k]
    out.counts[2] = e + pos.n_exits
    c = _command_nb(out, CMD_PERSIST_TRADE, sym)
    out.commands[c].seq = t


@step_jit
def _position_closed_nb(book: Book, out: Outbox, sym: int) -> None:
    """Record the trade, cancel what still rests for the symbol, send a held reversal entry."""
    pos = book.positions[sym]
    _record_trade_nb(book, out, sym)
    _note_outcome_nb(book, out.trades[out.counts[1] - 1].pnl > 0)
    pos.side = 0
    held = -1
    for k in range(book.orders.shape[1]):
        o = book.orders[sym, k]
        if o.purpose == ENTRY:
            if o.status == INITIALIZED and o.held:
                held = k
        elif is_live_nb(o.status):
            _cancel_nb(book, out, sym, k)
    if held >= 0:
        _send_nb(book, out, sym, held)


@step_jit
def _exit_nb(book: Book, out: Outbox, sym: int, price: float, qty: float, reason: int,
             fee: float, time_ms: int) -> None:  # fmt: skip
    """The one way a position shrinks: wallet, position, exit log, and the trade when flat."""
    pos = book.positions[sym]
    _log_exit_nb(book, sym, price, min(qty, pos.qty), reason, fee, time_ms)
    book.account[0].wallet += apply_exit_nb(pos, price, qty, reason, fee, time_ms)
    if pos.qty == 0.0:
        _position_closed_nb(book, out, sym)


@step_jit
def _open_from_fill_nb(
    book: Book,
    table: SymbolTable,
    p: DecisionParams,
    sym: int,
    side: int,
    qty: float,
    price: float,
    fee: float,
    time_ms: int,
    leverage: float,
    stop_pct: float,
    signal_time_ms: int,
) -> None:
    pos = book.positions[sym]
    rules = market_rules_nb(table, sym)
    account = book.account[0]
    if pos.side == 0:
        liq = liquidation_price_nb(side, price, qty, qty * price / leverage, rules.brackets)
        open_position_nb(
            pos, side, qty, price, time_ms, leverage, fee, liq, signal_time_ms,
            account.next_position_id,
        )  # fmt: skip
        account.next_position_id += 1
    else:
        total = pos.qty + qty
        average = (pos.entry_price * pos.qty + price * qty) / total
        margin = pos.margin + qty * price / pos.leverage
        liq = liquidation_price_nb(side, average, total, margin, rules.brackets)
        add_to_position_nb(pos, qty, price, fee, liq)
    set_levels_nb(pos, stop_pct, p.exits, rules.tick_size)
    account.wallet -= fee


@step_jit
def _unexpected_exposure_nb(
    book: Book,
    table: SymbolTable,
    p: DecisionParams,
    out: Outbox,
    sym: int,
    side: int,
    qty: float,
    price: float,
    time_ms: int,
) -> None:
    """The exchange holds a position the core did not expect: take it on with a stop, and
    close it at once unless the configuration says to adopt it."""
    _notify_nb(out, sym, NOTE_UNEXPECTED_FILL, 0, side * qty)
    lev = p.sizing.leverage_min
    _open_from_fill_nb(
        book, table, p, sym, side, qty, price, 0.0, time_ms, lev, p.exits.stop_loss_pct, time_ms
    )
    _protect_nb(book, out, sym)
    if not p.adopt_unknown:
        _market_close_nb(book, out, sym, EMERGENCY_CLOSE)


# --- event handlers ------------------------------------------------------------------------


@step_jit
def _check_room_nb(book: Book, out: Outbox, sym: int) -> int:
    if sym < 0 or sym >= len(book.positions):
        return _fail_nb(out, ERR_BAD_EVENT, sym, 0, 0)
    if not _room_nb(out):
        return _fail_nb(out, ERR_OUTPUT_FULL, sym, 0, 0)
    if not _has_slots_nb(book, sym, SLOTS_PER_EVENT):
        return _fail_nb(out, ERR_ORDER_TABLE_FULL, sym, 0, 0)
    return 0


@inline_jit
def on_candle_closed_nb(
    book: Book,
    table: SymbolTable,
    p: DecisionParams,
    out: Outbox,
    sym: int,
    open_time_ms: int,
    close_time_ms: int,
    high: float,
    low: float,
    close: float,
    direction: int,
    confidence: float,
    stop_pct: float,
    gate: bool,
) -> int:
    """Levels, virtual position, then the decision at this close (``gate`` False: the model
    turned the signal down; it is still learned from, not traded)."""
    if sym < 0 or sym >= len(book.positions):
        return _fail_nb(out, ERR_BAD_EVENT, sym, 0, 0)
    pos = book.positions[sym]
    if pos.side == 0 and direction == 0:
        book.marks[sym] = close  # flat, no signal: nothing else to decide
        return 0
    bad = _check_room_nb(book, out, sym)
    if bad < 0:
        return bad
    book.marks[sym] = close
    rules = market_rules_nb(table, sym)
    side = pos.side
    if side != 0:
        before = pos.stop
        update_levels_nb(pos, high, low, p.exits, rules.tick_size)
        if pos.stop != before:
            _stop_order_nb(book, out, sym)
    if direction != 0 and np.isfinite(stop_pct) and stop_pct > 0:
        c = _command_nb(out, CMD_OPEN_VIRTUAL, sym)
        cmd = out.commands[c]
        cmd.signal_time_ms = open_time_ms
        cmd.entry_after_ms = close_time_ms
        cmd.direction = direction
        cmd.confidence = confidence
        cmd.stop_pct = stop_pct
        cmd.take_profit_pct = p.exits.take_profit_pct
        cmd.model_version = book.account[0].model_version
    trade_direction = direction if gate else 0
    close_reason = 0
    if side != 0:
        if time_stop_due_nb(pos, close_time_ms, p.exits):
            close_reason = TIME_STOP
        elif trade_direction == -side and p.exits.exit_on_opposite:
            close_reason = OPPOSITE_SIGNAL
    if close_reason != 0:
        _market_close_nb(book, out, sym, close_reason)
    if trade_direction == 0 or not np.isfinite(confidence) or not np.isfinite(stop_pct):
        return 0
    if side != 0 and not (close_reason == OPPOSITE_SIGNAL and p.exits.reverse_on_opposite):
        return 0
    if _live_order_nb(book, sym, ENTRY) >= 0:
        return 0
    equity = equity_nb(book)
    open_margin, n_open = exposure_nb(book, sym, close_reason != 0)
    if p.sizing.max_open_positions > 0 and n_open >= p.sizing.max_open_positions:
        return 0
    win_rate = recent_win_rate_nb(book.wins, book.account[0].n_closed, p.sizing)
    qty, lev = size_position_nb(
        trade_direction, equity, open_margin, close, stop_pct, confidence, win_rate, p.sizing,
        rules, p.exits.emergency_fraction,
    )  # fmt: skip
    if qty <= 0:
        return 0
    k = _new_order_nb(book, sym, MARKET, ENTRY, trade_direction, qty, np.nan, 0)
    o = book.orders[sym, k]
    o.leverage = lev
    o.stop_pct = stop_pct
    o.signal_time_ms = open_time_ms
    o.decision_price = close
    o.confidence = confidence
    if side == 0:
        _send_nb(book, out, sym, k)
    return 0


@step_jit
def _seen_trade_nb(book: Book, sym: int, trade_id: int) -> bool:
    n = min(book.trade_id_count[sym], TRADE_ID_RING)
    for k in range(n):  # noqa: SIM110 (numba compiles no generator expressions)
        if book.trade_ids[sym, k] == trade_id:
            return True
    return False


@step_jit
def _remember_trade_nb(book: Book, sym: int, trade_id: int) -> None:
    n = book.trade_id_count[sym]
    book.trade_ids[sym, n % TRADE_ID_RING] = trade_id
    book.trade_id_count[sym] = n + 1


@inline_jit
def on_order_filled_nb(
    book: Book,
    table: SymbolTable,
    p: DecisionParams,
    out: Outbox,
    sym: int,
    seq: int,
    trade_id: int,
    time_ms: int,
    price: float,
    qty: float,
    fee: float,
    status_after: int,
) -> int:
    """One fill (one exchange trade) of an order; ``status_after`` is the order's status the
    exchange reports with it (PARTIALLY_FILLED or FILLED)."""
    bad = _check_room_nb(book, out, sym)
    if bad < 0:
        return bad
    if _seen_trade_nb(book, sym, trade_id):
        _notify_nb(out, sym, NOTE_DUPLICATE_FILL, seq, float(trade_id))
        return 0
    k = find_order_nb(book, sym, seq)
    if k < 0:
        return _fail_nb(out, ERR_UNKNOWN_ORDER, sym, seq, 0)
    o = book.orders[sym, k]
    if next_status_nb(TRANSITIONS, o.status, EV_ORDER_FILLED) < 0:
        return _fail_nb(out, ERR_ILLEGAL_TRANSITION, sym, seq, o.status)
    if status_after != FILLED and status_after != PARTIALLY_FILLED:
        return _fail_nb(out, ERR_BAD_EVENT, sym, seq, o.status)
    if not (qty > 0 and price > 0 and np.isfinite(price) and np.isfinite(fee)):
        return _fail_nb(out, ERR_BAD_EVENT, sym, seq, o.status)
    if (
        o.purpose != STOP
        and o.purpose != EMERGENCY_STOP
        and (o.filled + qty > o.quantity * (1.0 + _QTY_TOLERANCE) + 1e-12)
    ):
        return _fail_nb(out, ERR_OVERFILL, sym, seq, o.status)
    pos = book.positions[sym]
    if o.purpose == ENTRY and pos.side != 0 and pos.side != o.side:
        return _fail_nb(out, ERR_BAD_EVENT, sym, seq, o.status)
    _remember_trade_nb(book, sym, trade_id)
    o.filled += qty
    if status_after == FILLED:
        o.status = FILLED
    elif o.status == PENDING_CANCEL:
        o.status_before_cancel = PARTIALLY_FILLED
    else:
        o.status = PARTIALLY_FILLED
    if o.purpose == ENTRY:
        _open_from_fill_nb(
            book, table, p, sym, o.side, qty, price, fee, time_ms, o.leverage, o.stop_pct,
            o.signal_time_ms,
        )  # fmt: skip
        pos.confidence = o.confidence
        if o.status == FILLED:
            _protect_nb(book, out, sym)
        return 0
    if pos.side == 0 or pos.side == o.side:
        # Reduce-only at the exchange makes this impossible unless the views diverged.
        _unexpected_exposure_nb(book, table, p, out, sym, o.side, qty, price, time_ms)
        return 0
    applied = min(qty, pos.qty)
    _exit_nb(book, out, sym, price, applied, o.reason, fee, time_ms)
    excess = qty - applied
    if excess > pos.qty_initial * _QTY_TOLERANCE and pos.side == 0:
        _unexpected_exposure_nb(book, table, p, out, sym, o.side, excess, price, time_ms)
    elif (
        pos.side != 0
        and o.purpose in (STOP, EMERGENCY_STOP)
        and _live_order_nb(book, sym, STOP) < 0
    ):
        _stop_order_nb(book, out, sym)  # a stop filled but left some: protect the rest
    return 0


@inline_jit
def on_liquidated_nb(
    book: Book,
    table: SymbolTable,
    p: DecisionParams,
    out: Outbox,
    sym: int,
    trade_id: int,
    time_ms: int,
    price: float,
    qty: float,
) -> int:
    """The exchange closed the position at its liquidation price: the margin is lost."""
    bad = _check_room_nb(book, out, sym)
    if bad < 0:
        return bad
    if _seen_trade_nb(book, sym, trade_id):
        _notify_nb(out, sym, NOTE_DUPLICATE_FILL, 0, float(trade_id))
        return 0
    if book.positions[sym].side == 0:
        return _fail_nb(out, ERR_BAD_EVENT, sym, 0, 0)
    _remember_trade_nb(book, sym, trade_id)
    _exit_nb(book, out, sym, price, qty, LIQUIDATION, 0.0, time_ms)
    return 0


@inline_jit
def on_order_status_nb(
    book: Book, table: SymbolTable, p: DecisionParams, out: Outbox, kind: int, sym: int,
    seq: int, code: int,
) -> int:  # fmt: skip
    """Submitted, accepted, canceled, cancel rejected, expired or rejected."""
    bad = _check_room_nb(book, out, sym)
    if bad < 0:
        return bad
    k = find_order_nb(book, sym, seq)
    if k < 0:
        if kind in (EV_ORDER_CANCELED, EV_ORDER_EXPIRED, EV_ORDER_CANCEL_REJECTED):
            _notify_nb(out, sym, NOTE_LATE_EVENT, seq, float(kind))
            return 0
        return _fail_nb(out, ERR_UNKNOWN_ORDER, sym, seq, 0)
    o = book.orders[sym, k]
    before = o.status
    after = next_status_nb(TRANSITIONS, before, kind)
    if after < 0 or (before == INITIALIZED and o.held):
        return _fail_nb(out, ERR_ILLEGAL_TRANSITION, sym, seq, before)
    if before == PENDING_CANCEL:
        if kind in (EV_ORDER_SUBMITTED, EV_ORDER_ACCEPTED):
            o.status_before_cancel = SUBMITTED if kind == EV_ORDER_SUBMITTED else ACCEPTED
            return 0
        if kind == EV_ORDER_CANCEL_REJECTED:
            after = o.status_before_cancel
    o.status = after
    if kind == EV_ORDER_ACCEPTED and o.purpose == STOP:
        _cancel_older_stops_nb(book, out, sym, seq)
    elif kind == EV_ORDER_REJECTED:
        _rejected_nb(book, out, sym, k, code)
    elif (kind in (EV_ORDER_EXPIRED, EV_ORDER_CANCELED)) and o.purpose == ENTRY:
        if o.filled > 0:
            _protect_nb(book, out, sym)  # what did fill is a position: protect it
        elif kind == EV_ORDER_EXPIRED:
            _notify_nb(out, sym, NOTE_ENTRY_EXPIRED, seq, float(code))
    return 0


@step_jit
def _rejected_nb(book: Book, out: Outbox, sym: int, k: int, code: int) -> None:
    o = book.orders[sym, k]
    pos = book.positions[sym]
    if o.purpose == ENTRY:
        _notify_nb(out, sym, NOTE_ENTRY_REJECTED, o.seq, float(code))
        return
    if (o.purpose == STOP or o.purpose == EMERGENCY_STOP) and pos.side != 0:
        if o.purpose == STOP:
            other = _newest_other_stop_nb(book, sym, o.seq)
            if other >= 0:
                # The stop it was to replace still rests: keep it, and the level it guards.
                kept = book.orders[sym, other]
                pos.stop = kept.price
                pos.stop_reason = kept.reason
                _notify_nb(out, sym, NOTE_STOP_REJECTED_KEPT_OLD, o.seq, float(code))
                return
        # No position may stay open without its stop: close it now.
        _notify_nb(out, sym, NOTE_STOP_REJECTED_CLOSING, o.seq, float(code))
        _market_close_nb(book, out, sym, EMERGENCY_CLOSE)
        return
    _notify_nb(out, sym, NOTE_ORDER_REJECTED, o.seq, float(code))


@inline_jit
def on_funding_paid_nb(book: Book, out: Outbox, sym: int, amount: float) -> int:
    """Funding the exchange charged (positive) or paid (negative) for the symbol's position."""
    if sym < 0 or sym >= len(book.positions) or not np.isfinite(amount):
        return _fail_nb(out, ERR_BAD_EVENT, sym, 0, 0)
    pos = book.positions[sym]
    if pos.side != 0:
        pos.funding += amount
    elif _room_nb(out):
        _notify_nb(out, sym, NOTE_FUNDING_WITHOUT_POSITION, 0, amount)
    book.account[0].wallet -= amount
    return 0


@inline_jit
def on_close_requested_nb(book: Book, out: Outbox, sym: int, reason: int) -> int:
    """Close the whole position at market (end of data, a user's request); a held reversal
    entry is dropped."""
    bad = _check_room_nb(book, out, sym)
    if bad < 0:
        return bad
    for k in range(book.orders.shape[1]):
        o = book.orders[sym, k]
        if o.purpose == ENTRY and o.status == INITIALIZED and o.held:
            o.status = CANCELED
    if book.positions[sym].side != 0:
        _market_close_nb(book, out, sym, reason)
    return 0


@inline_jit
def on_model_changed_nb(book: Book, out: Outbox, version: int) -> int:
    if not _room_nb(out):
        return _fail_nb(out, ERR_OUTPUT_FULL, 0, 0, 0)
    book.account[0].model_version = version
    _notify_nb(out, 0, NOTE_MODEL_CHANGED, 0, float(version))
    return 0


@step_jit
def quiet_close_nb(
    positions: Position,
    marks: np.ndarray,
    sym: int,
    direction: int,
    high: float,
    low: float,
    close: float,
    close_time_ms: int,
    exits: ExitParams,
    tick_size: float,
) -> bool:
    """The commonest close, without a signal, where the stop does not move and no time stop
    is due: only the mark and the position's best price change. Done here (True) without the
    cost of the full step, with the same result; False leaves everything as it was."""
    if direction != 0 or sym < 0 or sym >= len(positions):
        return False
    pos = positions[sym]
    if pos.side != 0:
        best, stop, _reason = next_levels_nb(pos, high, low, exits, tick_size)
        if stop != pos.stop or time_stop_due_nb(pos, close_time_ms, exits):
            return False
        pos.best = best
    marks[sym] = close
    return True


@inline_jit
def apply_event_nb(
    book: Book, table: SymbolTable, p: DecisionParams, out: Outbox, ev: Position
) -> int:
    """Apply one EVENT_DT row; 0 on success, a negative error code when refused."""
    kind = ev.kind
    if kind == EV_CANDLE_CLOSED:
        return on_candle_closed_nb(
            book, table, p, out, ev.symbol, ev.open_time_ms, ev.time_ms, ev.high, ev.low,
            ev.close, ev.direction, ev.confidence, ev.stop_pct, ev.gate,
        )  # fmt: skip
    if kind == EV_ORDER_FILLED:
        return on_order_filled_nb(
            book, table, p, out, ev.symbol, ev.seq, ev.trade_id, ev.time_ms, ev.price, ev.qty,
            ev.fee, ev.code,
        )  # fmt: skip
    if kind == EV_LIQUIDATED:
        return on_liquidated_nb(
            book, table, p, out, ev.symbol, ev.trade_id, ev.time_ms, ev.price, ev.qty
        )
    if kind == EV_FUNDING_PAID:
        return on_funding_paid_nb(book, out, ev.symbol, ev.fee)
    if kind == EV_CLOSE_REQUESTED:
        return on_close_requested_nb(book, out, ev.symbol, ev.code)
    if kind == EV_MODEL_CHANGED:
        return on_model_changed_nb(book, out, ev.code)
    if kind == EV_ACCOUNT_UPDATED:
        book.account[0].reported_equity = ev.price
        return 0
    if EV_ORDER_SUBMITTED <= kind <= EV_ORDER_REJECTED:
        return on_order_status_nb(book, table, p, out, kind, ev.symbol, ev.seq, ev.code)
    return _fail_nb(out, ERR_BAD_EVENT, ev.symbol, ev.seq, kind)
