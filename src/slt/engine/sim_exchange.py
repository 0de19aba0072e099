"""The simulated exchange behind event objects: the execution client of the events backtest
and of paper trading, and the follower of virtual positions in live trading.

It wraps the exchange kernels (``exchange_nb``) the compiled backtest calls, turning command
objects into their records and the events they emit back into objects.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from slt.domain.features.jit import compiled_entry
from slt.domain.trading.exits_nb import FILL_COLUMNS
from slt.engine import exchange_nb as nb
from slt.engine.book import SymbolTable
from slt.engine.identity import client_order_id, parse_client_order_id
from slt.engine.messages import (
    CancelOrder,
    Command,
    Event,
    FillStatus,
    FundingPaid,
    OpenVirtualPosition,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    PlaceOrder,
    PositionLiquidated,
)
from slt.engine.records import (
    EV_FUNDING_PAID,
    EV_LIQUIDATED,
    EV_ORDER_ACCEPTED,
    EV_ORDER_CANCEL_REJECTED,
    EV_ORDER_CANCELED,
    EV_ORDER_EXPIRED,
    EV_ORDER_FILLED,
    EV_ORDER_REJECTED,
    EV_ORDER_SUBMITTED,
    EVENT_DT,
    FILLED,
    LIMIT,
    MARKET,
    REASON_TEXT,
    STOP_MARKET,
    EventRow,
)
from slt.engine.venue import (
    MAX_VENUE_ORDERS,
    VIRTUAL_OUTCOME_DT,
    Venue,
    VenueParams,
    grow_virtual,
    new_venue,
)
from slt.errors import IntegrityError

_KINDS = {"market": MARKET, "stop_market": STOP_MARKET, "limit": LIMIT}
MinuteArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None
_EVENT_ROOM = 1024


class SimulatedExchange:
    """One account at the simulated exchange; ``run_id`` names the orders it is sent."""

    def __init__(
        self,
        run_id: str,
        symbols: Sequence[str],
        table: SymbolTable,
        params: VenueParams,
        model_versions: Sequence[str] = (),
        max_orders: int = MAX_VENUE_ORDERS,
    ) -> None:
        self.run_id = run_id
        self.symbols = tuple(symbols)
        self.table = table
        self.params = params
        self.venue: Venue = new_venue(len(self.symbols), params.faults, max_orders=max_orders)
        self._events = np.zeros(_EVENT_ROOM, dtype=EVENT_DT)
        self._buf = np.empty((2, FILL_COLUMNS))
        self._outcomes = np.zeros(len(self.venue.virtual), dtype=VIRTUAL_OUTCOME_DT)
        self.outcome_rows: list[np.ndarray] = []  # closed or marked-out virtual positions
        # Virtual outcomes name their model by number; a backtest numbers them as the reducer.
        self.model_versions = ["none", *model_versions]
        self._k = _Kernels(self.venue, params, table, self._events, self._buf, self._outcomes)
        self._ticks = [float(t) for t in table.tick_size]

    # -- commands -----------------------------------------------------------------------

    def execute(self, commands: Sequence[Command]) -> list[Event]:
        """Take the core's orders, cancels and virtual positions; returns what it answers."""
        events: list[Event] = []
        k, v, p, table, out = self._k, self.venue, self.params, self.table, self._events
        for command in commands:
            if isinstance(command, PlaceOrder):
                s, seq = self._order(command.client_order_id)
                n = k.place(
                    v, p, table, s, seq, _KINDS[command.kind], command.side, command.quantity,
                    command.price, command.reduce_only, command.close_position,
                    command.leverage, out, 0,
                )  # fmt: skip
            elif isinstance(command, CancelOrder):
                s, seq = self._order(command.client_order_id)
                n = k.cancel(v, p, s, seq, out, 0)
            elif isinstance(command, OpenVirtualPosition) and p.follow_virtual:
                if len(v.virtual_meta) - v.counters[0] < 1:
                    self.venue = v = grow_virtual(v)
                    self._outcomes = np.zeros(len(v.virtual), dtype=VIRTUAL_OUTCOME_DT)
                if command.model_version not in self.model_versions:
                    self.model_versions.append(command.model_version)
                k.add_virtual(
                    v, self.symbols.index(command.symbol), command.signal_time_ms,
                    command.entry_after_ms, command.direction, command.stop_pct,
                    command.confidence, self.model_versions.index(command.model_version),
                )  # fmt: skip
                continue
            else:
                continue
            if n:
                events += self._convert(n)
        return events

    def fill_at(
        self,
        client_order_id: str,
        side: int,
        quantity: float,
        price: float,
        maker: bool,
        leverage: float,
        time_ms: int,
    ) -> list[Event]:
        """Fill an order the venue does not hold at ``price`` (already priced with the cost
        kernels by the caller): the local exchange's limit entries and triggered conditional
        orders."""
        s, seq = self._order(client_order_id)
        n = self._k.fill_at(
            self.venue, self.params, self.table, s, seq, side, quantity, price, maker, leverage,
            time_ms, self._events, 0,
        )  # fmt: skip
        return self._convert(n)

    def _order(self, order_id: str) -> tuple[int, int]:
        found = parse_client_order_id(order_id, self.run_id, self.symbols)
        if found is None:
            raise IntegrityError(f"the simulated exchange got another run's order: {order_id}")
        return found

    # -- bars ---------------------------------------------------------------------------

    def open_bar(
        self,
        symbol: int,
        open_time_ms: int,
        open_: float,
        high: float,
        low: float,
        close: float,
        funding: tuple[np.ndarray, np.ndarray, np.ndarray],
    ) -> list[Event]:
        """A bar opens: funding due by then, then the market orders that waited for it, and
        the virtual positions' entries and time stops."""
        n = self._k.open_phase(
            self.venue, self.params, self.table, symbol, open_time_ms, open_, high, low, close,
            funding[0], funding[1], funding[2], 0, len(funding[0]), self._events,
        )  # fmt: skip
        return self._convert(n) if n else []

    def match_bar(self, symbol: int, minutes: MinuteArrays = None) -> list[Event]:
        """Inside the bar: the position's resting orders (on its 1m candles, when given, as
        open times, opens, highs, lows), late cancels, the virtual positions; then the bar
        closes."""
        mt, mo, mh, ml = minutes if minutes is not None else (_EMPTY_T, _EMPTY, _EMPTY, _EMPTY)
        n, done = self._k.match_phase(
            self.venue, self.params, self.table, symbol, mt, mo, mh, ml, self._buf, self._events,
            self._outcomes, 0,
        )  # fmt: skip
        if done:
            self.outcome_rows.append(self._outcomes[:done].copy())
        return self._convert(n) if n else []

    def open_and_match(
        self,
        symbol: int,
        open_time_ms: int,
        open_: float,
        high: float,
        low: float,
        close: float,
        funding: tuple[np.ndarray, np.ndarray, np.ndarray],
        minutes: MinuteArrays = None,
    ) -> tuple[list[Event], bool]:
        """``open_bar``, then ``match_bar`` at once if the open asked nothing of the core:
        (events, whether the bar was matched). Only for a symbol alone in its step."""
        mt, mo, mh, ml = minutes if minutes is not None else (_EMPTY_T, _EMPTY, _EMPTY, _EMPTY)
        n, done, matched = self._k.bar_phases(
            self.venue, self.params, self.table, symbol, open_time_ms, open_, high, low, close,
            funding[0], funding[1], funding[2], mt, mo, mh, ml, self._buf, self._events,
            self._outcomes,
        )  # fmt: skip
        if done:
            self.outcome_rows.append(self._outcomes[:done].copy())
        return (self._convert(n) if n else []), matched

    def end_of_data(self, symbol: int, price: float, time_ms: int) -> list[Event]:
        """The data ends: open at the last close, where market orders fill at once."""
        n, done = nb.end_of_data_nb(
            self.venue, self.params, self.table, symbol, price, time_ms, self._events, 0,
            self._outcomes, 0,
        )  # fmt: skip
        self._keep_outcomes(done)
        return self._convert(n)

    def _keep_outcomes(self, count: int) -> None:
        if count:
            self.outcome_rows.append(self._outcomes[:count].copy())

    def outcomes(self) -> np.ndarray:
        if not self.outcome_rows:
            return np.zeros(0, dtype=VIRTUAL_OUTCOME_DT)
        return np.concatenate(self.outcome_rows)

    # -- events -------------------------------------------------------------------------

    def _convert(self, n: int) -> list[Event]:
        events: list[Event] = []
        symbols, run_id = self.symbols, self.run_id
        for e in map(EventRow._make, self._events[:n].tolist()):
            symbol = symbols[e.symbol]
            if e.kind == EV_FUNDING_PAID:
                events.append(FundingPaid(symbol, e.time_ms, e.rate, e.mark, e.fee))
                continue
            if e.kind == EV_LIQUIDATED:
                events.append(PositionLiquidated(symbol, e.trade_id, e.time_ms, e.price, e.qty))
                continue
            order = client_order_id(run_id, symbol, e.seq)
            if e.kind == EV_ORDER_FILLED:
                status: FillStatus = "filled" if e.code == FILLED else "partially_filled"
                events.append(
                    OrderFilled(order, symbol, e.trade_id, e.time_ms, e.price, e.qty, e.fee, status)
                )
            elif e.kind == EV_ORDER_SUBMITTED:
                events.append(OrderSubmitted(order, symbol))
            elif e.kind == EV_ORDER_ACCEPTED:
                events.append(OrderAccepted(order, symbol))
            elif e.kind == EV_ORDER_CANCELED:
                events.append(OrderCanceled(order, symbol))
            elif e.kind == EV_ORDER_CANCEL_REJECTED:
                events.append(OrderCancelRejected(order, symbol, REASON_TEXT.get(e.code, "")))
            elif e.kind == EV_ORDER_EXPIRED:
                events.append(OrderExpired(order, symbol, REASON_TEXT.get(e.code, "")))
            elif e.kind == EV_ORDER_REJECTED:
                events.append(OrderRejected(order, symbol, REASON_TEXT.get(e.code, "")))
        return events


