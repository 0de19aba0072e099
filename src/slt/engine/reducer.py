"""The portfolio reducer: ``step(state, event) -> (state, commands)``.

A thin wrapper: it turns an event object into a call of the decision kernels (the very ones
the compiled backtest calls), and what they wrote into command objects. No I/O, no clock, no
randomness: the same events give the same commands. The state is updated in place and
returned (copy it first to keep the one before); an event the kernels refuse raises
``IntegrityError`` and leaves the state as it was.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from slt.domain.features.jit import compiled_entry
from slt.domain.trading.enums import EXIT_REASON_CODES, EXIT_REASONS
from slt.domain.trading.symbol_rules import SymbolRules
from slt.engine import decision_nb as nb
from slt.engine.book import DecisionParams, Outbox, SymbolTable, new_book, new_outbox, symbol_table
from slt.engine.config import EngineConfig
from slt.engine.identity import client_order_id, parse_client_order_id
from slt.engine.messages import (
    AccountUpdated,
    CancelOrder,
    CandleClosed,
    CloseRequested,
    Command,
    Event,
    FundingPaid,
    ModelChanged,
    Notify,
    OpenVirtualPosition,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    Persist,
    PlaceOrder,
    PositionLiquidated,
    Reconciled,
)
from slt.engine.records import (
    CANCELED,
    CMD_CANCEL_ORDER,
    CMD_NOTIFY,
    CMD_OPEN_VIRTUAL,
    CMD_PERSIST_TRADE,
    CMD_PLACE_ORDER,
    ERR_BAD_EVENT,
    ERR_ILLEGAL_TRANSITION,
    ERR_ORDER_TABLE_FULL,
    ERR_OUTPUT_FULL,
    ERR_OVERFILL,
    ERR_UNKNOWN_ORDER,
    EV_ORDER_ACCEPTED,
    EV_ORDER_CANCEL_REJECTED,
    EV_ORDER_CANCELED,
    EV_ORDER_EXPIRED,
    EV_ORDER_REJECTED,
    EV_ORDER_SUBMITTED,
    FILLED,
    MARKED_BY_RECONCILIATION,
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
    ORDER_KIND_NAMES,
    PARTIALLY_FILLED,
    PURPOSE_NAMES,
    REASON_TEXT,
    STATUS_NAMES,
    CommandRow,
)
from slt.engine.state import PortfolioState
from slt.engine.trades import build_trades
from slt.errors import IntegrityError

_ERRORS = {
    ERR_ILLEGAL_TRANSITION: "illegal order transition",
    ERR_UNKNOWN_ORDER: "event for an order the engine never placed",
    ERR_OVERFILL: "fill beyond the order's quantity",
    ERR_ORDER_TABLE_FULL: "order table full",
    ERR_OUTPUT_FULL: "output buffer full",
    ERR_BAD_EVENT: "malformed or impossible event",
}
_STATUS_KIND = {
    OrderSubmitted: EV_ORDER_SUBMITTED,
    OrderAccepted: EV_ORDER_ACCEPTED,
    OrderCanceled: EV_ORDER_CANCELED,
    OrderCancelRejected: EV_ORDER_CANCEL_REJECTED,
    OrderExpired: EV_ORDER_EXPIRED,
    OrderRejected: EV_ORDER_REJECTED,
}
_REASON_CODE = {text: code for code, text in REASON_TEXT.items() if text}


def integrity_error(fault: np.ndarray, symbols: Sequence[str]) -> IntegrityError:
    code, sym, seq, status = (int(x) for x in fault[:4])
    symbol = symbols[sym] if 0 <= sym < len(symbols) else f"#{sym}"
    what = _ERRORS.get(code, f"error {code}")
    state = STATUS_NAMES[status] if 0 <= status < len(STATUS_NAMES) else str(status)
    return IntegrityError(f"{what}: {symbol} order {seq} (status {state})", code, symbol, str(seq))


class Reducer:
    """One account's decisions over its symbols (the rules' order is the symbols' order)."""

    def __init__(self, config: EngineConfig, rules: Sequence[SymbolRules]) -> None:
        self.config = config
        self.symbols = tuple(r.symbol for r in rules)
        self.table = symbol_table(rules)
        self.params = DecisionParams(config.exits, config.sizing, config.adopt_unknown)
        self.out: Outbox = new_outbox()
        self._ticks = [float(r.tick_size) for r in rules]
        self._reason = ""
        self._extra: list[Command] = []
        self._kernels = _Kernels(self.table, self.params, self.out)
        self._index = {symbol: i for i, symbol in enumerate(self.symbols)}

    def new_state(self, run_id: str) -> PortfolioState:
        return PortfolioState.new(
            run_id, self.symbols, self.config.initial_equity, self.config.sizing.win_rate_lookback
        )

    def step(self, state: PortfolioState, event: Event) -> tuple[PortfolioState, list[Command]]:
        if state.symbols != self.symbols:
            raise IntegrityError(
                f"state of symbols {state.symbols} given to a reducer of {self.symbols}"
            )
        out = self.out
        if type(event) is CandleClosed and event.direction == 0:
            # The commonest event: a close without a signal that only moves the mark.
            book, s = state.book, self._index.get(event.symbol, -1)
            if s >= 0 and self._kernels.quiet(
                book.positions, book.marks, s, 0, float(event.high), float(event.low),
                float(event.close), int(event.close_time_ms), self.params.exits, self._ticks[s],
            ):  # fmt: skip
                return state, []
        out.counts[:] = 0
        rc = self._apply(state, event)
        if rc < 0:
            self._extra.clear()
            if self._after_reconciliation(state, event):
                symbol = state.symbols[int(out.fault[1])]
                text = (f"{symbol}: {type(event).__name__} for order {int(out.fault[2])} came "
                        "after a reconciliation had closed it; the reconciliation already took "
                        "the exchange's positions")  # fmt: skip
                return state, [Notify(text, "info", symbol)]
            raise integrity_error(out.fault, self.symbols)
        if out.counts[0] == 0 and not self._extra:
            return state, []
        commands = self._commands(state)
        if self._extra:
            commands += self._extra
            self._extra = []
        return state, commands

    def _after_reconciliation(self, state: PortfolioState, event: Event) -> bool:
        """The refused event is a late word (a fill read late, a cancel heard twice) about
        an order a reconciliation marked canceled: the exchange's snapshot already counted
        it, so it changes nothing and is not a fault."""
        code, sym, seq = (int(x) for x in self.out.fault[:3])
        kind = type(event)
        if code != ERR_ILLEGAL_TRANSITION or (kind not in _STATUS_KIND and kind is not OrderFilled):
            return False
        k = nb.find_order_nb(state.book, sym, seq)
        if k < 0:
            return False
        order = state.book.orders[sym, k]
        return bool(order["status"] == CANCELED
                    and order["status_before_cancel"] == MARKED_BY_RECONCILIATION)  # fmt: skip

    # -- events -------------------------------------------------------------------------

    def _apply(self, state: PortfolioState, event: Event) -> int:
        book, out, p, table, k = state.book, self.out, self.params, self.table, self._kernels
        if isinstance(event, CandleClosed):
            s = state.symbol_index(event.symbol)
            direction, high, low = int(event.direction), float(event.high), float(event.low)
            close, close_ms = float(event.close), int(event.close_time_ms)
            if k.quiet(book.positions, book.marks, s, direction, high, low, close, close_ms,
                       p.exits, self._ticks[s]):  # fmt: skip
                return 0
            return int(
                k.candle(
                    book,
                    table,
                    p,
                    out,
                    s,
                    int(event.open_time_ms),
                    close_ms,
                    high,
                    low,
                    close,
                    direction,
                    float(event.confidence),
                    float(event.stop_pct),
                    bool(event.gate),
                )
            )
        if isinstance(event, OrderFilled):
            found = self._order(state, event.client_order_id, event.symbol)
            if found is None:
                return self._foreign(state, event)
            s, seq = found
            status = FILLED if event.status == "filled" else PARTIALLY_FILLED
            return int(
                k.filled(
                    book,
                    table,
                    p,
                    out,
                    s,
                    seq,
                    int(event.trade_id),
                    int(event.time_ms),
                    float(event.price),
                    float(event.quantity),
                    float(event.fee),
                    status,
                )
            )
        kind = _STATUS_KIND.get(type(event))
        if kind is not None:
            assert isinstance(
                event,
                OrderSubmitted
                | OrderAccepted
                | OrderCanceled
                | OrderCancelRejected
                | OrderExpired
                | OrderRejected,
            )
            found = self._order(state, event.client_order_id, event.symbol)
            if found is None:
                return self._foreign(state, event)
            self._reason = getattr(event, "reason", "")
            s, seq = found
            code = _REASON_CODE.get(self._reason, 0)
            return int(k.status(book, table, p, out, kind, s, seq, code))
        if isinstance(event, PositionLiquidated):
            s = state.symbol_index(event.symbol)
            return int(
                nb.on_liquidated_nb(
                    book,
                    table,
                    p,
                    out,
                    s,
                    int(event.trade_id),
                    int(event.time_ms),
                    float(event.price),
                    float(event.quantity),
                )
            )
        if isinstance(event, FundingPaid):
            s = state.symbol_index(event.symbol)
            return int(nb.on_funding_paid_nb(book, out, s, float(event.amount)))
        if isinstance(event, CloseRequested):
            s = state.symbol_index(event.symbol)
            reason = EXIT_REASON_CODES.get(event.reason)
            if reason is None:
                raise IntegrityError(f"close requested for an unknown reason {event.reason!r}")
            return int(nb.on_close_requested_nb(book, out, s, reason))
        if isinstance(event, ModelChanged):
            if event.version not in state.model_versions:
                state.model_versions.append(event.version)
            return int(nb.on_model_changed_nb(book, out, state.model_versions.index(event.version)))
        if isinstance(event, AccountUpdated):
            book.account[0]["reported_equity"] = event.equity
            return 0
        if isinstance(event, Reconciled):
            from slt.engine.reconcile import reconcile

            return reconcile(self, state, event)
        raise IntegrityError(f"not an engine event: {event!r}")

    def _order(self, state: PortfolioState, order_id: str, symbol: str) -> tuple[int, int] | None:
        found = parse_client_order_id(order_id, state.run_id, state.symbols)
        if found is not None and state.symbols[found[0]] != symbol:
            raise IntegrityError(f"order {order_id} is not a {symbol} order")
        return found

    def _foreign(self, state: PortfolioState, event: Event) -> int:
        """An order this run never placed (by hand, another bot, an earlier run): nothing in
        the book changes; a fill moved the exchange's position, which reconciliation settles."""
        state.symbol_index(getattr(event, "symbol", ""))
        moved = isinstance(event, OrderFilled)
        text = (
            f"{type(event).__name__} of an order this run did not place: "
            f"{getattr(event, 'client_order_id', '')}"
            + (" (the exchange's position changed: reconcile)" if moved else "")
        )
        self._extra.append(Notify(text, "warning" if moved else "info", event.symbol))  # type: ignore[union-attr]
        return 0

    # -- commands -----------------------------------------------------------------------

    def _commands(self, state: PortfolioState) -> list[Command]:
        out = self.out
        commands: list[Command] = []
        trades = None
        run_id, symbols, versions = state.run_id, state.symbols, state.model_versions
        for c in map(CommandRow._make, out.commands[: out.counts[0]].tolist()):
            symbol = symbols[c.symbol]
            if c.kind == CMD_PLACE_ORDER:
                commands.append(
                    PlaceOrder(
                        client_order_id(run_id, symbol, c.seq), symbol,
                        ORDER_KIND_NAMES[c.order_kind], PURPOSE_NAMES[c.purpose],
                        c.side, c.quantity, c.price, c.reduce_only, c.close_position,
                        EXIT_REASONS.get(c.reason, ""), c.leverage,
                    )
                )  # fmt: skip
            elif c.kind == CMD_CANCEL_ORDER:
                commands.append(CancelOrder(client_order_id(run_id, symbol, c.seq), symbol))
            elif c.kind == CMD_OPEN_VIRTUAL:
                commands.append(
                    OpenVirtualPosition(
                        symbol, c.signal_time_ms, c.entry_after_ms, c.direction, c.confidence,
                        c.stop_pct, c.take_profit_pct, versions[c.model_version],
                    )
                )  # fmt: skip
            elif c.kind == CMD_PERSIST_TRADE:
                if trades is None:
                    trades = build_trades(
                        symbols, out.trades[: out.counts[1]], out.exits[: out.counts[2]]
                    )
                commands.append(Persist(trades[c.seq]))
            elif c.kind == CMD_NOTIFY:
                commands.append(self._notice(state, symbol, c.seq, c.code, c.value))
        return commands

    def _notice(
        self, state: PortfolioState, symbol: str, seq: int, code: int, value: float
    ) -> Notify:
        order = client_order_id(state.run_id, symbol, seq) if seq else ""
        reason = self._reason or (REASON_TEXT.get(int(value), "") if math.isfinite(value) else "")
        if code == NOTE_DUPLICATE_FILL:
            return Notify(f"duplicate fill ignored: {order} trade {int(value)}", "warning", symbol)
        if code == NOTE_ENTRY_REJECTED:
            return Notify(f"entry {order} rejected: {reason}", "warning", symbol)
        if code == NOTE_ENTRY_EXPIRED:
            return Notify(f"entry {order} expired: {reason}", "info", symbol)
        if code == NOTE_STOP_REJECTED_CLOSING:
            text = f"stop {order} rejected ({reason}): closing the position at market"
            return Notify(text, "warning", symbol)
        if code == NOTE_STOP_REJECTED_KEPT_OLD:
            text = f"replacement stop {order} rejected ({reason}): the previous stop stays"
            return Notify(text, "warning", symbol)
        if code == NOTE_ORDER_REJECTED:
            return Notify(f"order {order} rejected: {reason}", "warning", symbol)
        if code == NOTE_MODEL_CHANGED:
            return Notify(f"model changed to {state.model_versions[int(value)]}", "info")
        if code == NOTE_LATE_EVENT:
            return Notify(f"late event about a finished order {order}", "info", symbol)
        if code == NOTE_UNEXPECTED_FILL:
            action = "kept under a stop" if self.config.adopt_unknown else "closing it at market"
            text = f"the exchange holds {value:+g} {symbol} the bot did not expect: {action}"
            return Notify(text, "warning", symbol)
        if code == NOTE_FUNDING_WITHOUT_POSITION:
            return Notify(f"funding of {value:g} charged with no position open", "warning", symbol)
        return Notify(f"notice {code}", "info", symbol)


class _Kernels:
    """The compiled entries of the hot decision kernels (``compiled_entry``): numba's choice of
    types for a call with the whole book costs twenty times the step itself."""

    def __init__(self, table: SymbolTable, p: DecisionParams, out: Outbox) -> None:
        book = new_book(1, 1.0, 1)
        i, x = 0, 1.0
        self.quiet = compiled_entry(
            nb.quiet_close_nb, book.positions, book.marks, i, i, x, x, x, i, p.exits, x
        )
        self.candle = compiled_entry(
            nb.on_candle_closed_nb, book, table, p, out, i, i, i, x, x, x, i, x, x, True
        )
        self.filled = compiled_entry(
            nb.on_order_filled_nb, book, table, p, out, i, i, i, i, x, x, x, i
        )
        self.status = compiled_entry(nb.on_order_status_nb, book, table, p, out, i, i, i, i)
