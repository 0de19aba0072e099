"""What the core does when told what the exchange holds (``Reconciled``), at start-up or
after its view of the exchange had a gap.

The exchange is the truth. Orders: one of this run's orders the exchange no longer lists is
marked canceled (its fills, if any, came as events before this one); one the exchange lists
but the core does not expect is an orphan, and is cancelled; orders of others are left alone
and reported. Positions: one the core holds that the exchange does not is closed in the books
at the last mark (exit reason ``reconciled``); one the exchange holds that the core did not
open is taken on as the configuration says (protected by a stop, or flattened); a quantity
that differs is brought in line. Finally every open position gets its stop back if it has
none. The wallet takes the exchange's balance.
"""

from __future__ import annotations

from slt.domain.trading.enums import EMERGENCY_CLOSE, RECONCILED
from slt.engine import decision_nb as nb
from slt.engine.identity import parse_client_order_id
from slt.engine.messages import Command, Notify, Reconciled
from slt.engine.orders_nb import is_live_nb
from slt.engine.records import (
    ACCEPTED,
    CANCELED,
    CMD_CANCEL_ORDER,
    EMERGENCY_STOP,
    ENTRY,
    MARKED_BY_RECONCILIATION,
    STOP,
    STOP_MARKET,
)
from slt.engine.state import PortfolioState

_QTY_TOLERANCE = 1e-9


def reconcile(reducer: object, state: PortfolioState, event: Reconciled) -> int:
    """Apply ``event`` to ``state``; commands go to the reducer's outbox, notices to its
    extra list. Returns 0 (the kernels it calls cannot refuse these steps)."""
    from slt.engine.reducer import Reducer

    assert isinstance(reducer, Reducer)
    book, out, p, table = state.book, reducer.out, reducer.params, reducer.table
    notes = reducer._extra
    account = book.account[0]
    wallet = float(account["wallet"])
    if abs(event.wallet_balance - wallet) > 1e-6 * max(1.0, abs(wallet)):
        notes.append(
            Notify(
                f"wallet set to the exchange's {event.wallet_balance:,.4f} (was {wallet:,.4f})",
                "warning",
            )
        )
        account["wallet"] = event.wallet_balance
    listed: dict[int, set[int]] = {s: set() for s in range(len(state.symbols))}
    for order in event.open_orders:
        found = parse_client_order_id(order.client_order_id, state.run_id, state.symbols)
        if found is None:
            notes.append(
                Notify(
                    f"open order {order.client_order_id} was not placed by this run: left as it is",
                    "warning",
                    order.symbol,
                )
            )
            continue
        listed[found[0]].add(found[1])
    positions = {p_.symbol: p_ for p_ in event.positions if p_.quantity > 0}
    for s, symbol in enumerate(state.symbols):
        _orders(reducer, state, s, listed[s], notes)
        theirs = positions.get(symbol)
        pos = book.positions[s]
        side = int(pos["side"])
        ours_qty = float(pos["qty"])
        price_now = float(book.marks[s]) or float(pos["entry_price"])
        if side != 0 and (theirs is None or theirs.side != side):
            notes.append(Notify(f"{symbol}: the exchange no longer holds the position: closed "
                                "in the books at the last price", "warning", symbol))  # fmt: skip
            nb._exit_nb(book, out, s, price_now, ours_qty, RECONCILED, 0.0, event.time_ms)
            side = 0
        if theirs is None:
            continue
        if side == 0:
            nb._unexpected_exposure_nb(
                book, table, p, out, s, theirs.side, theirs.quantity, theirs.entry_price,
                event.time_ms,
            )  # fmt: skip
            continue
        gap = theirs.quantity - ours_qty
        if abs(gap) > ours_qty * _QTY_TOLERANCE:
            notes.append(Notify(f"{symbol}: the exchange holds {theirs.quantity:g}, the books "
                                f"{ours_qty:g}: brought in line", "warning", symbol))  # fmt: skip
            if gap < 0:
                nb._exit_nb(book, out, s, price_now, -gap, RECONCILED, 0.0, event.time_ms)
            else:
                _cancel_protection(reducer, state, s)
                nb._unexpected_exposure_nb(
                    book, table, p, out, s, side, gap, theirs.entry_price, event.time_ms
                )
                continue
        _protect(reducer, state, s, notes)
    return 0


def _orders(
    reducer: object, state: PortfolioState, s: int, listed: set[int], notes: list[Command]
) -> None:
    from slt.engine.reducer import Reducer

    assert isinstance(reducer, Reducer)
    book, out = state.book, reducer.out
    symbol = state.symbols[s]
    expected = set()
    for k in range(book.orders.shape[1]):
        o = book.orders[s, k]
        status = int(o["status"])
        if not is_live_nb(status) or bool(o["held"]):
            continue
        seq = int(o["seq"])
        expected.add(seq)
        if seq not in listed:
            o["status"] = CANCELED
            o["status_before_cancel"] = MARKED_BY_RECONCILIATION
            notes.append(Notify(f"{symbol} order {seq} is not open at the exchange: marked "
                                "canceled", "info", symbol))  # fmt: skip
    for seq in sorted(listed - expected):
        k = nb.find_order_nb(book, s, seq)
        notes.append(Notify(f"{symbol} order {seq} is open at the exchange but not expected: "
                            "cancelling it", "warning", symbol))  # fmt: skip
        if k >= 0:
            book.orders[s, k]["status"] = ACCEPTED  # it is out there after all: cancel it
            nb._cancel_nb(book, out, s, k)
        else:
            c = nb._command_nb(out, CMD_CANCEL_ORDER, s)  # no longer in the table: cancel by id
            out.commands[c]["seq"] = seq


def _cancel_protection(reducer: object, state: PortfolioState, s: int) -> None:
    from slt.engine.reducer import Reducer

    assert isinstance(reducer, Reducer)
    book = state.book
    for k in range(book.orders.shape[1]):
        o = book.orders[s, k]
        if int(o["purpose"]) != ENTRY and is_live_nb(int(o["status"])):
            nb._cancel_nb(book, reducer.out, s, k)


def _protect(reducer: object, state: PortfolioState, s: int, notes: list[Command]) -> None:
    """An open position without a stop gets one (and its emergency stop) back."""
    from slt.engine.reducer import Reducer

    assert isinstance(reducer, Reducer)
    book, out = state.book, reducer.out
    pos = book.positions[s]
    if int(pos["side"]) == 0:
        return
    if nb._live_order_nb(book, s, STOP) < 0:
        notes.append(Notify(f"{state.symbols[s]}: no stop on the exchange: placing it again",
                            "warning", state.symbols[s]))  # fmt: skip
        nb._stop_order_nb(book, out, s)
    if float(pos["emergency"]) > 0 and nb._live_order_nb(book, s, EMERGENCY_STOP) < 0:
        nb._place_nb(book, out, s, STOP_MARKET, EMERGENCY_STOP, -int(pos["side"]),
                     float(pos["qty"]), float(pos["emergency"]), EMERGENCY_CLOSE)  # fmt: skip