_EMPTY_T = np.zeros(0, dtype=np.int64)
_EMPTY = np.zeros(0)


class _Kernels:
    """Compiled entries of the exchange's phases (``compiled_entry``): a call through numba's
    dispatcher with the whole venue costs twenty times the phase itself."""

    def __init__(
        self,
        venue: Venue,
        p: VenueParams,
        table: SymbolTable,
        events: np.ndarray,
        buf: np.ndarray,
        outcomes: np.ndarray,
    ) -> None:
        i, x = 0, 1.0
        self.place = compiled_entry(
            nb.place_nb, venue, p, table, i, i, i, i, x, x, True, True, x, events, i
        )
        self.cancel = compiled_entry(nb.cancel_nb, venue, p, i, i, events, i)
        self.fill_at = compiled_entry(
            nb.fill_at_nb, venue, p, table, i, i, i, x, x, True, x, i, events, i
        )
        self.add_virtual = compiled_entry(nb.add_virtual_nb, venue, i, i, i, i, x, x, i)
        self.open_phase = compiled_entry(
            nb.open_phase_nb,
            venue,
            p,
            table,
            i,
            i,
            x,
            x,
            x,
            x,
            _EMPTY_T,
            _EMPTY,
            _EMPTY,
            i,
            i,
            events,
        )
        self.bar_phases = compiled_entry(
            nb.bar_phases_nb, venue, p, table, i, i, x, x, x, x, _EMPTY_T, _EMPTY, _EMPTY,
            _EMPTY_T, _EMPTY, _EMPTY, _EMPTY, buf, events, outcomes,
        )  # fmt: skip
        self.match_phase = compiled_entry(
            nb.match_phase_nb, venue, p, table, i, _EMPTY_T, _EMPTY, _EMPTY, _EMPTY, buf, events,
            outcomes, i,
        )  # fmt: skip
