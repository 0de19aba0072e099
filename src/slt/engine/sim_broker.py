"""A simulated Binance USDT-M account for the event-driven engine (paper trading's broker).

It fills the core's orders with the same kernels as the backtest loop: market orders at the
next open with slippage and the taker fee, resting stops and limits inside the candle (1m
candles when both sides are touched, else worst case), liquidation at the bracket's price.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from slt.domain.trading.enums import (
    EMERGENCY_CLOSE,
    LIQUIDATION,
    PARTIAL_TAKE_PROFIT,
    TAKE_PROFIT,
)
from slt.domain.trading.exits_nb import (
    FILL_COLUMNS,
    FILL_MAKER,
    FILL_PRICE,
    FILL_QTY,
    FILL_REASON,
    is_ambiguous_nb,
    resolve_segment_nb,
)
from slt.domain.trading.margin_nb import liquidation_price_nb
from slt.domain.trading.params import CostParams
from slt.domain.trading.position_nb import (
    EMERGENCY,
    ENTRY_PRICE,
    ENTRY_TIME,
    LIQ,
    PARTIAL_PRICE,
    PARTIAL_QTY,
    QTY,
    SIDE,
    STOP,
    STOP_REASON,
    TARGET,
    new_position,
)
from slt.domain.trading.symbol_rules import SymbolRules
from slt.engine.core_nb import entry_fill_terms_nb, exit_fill_terms_nb
from slt.engine.messages import (
    CancelOrder,
    Command,
    Event,
    FundingPaid,
    OrderFilled,
    OrderRejected,
    PlaceOrder,
)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


class SimulatedBroker:
    """Holds the resting orders and the exchange's view of the position."""

    def __init__(
        self,
        costs: CostParams,
        rules: SymbolRules,
        funding_time_ms: I64,
        funding_rate: F64,
        funding_mark: F64,
    ) -> None:
        self.costs = costs
        self.rules = rules
        self.funding = (funding_time_ms, funding_rate, funding_mark)
        self._funding_next = 0
        self.orders: dict[str, PlaceOrder] = {}
        self.book = new_position()  # side, quantity and the levels of the resting orders
        self._expected_open_ms: int | None = None
        self._liquidations = 0
        self._buf = np.empty((2, FILL_COLUMNS))

    def execute(self, commands: list[Command]) -> None:
        for command in commands:
            if isinstance(command, PlaceOrder):
                self.orders[command.order_id] = command
                self._set_level(command)
            elif isinstance(command, CancelOrder):
                cancelled = self.orders.pop(command.order_id, None)
                if cancelled is not None:
                    self._clear_level(cancelled)

    def _set_level(self, order: PlaceOrder) -> None:
        b = self.book
        if order.purpose == "stop":
            b[STOP], b[STOP_REASON] = order.price, order.reason
        elif order.purpose == "emergency_stop":
            b[EMERGENCY] = order.price
        elif order.purpose == "take_profit":
            b[TARGET] = order.price
        elif order.purpose == "partial_take_profit":
            b[PARTIAL_PRICE], b[PARTIAL_QTY] = order.price, order.quantity

    def _clear_level(self, order: PlaceOrder) -> None:
        b = self.book
        if order.purpose == "emergency_stop":
            b[EMERGENCY] = 0.0
        elif order.purpose == "take_profit":
            b[TARGET] = np.nan
        elif order.purpose == "partial_take_profit":
            b[PARTIAL_PRICE] = np.nan

    def on_open(self, time_ms: int, open_: float, high: float, low: float) -> list[Event]:
        """Funding due by this open, then the market orders at the open (closes first)."""
        events: list[Event] = []
        times, rates, marks = self.funding
        while self._funding_next < len(times) and times[self._funding_next] <= time_ms:
            k = self._funding_next
            if self.book[SIDE] != 0 and times[k] > self.book[ENTRY_TIME]:
                mark = marks[k] if np.isfinite(marks[k]) else open_
                events.append(FundingPaid(int(times[k]), float(rates[k]), float(mark)))
            self._funding_next += 1
        gap = self._expected_open_ms is not None and time_ms != self._expected_open_ms
        markets = [o for o in self.orders.values() if o.kind == "market"]
        for order in sorted(markets, key=lambda o: not o.reduce_only):
            del self.orders[order.order_id]
            if order.reduce_only:
                if self.book[SIDE] == 0:
                    events.append(OrderRejected(order.order_id, "no position to reduce"))
                    continue
                events.append(
                    self._exit_fill(
                        order.order_id,
                        open_,
                        order.reason,
                        False,
                        float(self.book[QTY]),
                        high - low,
                        time_ms,
                    )
                )
            elif gap:
                events.append(OrderRejected(order.order_id, "no market data at the fill time"))
            else:
                events.append(self._entry_fill(order, open_, high - low, time_ms))
        return events

    def _entry_fill(self, order: PlaceOrder, open_: float, bar_range: float, t: int) -> Event:
        price, fee = entry_fill_terms_nb(order.side, order.quantity, open_, bar_range, self.costs)
        b = self.book
        b[:] = new_position()
        b[SIDE], b[QTY], b[ENTRY_PRICE], b[ENTRY_TIME] = order.side, order.quantity, price, t
        b[TARGET] = b[PARTIAL_PRICE] = np.nan
        b[LIQ] = liquidation_price_nb(
            order.side,
            price,
            order.quantity,
            order.quantity * price / order.leverage,
            self.rules.brackets,
        )
        return OrderFilled(order.order_id, t, float(price), order.quantity, float(fee))

    def _exit_fill(
        self, order_id: str, price: float, reason: int, maker: bool, qty: float, rng: float, t: int
    ) -> OrderFilled:
        b = self.book
        filled, fee = exit_fill_terms_nb(int(b[SIDE]), price, qty, reason, maker, rng, self.costs)
        b[QTY] -= min(qty, b[QTY])
        if reason == PARTIAL_TAKE_PROFIT:
            b[PARTIAL_PRICE] = np.nan
        if b[QTY] <= 0:
            b[SIDE] = 0.0
        return OrderFilled(order_id, t, float(filled), qty, float(fee))

    def during_candle(
        self,
        time_ms: int,
        open_: float,
        high: float,
        low: float,
        minutes: tuple[I64, F64, F64, F64] | None = None,
    ) -> list[Event]:
        """Fills of the resting orders inside the candle (on its 1m candles when ambiguous)."""
        if self.book[SIDE] == 0:
            return []
        if minutes is not None and is_ambiguous_nb(self.book, high, low):
            events: list[Event] = []
            for t, o, h, lo in zip(*minutes, strict=True):
                events += self._segment(int(t), float(o), float(h), float(lo))
                if self.book[SIDE] == 0:
                    break
            return events
        return self._segment(time_ms, open_, high, low)

    def _segment(self, t: int, o: float, h: float, lo: float) -> list[Event]:
        n = resolve_segment_nb(self.book, o, h, lo, self._buf)
        events: list[Event] = []
        for r in range(n):
            reason = int(self._buf[r, FILL_REASON])
            price, qty = float(self._buf[r, FILL_PRICE]), float(self._buf[r, FILL_QTY])
            if reason == LIQUIDATION:
                self._liquidations += 1
                self.book[QTY], self.book[SIDE] = 0.0, 0.0
                events.append(
                    OrderFilled(
                        f"liquidation-{self._liquidations}", t, price, qty, 0.0, liquidation=True
                    )
                )
                continue
            order_id = self._order_for(reason)
            self.orders.pop(order_id)
            maker = bool(self._buf[r, FILL_MAKER] > 0)
            events.append(self._exit_fill(order_id, price, reason, maker, qty, h - lo, t))
        return events

    def _order_for(self, reason: int) -> str:
        purpose = {
            EMERGENCY_CLOSE: "emergency_stop",
            PARTIAL_TAKE_PROFIT: "partial_take_profit",
            TAKE_PROFIT: "take_profit",
        }.get(reason, "stop")
        return next(i for i, o in self.orders.items() if o.purpose == purpose)

    def expect_next_open(self, time_ms: int) -> None:
        self._expected_open_ms = time_ms

    def fill_now(self, price: float, time_ms: int) -> list[Event]:
        """Fill the pending market closes at ``price`` now (the end of a backtest)."""
        events: list[Event] = []
        for order in [o for o in self.orders.values() if o.kind == "market" and o.reduce_only]:
            del self.orders[order.order_id]
            if self.book[SIDE] != 0:
                events.append(
                    self._exit_fill(
                        order.order_id,
                        price,
                        order.reason,
                        False,
                        float(self.book[QTY]),
                        0.0,
                        time_ms,
                    )
                )
        return events
