"""The simulated Binance USDT-M exchange, one step at a time: what paper trading and every
backtest fill orders with.

A symbol's bar passes through the exchange in two steps. ``begin_bar_nb`` at its open:
funding due by then, then the market orders waiting for this open (reduce-only first), at
the open with slippage and the taker fee. ``match_bar_nb`` inside it: the resting stops and
limits, on the bar's 1m candles when both a stop and a target lie inside it, else the worst
case (stop first), a gap through a level filling at the open, liquidation at the bracket's
price; then the virtual positions' exits, and their levels move at the close.

Orders are matched by what an exchange knows of them (type, side, trigger or limit price,
reduce-only), never by why the core placed them. A market order that arrives at the open
fills at once; one that arrives after a close waits for the next open. A market order that
would open or add to a position after a hole in the data expires: there is no price to fill
it at. Virtual positions (one unit, no margin) are followed with the same exit kernels.
"""

from __future__ import annotations

import numpy as np

from slt.domain.features.jit import inline_jit, step_jit
from slt.domain.trading.costs_nb import (
    entry_fill_terms_nb,
    exit_fill_terms_nb,
    fee_nb,
    funding_payment_nb,
)
from slt.domain.trading.enums import (
    EMERGENCY_CLOSE,
    END_OF_DATA,
    LIQUIDATION,
    PARTIAL_TAKE_PROFIT,
    STOP_LOSS,
    TAKE_PROFIT,
    TIME_STOP,
)
from slt.domain.trading.exits_nb import (
    FILL_MAKER,
    FILL_PRICE,
    FILL_QTY,
    FILL_REASON,
    is_ambiguous_nb,
    resolve_segment_nb,
    time_stop_due_nb,
    touches_nb,
    update_levels_nb,
)
from slt.domain.trading.margin_nb import liquidation_price_nb
from slt.domain.trading.params import CostParams, ExitParams
from slt.domain.trading.position_nb import (
    Position,
    apply_exit_nb,
    open_position_nb,
    set_levels_nb,
)
from slt.engine.book import SymbolTable
from slt.engine.decision_nb import market_rules_nb
from slt.engine.records import (
    CMD_CANCEL_ORDER,
    CMD_OPEN_VIRTUAL,
    CMD_PLACE_ORDER,
    EV_FUNDING_PAID,
    EV_LIQUIDATED,
    EV_ORDER_ACCEPTED,
    EV_ORDER_CANCEL_REJECTED,
    EV_ORDER_CANCELED,
    EV_ORDER_EXPIRED,
    EV_ORDER_FILLED,
    EV_ORDER_REJECTED,
    EV_ORDER_SUBMITTED,
    FILLED,
    LIMIT,
    MARKET,
    PARTIALLY_FILLED,
    STOP_MARKET,
    XR_INSUFFICIENT_MARGIN,
    XR_NO_MARKET_DATA,
    XR_REDUCE_ONLY_NOTHING,
    XR_UNKNOWN_ORDER,
    XR_UNSUPPORTED,
    XR_WOULD_TRIGGER,
)
from slt.engine.venue import (
    PHASE_CLOSED,
    PHASE_OPEN,
    V_FREE,
    V_OPEN,
    V_PENDING,
    Venue,
    VenueParams,
)

F64 = np.ndarray
_QTY_TOLERANCE = 1e-9


# --- randomness of the injected faults -----------------------------------------------------


@step_jit
def _uniform_nb(v: Venue) -> float:
    """xorshift64*: a seeded stream in [0, 1) that both drivers draw from in the same order."""
    x = v.rng[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    v.rng[0] = x
    return float((x * np.uint64(2685821657736338717)) >> np.uint64(11)) / 9007199254740992.0


@step_jit
def _chance_nb(v: Venue, rate: float) -> bool:
    return rate > 0.0 and _uniform_nb(v) < rate


# --- events --------------------------------------------------------------------------------


@step_jit
def _event_nb(out: F64, n: int, kind: int, sym: int, seq: int, time_ms: int) -> int:
    """A new event row; only the fields its kind uses are written (readers go by kind)."""
    e = out[n]
    e.kind = kind
    e.symbol = sym
    e.seq = seq
    e.time_ms = time_ms
    e.code = 0
    return n + 1


@step_jit
def _status_event_nb(out: F64, n: int, kind: int, sym: int, seq: int, time_ms: int,
                     code: int) -> int:  # fmt: skip
    n = _event_nb(out, n, kind, sym, seq, time_ms)
    out[n - 1].code = code
    return n


@step_jit
def _trade_id_nb(v: Venue, sym: int) -> int:
    s = v.symbols[sym]
    s.trade_seq += 1
    trade_id: int = s.trade_seq
    return trade_id


@step_jit
def _fill_events_nb(
    v: Venue,
    p: VenueParams,
    out: F64,
    n: int,
    sym: int,
    seq: int,
    time_ms: int,
    price: float,
    qty: float,
    maker: bool,
    liquidation: bool,
    done: bool,
) -> int:
    """The fill as one or more exchange trades (split and duplicated when faults say so);
    ``done``: the order has nothing left after it."""
    parts = 1
    if p.faults.fill_parts > 1 and not liquidation:
        parts = 1 + int(_uniform_nb(v) * p.faults.fill_parts)
    left = qty
    for part in range(parts):
        q = left if part == parts - 1 else qty / parts
        left -= q
        fee = 0.0 if liquidation else fee_nb(price, q, maker, p.costs)
        kind = EV_LIQUIDATED if liquidation else EV_ORDER_FILLED
        n = _event_nb(out, n, kind, sym, seq, time_ms)
        e = out[n - 1]
        e.trade_id = _trade_id_nb(v, sym)
        e.price = price
        e.qty = q
        e.fee = fee
        e.code = FILLED if done and part == parts - 1 else PARTIALLY_FILLED
        if _chance_nb(v, p.faults.duplicate_fill_rate):
            out[n] = out[n - 1]
            n += 1
    return n


# --- the exchange's positions and orders ---------------------------------------------------


@step_jit
def _release_nb(v: Venue, sym: int, k: int) -> None:
    o = v.orders[sym, k]
    s = v.symbols[sym]
    o.seq = 0
    s.levels_fresh = False
    s.resting -= 1
    if o.kind == MARKET:
        s.markets -= 1
    if o.cancel_at_bar_end:
        s.late_cancels -= 1


@step_jit
def _find_nb(v: Venue, sym: int, seq: int) -> int:
    for k in range(v.orders.shape[1]):
        if v.orders[sym, k].seq == seq:
            return k
    return -1


@step_jit
def _free_slot_nb(v: Venue, sym: int) -> int:
    for k in range(v.orders.shape[1]):
        if v.orders[sym, k].seq == 0:
            return k
    return -1


@step_jit
def _book_fill_nb(v: Venue, table: SymbolTable, sym: int, side: int, qty: float, price: float,
                  time_ms: int, leverage: float) -> None:  # fmt: skip
    """The exchange's own position after a fill of ``side`` (one-way mode: fills net)."""
    pos = v.positions[sym]
    v.symbols[sym].levels_fresh = False
    rules = market_rules_nb(table, sym)
    if pos.side == -side:
        reduced = min(qty, pos.qty)
        pos.margin -= pos.margin * reduced / pos.qty
        pos.qty -= reduced
        left = qty - reduced
        if pos.qty > pos.qty_initial * 1e-12:
            return  # the rest keeps its liquidation price: its margin shrank in proportion
        pos.qty = 0.0
        pos.side = 0
        if left <= qty * _QTY_TOLERANCE:
            return
        qty = left  # one-way mode: the rest opens the other side
    if pos.side == 0:
        pos.side = side
        pos.qty = qty
        pos.qty_initial = qty
        pos.entry_price = price
        pos.entry_time_ms = time_ms
        pos.leverage = leverage
        pos.margin = qty * price / leverage
    else:
        total = pos.qty + qty
        pos.entry_price = (pos.entry_price * pos.qty + price * qty) / total
        pos.margin += qty * price / pos.leverage
        pos.qty = total
        pos.qty_initial = total
    pos.liq = liquidation_price_nb(side, pos.entry_price, pos.qty, pos.margin, rules.brackets)


@inline_jit
def _fill_order_nb(
    v: Venue,
    p: VenueParams,
    table: SymbolTable,
    out: F64,
    n: int,
    sym: int,
    k: int,
    time_ms: int,
    price: float,
    qty: float,
    maker: bool,
) -> int:
    """Fill ``qty`` of order slot ``k`` at ``price`` (fees and slippage already decided)."""
    o = v.orders[sym, k]
    o.filled += qty
    v.symbols[sym].levels_fresh = False
    done = o.close_position or o.filled >= o.quantity * (1.0 - _QTY_TOLERANCE)
    seq = o.seq
    n = _fill_events_nb(v, p, out, n, sym, seq, time_ms, price, qty, maker, False, done)
    _book_fill_nb(v, table, sym, o.side, qty, price, time_ms, o.leverage)
    if done:
        late = o.cancel_at_bar_end
        _release_nb(v, sym, k)
        if late:  # the late cancel finds nothing left to cancel
            n = _status_event_nb(
                out, n, EV_ORDER_CANCEL_REJECTED, sym, seq, time_ms, XR_UNKNOWN_ORDER
            )
    return n


@inline_jit
def _market_fill_nb(
    v: Venue, p: VenueParams, table: SymbolTable, out: F64, n: int, sym: int, k: int
) -> int:
    """A market order at the current open: closes fill, entries need a bar that follows on."""
    o = v.orders[sym, k]
    s = v.symbols[sym]
    pos = v.positions[sym]
    bar_range = s.high - s.low
    if o.reduce_only:
        if pos.side == 0 or pos.side == o.side:
            seq = o.seq
            _release_nb(v, sym, k)
            return _status_event_nb(
                out, n, EV_ORDER_EXPIRED, sym, seq, s.open_time_ms, XR_REDUCE_ONLY_NOTHING
            )
        qty = min(o.quantity - o.filled, pos.qty)
        price, _fee = exit_fill_terms_nb(pos.side, s.open, qty, False, False, bar_range, p.costs)
        o.close_position = True  # reduce-only market: whatever it could reduce, it is done
    else:
        if s.gap:
            seq = o.seq
            _release_nb(v, sym, k)
            return _status_event_nb(
                out, n, EV_ORDER_EXPIRED, sym, seq, s.open_time_ms, XR_NO_MARKET_DATA
            )
        qty = o.quantity - o.filled
        price, _fee = entry_fill_terms_nb(o.side, qty, s.open, bar_range, p.costs)
    return _fill_order_nb(v, p, table, out, n, sym, k, s.open_time_ms, price, qty, False)


@inline_jit
def execute_nb(
    v: Venue, p: VenueParams, table: SymbolTable, cmd: Position, out: F64, n: int
) -> int:
    """Take one command of the core (a COMMAND_DT row): place, cancel, or follow a virtual
    position."""
    kind = cmd.kind
    if kind == CMD_PLACE_ORDER:
        return place_nb(
            v, p, table, cmd.symbol, cmd.seq, cmd.order_kind, cmd.side, cmd.quantity, cmd.price,
            cmd.reduce_only, cmd.close_position, cmd.leverage, out, n,
        )  # fmt: skip
    if kind == CMD_CANCEL_ORDER:
        return cancel_nb(v, p, cmd.symbol, cmd.seq, out, n)
    if kind == CMD_OPEN_VIRTUAL and p.follow_virtual:
        add_virtual_nb(
            v, cmd.symbol, cmd.signal_time_ms, cmd.entry_after_ms, cmd.direction, cmd.stop_pct,
            cmd.confidence, cmd.model_version,
        )  # fmt: skip
    return n


@inline_jit
def place_nb(
    v: Venue,
    p: VenueParams,
    table: SymbolTable,
    sym: int,
    seq: int,
    kind: int,
    side: int,
    quantity: float,
    price: float,
    reduce_only: bool,
    close_position: bool,
    leverage: float,
    out: F64,
    n: int,
) -> int:
    """A new order: submitted, then accepted or rejected; a market order that arrives at an
    open fills at once, one after a close waits for the next open."""
    s = v.symbols[sym]
    time_ms = s.open_time_ms
    n = _event_nb(out, n, EV_ORDER_SUBMITTED, sym, seq, time_ms)
    supported = kind == MARKET or (reduce_only and (kind in (STOP_MARKET, LIMIT)))
    if not supported:
        return _status_event_nb(out, n, EV_ORDER_REJECTED, sym, seq, time_ms, XR_UNSUPPORTED)
    if not reduce_only and _chance_nb(v, p.faults.reject_entry_rate):
        return _status_event_nb(
            out, n, EV_ORDER_REJECTED, sym, seq, time_ms, XR_INSUFFICIENT_MARGIN
        )
    if kind == STOP_MARKET and _chance_nb(v, p.faults.reject_stop_rate):
        return _status_event_nb(out, n, EV_ORDER_REJECTED, sym, seq, time_ms, XR_WOULD_TRIGGER)
    k = _free_slot_nb(v, sym)
    if k < 0:
        return _status_event_nb(out, n, EV_ORDER_REJECTED, sym, seq, time_ms, XR_UNSUPPORTED)
    o = v.orders[sym, k]
    s.resting += 1
    s.levels_fresh = False
    if kind == MARKET:
        s.markets += 1
    o.seq = seq
    o.kind = kind
    o.side = side
    o.quantity = quantity
    o.filled = 0.0
    o.price = price
    o.reduce_only = reduce_only
    o.close_position = close_position
    o.leverage = leverage
    o.cancel_at_bar_end = False
    n = _event_nb(out, n, EV_ORDER_ACCEPTED, sym, seq, time_ms)
    if kind == MARKET and s.phase == PHASE_OPEN:
        n = _market_fill_nb(v, p, table, out, n, sym, k)
    return n


@step_jit
def fill_at_nb(
    v: Venue,
    p: VenueParams,
    table: SymbolTable,
    sym: int,
    seq: int,
    side: int,
    qty: float,
    price: float,
    maker: bool,
    leverage: float,
    time_ms: int,
    out: F64,
    n: int,
) -> int:
    """A fill of an order the venue does not hold, at a price decided outside it (the local
    exchange's limit entries and triggered conditional orders): its trades, and the position
    booked as any fill is, so margin, liquidation and funding stay the kernels' own."""
    n = _fill_events_nb(v, p, out, n, sym, seq, time_ms, price, qty, maker, False, True)
    _book_fill_nb(v, table, sym, side, qty, price, time_ms, leverage)
    return n


@inline_jit
def cancel_nb(v: Venue, p: VenueParams, sym: int, seq: int, out: F64, n: int) -> int:
    """Cancel a resting order: canceled, refused if it is not open, or (a fault) only once
    the bar is matched."""
    s = v.symbols[sym]
    k = _find_nb(v, sym, seq)
    if k < 0:
        return _status_event_nb(
            out, n, EV_ORDER_CANCEL_REJECTED, sym, seq, s.open_time_ms, XR_UNKNOWN_ORDER
        )
    if _chance_nb(v, p.faults.late_cancel_rate):
        v.orders[sym, k].cancel_at_bar_end = True
        s.late_cancels += 1
        return n
    _release_nb(v, sym, k)
    return _event_nb(out, n, EV_ORDER_CANCELED, sym, seq, s.open_time_ms)


# --- bars ----------------------------------------------------------------------------------


@inline_jit
def open_bar_nb(symbols: F64, sym: int, open_time_ms: int, open_: float, high: float,
                low: float, close: float) -> None:  # fmt: skip
    """A bar opens at the exchange: market orders placed from now on fill at this open.

    The per-bar kernels take only the arrays they need and the drivers call the heavy ones
    only when there is work: most bars have none, and a call that passes the whole state
    costs more than everything a quiet bar does."""
    s = symbols[sym]
    s.gap = s.previous_close_ms >= 0 and open_time_ms != s.previous_close_ms
    s.open_time_ms = open_time_ms
    s.open = open_
    s.high = high
    s.low = low
    s.close = close
    s.phase = PHASE_OPEN


@inline_jit
def funding_due_nb(symbols: F64, sym: int, funding_time_ms: np.ndarray, start: int,
                   end: int) -> bool:  # fmt: skip
    """A funding time of the symbol's (its rows ``start:end``) has come by this open."""
    s = symbols[sym]
    due: bool = s.funding_cursor < end - start and (
        funding_time_ms[start + s.funding_cursor] <= s.open_time_ms
    )
    return due


@step_jit
def settle_funding_nb(
    v: Venue,
    sym: int,
    funding_time_ms: np.ndarray,
    funding_rate: F64,
    funding_mark: F64,
    out: F64,
    n: int,
) -> int:
    """Every funding time up to this open: the position open then pays or receives."""
    s = v.symbols[sym]
    while (
        s.funding_cursor < len(funding_time_ms)
        and funding_time_ms[s.funding_cursor] <= s.open_time_ms
    ):
        f = s.funding_cursor
        if v.positions[sym].side != 0:
            n = _funding_nb(v, sym, funding_time_ms[f], funding_rate[f], funding_mark[f], out, n)
        s.funding_cursor += 1
    return n


@step_jit
def market_orders_nb(v: Venue, p: VenueParams, table: SymbolTable, sym: int, out: F64,
                     n: int) -> int:  # fmt: skip
    """The market orders waiting for this open: reduce-only first, so a reversal's close
    fills before its entry."""
    for reduce_only in (True, False):
        for k in range(v.orders.shape[1]):
            o = v.orders[sym, k]
            if o.seq != 0 and o.kind == MARKET and o.reduce_only == reduce_only:
                n = _market_fill_nb(v, p, table, out, n, sym, k)
    return n


@step_jit
def _funding_nb(v: Venue, sym: int, time_ms: int, rate: float, mark: float, out: F64,
                n: int) -> int:  # fmt: skip
    """Funding of the position at a funding time it was open at (the mark price then, or the
    bar's open where no mark is stored)."""
    pos = v.positions[sym]
    if time_ms <= pos.entry_time_ms:
        return n
    price = mark if np.isfinite(mark) else v.symbols[sym].open
    amount = funding_payment_nb(pos.side, pos.qty, price, rate)
    n = _event_nb(out, n, EV_FUNDING_PAID, sym, 0, time_ms)
    out[n - 1].fee = amount
    out[n - 1].rate = rate
    out[n - 1].mark = price
    return n


@step_jit
def _nearest_nb(orders: F64, sym: int, kind: int, side: int, skip: int) -> int:
    """The resting reduce-only order of ``kind`` closest to the market (the first a move
    reaches), other than slot ``skip``; -1 if none. Closing a long sells: its stops lie below
    the price and the highest is nearest, its limits above and the lowest is nearest."""
    best = -1
    for k in range(orders.shape[1]):
        o = orders[sym, k]
        if k == skip or o.seq == 0 or o.kind != kind or not o.reduce_only or o.side != -side:
            continue
        if (
            best < 0
            or (kind == STOP_MARKET and side * o.price > side * orders[sym, best].price)
            or (kind == LIMIT and side * o.price < side * orders[sym, best].price)
        ):
            best = k
    return best


@step_jit
def _farthest_stop_nb(orders: F64, sym: int, side: int, skip: int) -> int:
    best = -1
    for k in range(orders.shape[1]):
        o = orders[sym, k]
        if k == skip or o.seq == 0 or o.kind != STOP_MARKET or not o.reduce_only:
            continue
        if o.side == -side and (best < 0 or side * o.price < side * orders[sym, best].price):
            best = k
    return best


@step_jit
def _levels_view_nb(
    orders: F64, positions: F64, levels: F64, symbols: F64, sym: int
) -> tuple[int, int, int, int]:
    """The resting orders seen as exit levels of the position, in ``levels[sym]``: the nearest
    stop, the farthest other stop as the emergency close, the nearest limit as the partial,
    the next as the target. Returns their order slots (stop, emergency, partial, target), -1
    where there is none. Without a stop, only the liquidation price can end the position."""
    pos = positions[sym]
    view = levels[sym]
    symbols[sym].levels_fresh = True
    side = pos.side
    view.side = side
    view.qty = pos.qty
    view.liq = pos.liq
    view.stop_reason = STOP_LOSS
    view.emergency = 0.0
    view.partial_price = np.nan
    view.partial_qty = 0.0
    view.target = np.nan
    if side == 0:
        return -1, -1, -1, -1
    stop = _nearest_nb(orders, sym, STOP_MARKET, side, -1)
    emergency = _farthest_stop_nb(orders, sym, side, stop) if stop >= 0 else -1
    partial = _nearest_nb(orders, sym, LIMIT, side, -1)
    target = _nearest_nb(orders, sym, LIMIT, side, partial) if partial >= 0 else -1
    if stop >= 0:
        view.stop = orders[sym, stop].price
    elif pos.liq > 0:
        view.stop = pos.liq
        view.stop_reason = LIQUIDATION
    else:
        view.stop = -side * np.inf
    if emergency >= 0:
        view.emergency = orders[sym, emergency].price
    if partial >= 0:
        order = orders[sym, partial]
        view.partial_price = order.price
        view.partial_qty = min(order.quantity - order.filled, pos.qty)
    if target >= 0:
        view.target = orders[sym, target].price
    return stop, emergency, partial, target


@inline_jit
def touched_nb(
    orders: F64, positions: F64, levels: F64, symbols: F64, sym: int, open_: float,
    high: float, low: float,
) -> bool:  # fmt: skip
    """Does the bar reach a resting order or the liquidation price of the position? If not,
    none of its 1m candles does either, and nothing fills. The view of the levels is kept
    between bars until an order or the position changes (most bars change neither)."""
    if positions[sym].side == 0:
        return False
    if not symbols[sym].levels_fresh:
        _levels_view_nb(orders, positions, levels, symbols, sym)
    return touches_nb(levels[sym], open_, high, low)


@step_jit
def _match_segment_nb(
    v: Venue,
    p: VenueParams,
    table: SymbolTable,
    sym: int,
    time_ms: int,
    open_: float,
    high: float,
    low: float,
    buf: F64,
    out: F64,
    n: int,
) -> int:
    stop, emergency, partial, target = _levels_view_nb(
        v.orders, v.positions, v.levels, v.symbols, sym
    )
    view = v.levels[sym]
    if view.side == 0:
        return n
    count = resolve_segment_nb(view, open_, high, low, buf)
    side = view.side
    for r in range(count):
        reason = int(buf[r, FILL_REASON])
        level_price = buf[r, FILL_PRICE]
        qty = buf[r, FILL_QTY]
        maker = buf[r, FILL_MAKER] > 0
        pos = v.positions[sym]
        if reason == LIQUIDATION:
            n = _fill_events_nb(v, p, out, n, sym, 0, time_ms, level_price, pos.qty, False, True,
                                True)  # fmt: skip
            pos.side = 0
            pos.qty = 0.0
            v.symbols[sym].levels_fresh = False
            return n
        k = stop
        if reason == EMERGENCY_CLOSE:
            k = emergency
        elif reason == PARTIAL_TAKE_PROFIT:
            k = partial
        elif reason == TAKE_PROFIT:
            k = target
        o = v.orders[sym, k]
        if not o.close_position:
            qty = min(qty, o.quantity - o.filled)
        qty = min(qty, pos.qty)
        price, _fee = exit_fill_terms_nb(side, level_price, qty, False, maker, high - low, p.costs)
        n = _fill_order_nb(v, p, table, out, n, sym, k, time_ms, price, qty, maker)
    return n


@step_jit
def match_position_nb(
    v: Venue,
    p: VenueParams,
    table: SymbolTable,
    sym: int,
    minute_time_ms: np.ndarray,
    minute_open: F64,
    minute_high: F64,
    minute_low: F64,
    buf: F64,
    out: F64,
    n: int,
) -> int:
    """The bar reached the position's orders (``touched_nb``): fill them, on the bar's 1m
    candles (when given) if a stop and a target both lie inside it, else the worst case."""
    s = v.symbols[sym]
    _levels_view_nb(v.orders, v.positions, v.levels, v.symbols, sym)
    if len(minute_open) > 0 and is_ambiguous_nb(v.levels[sym], s.high, s.low):
        for j in range(len(minute_open)):
            n = _match_segment_nb(
                v, p, table, sym, minute_time_ms[j], minute_open[j], minute_high[j],
                minute_low[j], buf, out, n,
            )  # fmt: skip
            if v.positions[sym].side == 0:
                break
        return n
    return _match_segment_nb(v, p, table, sym, s.open_time_ms, s.open, s.high, s.low, buf, out,
                             n)  # fmt: skip


@step_jit
def late_cancels_nb(v: Venue, sym: int, out: F64, n: int) -> int:
    """Cancels that reached the exchange late take effect once the bar is matched."""
    s = v.symbols[sym]
    for k in range(v.orders.shape[1]):
        o = v.orders[sym, k]
        if o.seq != 0 and o.cancel_at_bar_end:
            seq = o.seq
            _release_nb(v, sym, k)
            n = _event_nb(out, n, EV_ORDER_CANCELED, sym, seq, s.open_time_ms)
    return n


@inline_jit
def close_bar_nb(symbols: F64, sym: int, timeframe_ms: int) -> None:
    """The bar closes: market orders from now on wait for the next open."""
    s = symbols[sym]
    s.phase = PHASE_CLOSED
    s.previous_close_ms = s.open_time_ms + timeframe_ms


@step_jit
def end_of_data_nb(
    v: Venue,
    p: VenueParams,
    table: SymbolTable,
    sym: int,
    price: float,
    time_ms: int,
    out: F64,
    n: int,
    outcomes: F64,
    n_outcomes: int,
) -> tuple[int, int]:
    """The data ends: the exchange stays open at the last close, where market orders (the
    core's closing orders among them) fill at once; virtual positions still open are marked
    out there (no label: ``closed`` False)."""
    s = v.symbols[sym]
    s.open_time_ms = time_ms
    s.open = price
    s.high = price
    s.low = price
    s.gap = False
    s.phase = PHASE_OPEN
    n = market_orders_nb(v, p, table, sym, out, n)
    for i in range(v.counters[2]):
        meta = v.virtual_meta[i]
        if meta.symbol != sym or meta.state == V_FREE:
            continue
        if meta.state == V_OPEN:
            pos = v.virtual[i]
            _virtual_exit_nb(pos, p.costs, price, pos.qty, END_OF_DATA, False, 0.0, time_ms)
            n_outcomes = _virtual_outcome_nb(v.virtual, v.virtual_meta, i, False, outcomes,
                                             n_outcomes)  # fmt: skip
        _free_virtual_nb(v.virtual_meta, v.symbols, v.counters, i)
    return n, n_outcomes


# --- virtual positions ---------------------------------------------------------------------


@step_jit
def _free_virtual_nb(meta: F64, symbols: F64, counters: np.ndarray, i: int) -> None:
    """Free slot ``i``; the slots in use stay below ``counters[2]``, so loops stop there."""
    symbols[meta[i].symbol].virtuals -= 1
    meta[i].state = V_FREE
    counters[0] -= 1
    while counters[2] > 0 and meta[counters[2] - 1].state == V_FREE:
        counters[2] -= 1


@step_jit
def add_virtual_nb(
    v: Venue,
    sym: int,
    signal_time_ms: int,
    entry_after_ms: int,
    direction: int,
    stop_pct: float,
    confidence: float,
    model_version: int,
) -> None:
    """A signal's virtual position, to enter at the next open (callers keep room: the table
    grows between steps)."""
    for i in range(len(v.virtual_meta)):
        meta = v.virtual_meta[i]
        if meta.state == V_FREE:
            v.counters[2] = max(v.counters[2], i + 1)
            v.symbols[sym].virtuals += 1
            meta.state = V_PENDING
            meta.symbol = sym
            meta.serial = v.counters[1]
            meta.signal_time_ms = signal_time_ms
            meta.entry_after_ms = entry_after_ms
            meta.direction = 1 if direction > 0 else -1
            meta.stop_pct = stop_pct
            meta.confidence = confidence
            meta.model_version = model_version
            v.counters[0] += 1
            v.counters[1] += 1
            return


@step_jit
def _virtual_exit_nb(pos: Position, costs: CostParams, price: float, qty: float, reason: int,
                     maker: bool, bar_range: float, time_ms: int) -> None:  # fmt: skip
    """One exit fill of a virtual position, priced like a real one's."""
    filled, fee = exit_fill_terms_nb(pos.side, price, qty, False, maker, bar_range, costs)
    apply_exit_nb(pos, filled, qty, reason, fee, time_ms)


@step_jit
def _virtual_outcome_nb(virtual: F64, meta_rows: F64, i: int, closed: bool, outcomes: F64,
                        k: int) -> int:  # fmt: skip
    pos = virtual[i]
    meta = meta_rows[i]
    row = outcomes[k]
    row.serial = meta.serial
    row.symbol = meta.symbol
    row.signal_time_ms = meta.signal_time_ms
    row.side = meta.direction
    row.entry_time_ms = pos.entry_time_ms
    row.entry_price = pos.entry_price
    row.stop_pct = meta.stop_pct
    row.exit_time_ms = pos.last_exit_time_ms
    row.exit_price = pos.exit_value / pos.qty_initial
    row.exit_reason = pos.last_exit_reason
    row.return_pct = (pos.realized - pos.fees) / (pos.qty_initial * pos.entry_price) * 100.0
    row.closed = closed
    row.confidence = meta.confidence
    row.model_version = meta.model_version
    return k + 1


@step_jit
def virtuals_at_open_nb(
    virtual: F64,
    meta_rows: F64,
    symbols: F64,
    counters: np.ndarray,
    costs: CostParams,
    exits: ExitParams,
    tick_size: float,
    sym: int,
) -> None:
    """Enter the virtual positions signalled at the previous close (none after a hole in the
    data), and fill the time stops decided there."""
    s = symbols[sym]
    bar_range = s.high - s.low
    for i in range(counters[2]):
        meta = meta_rows[i]
        if meta.symbol != sym:
            continue
        if meta.state == V_PENDING:
            if meta.entry_after_ms != s.open_time_ms:
                _free_virtual_nb(meta_rows, symbols, counters, i)
                continue
            pos = virtual[i]
            price, fee = entry_fill_terms_nb(meta.direction, 1.0, s.open, bar_range, costs)
            open_position_nb(
                pos, meta.direction, 1.0, price, s.open_time_ms, 1.0, fee, 0.0,
                meta.signal_time_ms, meta.serial,
            )  # fmt: skip
            set_levels_nb(pos, meta.stop_pct, exits, tick_size)
            meta.state = V_OPEN
        elif meta.state == V_OPEN:
            pos = virtual[i]
            if time_stop_due_nb(pos, s.previous_close_ms, exits):
                _virtual_exit_nb(pos, costs, s.open, pos.qty, TIME_STOP, False, bar_range,
                                 s.open_time_ms)  # fmt: skip


@step_jit
def _virtual_segment_nb(pos: Position, costs: CostParams, time_ms: int, open_: float,
                        high: float, low: float, buf: F64) -> None:  # fmt: skip
    count = resolve_segment_nb(pos, open_, high, low, buf)
    for r in range(count):
        _virtual_exit_nb(
            pos, costs, buf[r, FILL_PRICE], buf[r, FILL_QTY], int(buf[r, FILL_REASON]),
            buf[r, FILL_MAKER] > 0, high - low, time_ms,
        )  # fmt: skip


@step_jit
def virtuals_in_bar_nb(
    virtual: F64,
    meta_rows: F64,
    symbols: F64,
    counters: np.ndarray,
    costs: CostParams,
    exits: ExitParams,
    tick_size: float,
    sym: int,
    minute_time_ms: np.ndarray,
    minute_open: F64,
    minute_high: F64,
    minute_low: F64,
    buf: F64,
    outcomes: F64,
    n_outcomes: int,
) -> int:
    """The virtual positions' exits inside the bar (the same exit kernels as real positions,
    1m candles where a stop and a target both lie inside it), then their levels move."""
    s = symbols[sym]
    for i in range(counters[2]):
        meta = meta_rows[i]
        if meta.symbol != sym or meta.state != V_OPEN:
            continue
        pos = virtual[i]
        if pos.qty > 0:  # not already closed by a time stop at the open
            if len(minute_open) > 0 and is_ambiguous_nb(pos, s.high, s.low):
                for j in range(len(minute_open)):
                    _virtual_segment_nb(pos, costs, minute_time_ms[j], minute_open[j],
                                        minute_high[j], minute_low[j], buf)  # fmt: skip
                    if pos.qty == 0.0:
                        break
            else:
                _virtual_segment_nb(pos, costs, s.open_time_ms, s.open, s.high, s.low, buf)
        if pos.qty == 0.0:
            n_outcomes = _virtual_outcome_nb(virtual, meta_rows, i, True, outcomes, n_outcomes)
            _free_virtual_nb(meta_rows, symbols, counters, i)
        else:
            update_levels_nb(pos, s.high, s.low, exits, tick_size)
    return n_outcomes


# --- the phases of a bar: both drivers call these, the compiled one inlined ----------------


@inline_jit
def open_phase_nb(
    v: Venue,
    p: VenueParams,
    table: SymbolTable,
    sym: int,
    open_time_ms: int,
    open_: float,
    high: float,
    low: float,
    close: float,
    funding_time_ms: np.ndarray,
    funding_rate: F64,
    funding_mark: F64,
    f0: int,
    f1: int,
    out: F64,
) -> int:
    """The open of a bar for one symbol: events written. The symbol's funding is
    ``funding_*[f0:f1]`` (sliced only when a payment is due: a slice costs on every bar)."""
    open_bar_nb(v.symbols, sym, open_time_ms, open_, high, low, close)
    n = 0
    if funding_due_nb(v.symbols, sym, funding_time_ms, f0, f1):
        n = settle_funding_nb(v, sym, funding_time_ms[f0:f1], funding_rate[f0:f1],
                              funding_mark[f0:f1], out, n)  # fmt: skip
    if v.symbols[sym].markets > 0:
        n = market_orders_nb(v, p, table, sym, out, n)
    if v.symbols[sym].virtuals > 0:
        virtuals_at_open_nb(v.virtual, v.virtual_meta, v.symbols, v.counters, p.costs, p.exits,
                            table.tick_size[sym], sym)  # fmt: skip
    return n


@inline_jit
def match_phase_nb(
    v: Venue,
    p: VenueParams,
    table: SymbolTable,
    sym: int,
    minute_time_ms: np.ndarray,
    minute_open: F64,
    minute_high: F64,
    minute_low: F64,
    buf: F64,
    out: F64,
    outcomes: F64,
    n_outcomes: int,
) -> tuple[int, int]:
    """Inside a bar for one symbol, then the bar closes (so what the core answers to these
    events waits for the next open): (events written, virtual outcomes written in all)."""
    s = v.symbols[sym]
    n = 0
    if touched_nb(v.orders, v.positions, v.levels, v.symbols, sym, s.open, s.high, s.low):
        n = match_position_nb(v, p, table, sym, minute_time_ms, minute_open, minute_high,
                              minute_low, buf, out, n)  # fmt: skip
    if s.late_cancels > 0:
        n = late_cancels_nb(v, sym, out, n)
    if s.virtuals > 0:
        n_outcomes = virtuals_in_bar_nb(
            v.virtual, v.virtual_meta, v.symbols, v.counters, p.costs, p.exits,
            table.tick_size[sym], sym, minute_time_ms, minute_open, minute_high, minute_low, buf,
            outcomes, n_outcomes,
        )  # fmt: skip
    close_bar_nb(v.symbols, sym, p.timeframe_ms)
    return n, n_outcomes


@step_jit
def bar_phases_nb(
    v: Venue,
    p: VenueParams,
    table: SymbolTable,
    sym: int,
    open_time_ms: int,
    open_: float,
    high: float,
    low: float,
    close: float,
    funding_time_ms: np.ndarray,
    funding_rate: F64,
    funding_mark: F64,
    minute_time_ms: np.ndarray,
    minute_open: F64,
    minute_high: F64,
    minute_low: F64,
    buf: F64,
    out: F64,
    outcomes: F64,
) -> tuple[int, int, bool]:
    """The open and, if it produced no events for the core to answer first, the inside of a
    lone symbol's bar: (events, virtual outcomes, matched). One call instead of two for the
    commonest bar."""
    n = open_phase_nb(v, p, table, sym, open_time_ms, open_, high, low, close, funding_time_ms,
                      funding_rate, funding_mark, 0, len(funding_time_ms), out)  # fmt: skip
    if n > 0:
        return n, 0, False
    n, done = match_phase_nb(v, p, table, sym, minute_time_ms, minute_open, minute_high,
                             minute_low, buf, out, outcomes, 0)  # fmt: skip
    return n, done, True
