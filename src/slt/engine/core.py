"""The decision core as an event reducer: ``apply(event) -> commands``; no I/O, no clock.

It decides with the same kernels as the backtest loop (``core_nb``, ``exits_nb``), so a
backtest, a paper session and a live session given the same events issue the same commands.
Order ids are sequence numbers, so replays are identical. A fill for an order the core does
not know (a duplicate, say) raises instead of being ignored.
"""

from __future__ import annotations

import math

import numpy as np

from slt.domain.trading.enums import (
    EMERGENCY_CLOSE,
    EXIT_REASONS,
    LIQUIDATION,
    PARTIAL_TAKE_PROFIT,
    TAKE_PROFIT,
    side_name,
)
from slt.domain.trading.exits_nb import update_levels_nb
from slt.domain.trading.position_nb import (
    EMERGENCY,
    ENTRY_PRICE,
    ENTRY_TIME,
    EXIT_VALUE,
    FEES,
    FUNDING,
    LEVERAGE,
    PARTIAL_PRICE,
    PARTIAL_QTY,
    POSITION_ID,
    QTY,
    QTY_INITIAL,
    REALIZED,
    SIDE,
    SIGNAL_TIME,
    STOP,
    STOP_REASON,
    TARGET,
    apply_exit_nb,
    new_position,
    unrealized_pnl_nb,
)
from slt.domain.trading.symbol_rules import SymbolRules
from slt.engine.core_nb import (
    ACCOUNT_SLOTS,
    CASH,
    CLOSE_REASON,
    OPEN_LEVERAGE,
    OPEN_QTY,
    OPEN_SIDE,
    OPEN_SIGNAL_TIME,
    OPEN_STOP_PCT,
    PENDING_SLOTS,
    decide_at_close_nb,
    funding_payment_nb,
    note_outcome_nb,
    open_from_fill_nb,
)
from slt.engine.messages import (
    AccountUpdated,
    CancelOrder,
    CandleClosed,
    Command,
    Event,
    FundingPaid,
    ModelChanged,
    Notify,
    OpenVirtualPosition,
    OrderFilled,
    OrderKind,
    OrderPurpose,
    OrderRejected,
    Persist,
    PlaceOrder,
)
from slt.engine.results import ExitFill, Trade
from slt.engine.trading_config import TradingConfig
from slt.errors import SltError

PROTECTIVE = frozenset({"stop", "emergency_stop", "take_profit", "partial_take_profit"})


class UnknownOrderError(SltError):
    """A fill or rejection for an order the core has no record of (duplicate or foreign)."""


class DecisionCore:
    """One symbol's decisions; ``apply`` is the only way in."""

    def __init__(self, config: TradingConfig, rules: SymbolRules, symbol: str) -> None:
        self.symbol = symbol
        self.rules = rules
        self.exits = config.exit_params()
        self.sizing = config.sizing_params()
        self.position = new_position()
        self.account = np.zeros(ACCOUNT_SLOTS)
        self.account[CASH] = config.initial_equity
        self.wins = np.zeros(max(self.sizing.win_rate_lookback, 1))
        self.orders: dict[str, PlaceOrder] = {}
        self.entries: dict[str, tuple[float, float, int]] = {}  # id -> leverage, stop, signal
        self.model_version = "none"
        self.reported_equity: float | None = None
        self._sequence = 0
        self._exit_fills: list[ExitFill] = []

    @property
    def cash(self) -> float:
        return float(self.account[CASH])

    def equity(self, price: float) -> float:
        return self.cash + float(unrealized_pnl_nb(self.position, price))

    def apply(self, event: Event) -> list[Command]:
        if isinstance(event, CandleClosed):
            return self._on_candle(event)
        if isinstance(event, OrderFilled):
            return self._on_fill(event)
        if isinstance(event, OrderRejected):
            return self._on_reject(event)
        if isinstance(event, FundingPaid):
            paid = funding_payment_nb(self.position, event.time_ms, event.rate, event.mark_price)
            self.account[CASH] -= paid
            return []
        if isinstance(event, AccountUpdated):
            self.reported_equity = event.equity
            return []
        if isinstance(event, ModelChanged):
            self.model_version = event.version
            return [Notify(f"model changed to {event.version}")]
        raise TypeError(f"not an engine event: {event!r}")

    def _next_id(self, purpose: str) -> str:
        self._sequence += 1
        return f"{purpose}-{self._sequence}"

    def _place(self, order: PlaceOrder) -> PlaceOrder:
        self.orders[order.order_id] = order
        return order

    def _on_candle(self, e: CandleClosed) -> list[Command]:
        pos = self.position
        commands: list[Command] = []
        if pos[SIDE] != 0:
            before = pos[STOP]
            update_levels_nb(pos, e.high, e.low, self.exits, self.rules.tick_size)
            if pos[STOP] != before:
                commands += self._replace_stop()
        equity = self.equity(e.close)
        stop_pct = self.exits.stop_loss_pct if e.stop_pct is None else e.stop_pct
        if e.direction != 0:
            commands.append(
                OpenVirtualPosition(
                    signal_time_ms=e.open_time_ms,
                    entry_after_ms=e.close_time_ms,
                    direction=e.direction,
                    confidence=e.confidence,
                    stop_pct=stop_pct,
                    take_profit_pct=self.exits.take_profit_pct,
                    model_version=self.model_version,
                )
            )
        pending = np.zeros(PENDING_SLOTS)
        decide_at_close_nb(
            pos,
            self.account,
            self.wins,
            pending,
            equity,
            e.close,
            e.open_time_ms,
            e.close_time_ms,
            e.direction,
            e.confidence,
            stop_pct,
            self.exits,
            self.sizing,
            self.rules.brackets,
            self.rules.step_size,
            self.rules.min_notional,
        )
        if pending[CLOSE_REASON] != 0:
            commands.append(self._market_close(int(pending[CLOSE_REASON])))
        if pending[OPEN_SIDE] != 0:
            order_id = self._next_id("entry")
            self.entries[order_id] = (
                float(pending[OPEN_LEVERAGE]),
                float(pending[OPEN_STOP_PCT]),
                int(pending[OPEN_SIGNAL_TIME]),
            )
            commands.append(
                self._place(
                    PlaceOrder(
                        order_id,
                        "market",
                        "entry",
                        int(pending[OPEN_SIDE]),
                        float(pending[OPEN_QTY]),
                        math.nan,
                        False,
                        leverage=float(pending[OPEN_LEVERAGE]),
                    )
                )
            )
        return commands

    def close_now(self, reason: int) -> PlaceOrder:
        """A market order closing the whole position (end of a backtest, a user's request)."""
        return self._market_close(reason)

    def _market_close(self, reason: int) -> PlaceOrder:
        qty = float(self.position[QTY])
        return self._place(self._exit_order("close", "market", "close", qty, math.nan, reason))

    def _exit_order(
        self, prefix: str, kind: OrderKind, purpose: OrderPurpose, qty: float, price: float,
        reason: int,
    ) -> PlaceOrder:  # fmt: skip
        """A reduce-only order against the open position."""
        side = -int(self.position[SIDE])
        return PlaceOrder(self._next_id(prefix), kind, purpose, side, qty, price, True, reason)

    def _stop_order(self) -> PlaceOrder:
        pos = self.position
        qty, price = float(pos[QTY]), float(pos[STOP])
        return self._exit_order("stop", "stop_market", "stop", qty, price, int(pos[STOP_REASON]))

    def _protective_orders(self) -> list[Command]:
        """Stop and emergency stop for the whole position, partial and final targets."""
        pos = self.position
        qty = float(pos[QTY])
        orders = [self._stop_order()]
        if pos[EMERGENCY] > 0:
            price = float(pos[EMERGENCY])
            orders.append(
                self._exit_order(
                    "emergency", "stop_market", "emergency_stop", qty, price, EMERGENCY_CLOSE
                )
            )
        if not math.isnan(pos[PARTIAL_PRICE]):
            part, price = float(pos[PARTIAL_QTY]), float(pos[PARTIAL_PRICE])
            orders.append(
                self._exit_order(
                    "partial", "limit", "partial_take_profit", part, price, PARTIAL_TAKE_PROFIT
                )
            )
        if not math.isnan(pos[TARGET]):
            price = float(pos[TARGET])
            orders.append(
                self._exit_order("target", "limit", "take_profit", qty, price, TAKE_PROFIT)
            )
        return [self._place(o) for o in orders]

    def _replace_stop(self) -> list[Command]:
        """Cancel the resting stop and place one at the moved level (trailing, break-even)."""
        commands: list[Command] = []
        for order_id, order in list(self.orders.items()):
            if order.purpose == "stop":
                del self.orders[order_id]
                commands.append(CancelOrder(order_id))
        commands.append(self._place(self._stop_order()))
        return commands

    def _on_fill(self, f: OrderFilled) -> list[Command]:
        pos = self.position
        if f.liquidation:
            if pos[SIDE] == 0:
                raise UnknownOrderError(f"liquidation {f.order_id} without an open position")
            return self._exit(f, LIQUIDATION)
        order = self.orders.pop(f.order_id, None)
        if order is None:
            raise UnknownOrderError(f"fill for unknown or already filled order {f.order_id}")
        if order.purpose == "entry":
            leverage, stop_pct, signal_ms = self.entries.pop(f.order_id)
            self._exit_fills = []
            self.account[CASH] += open_from_fill_nb(
                pos,
                self.account,
                order.side,
                f.quantity,
                f.price,
                f.fee,
                f.time_ms,
                leverage,
                stop_pct,
                signal_ms,
                self.exits,
                self.rules.brackets,
                self.rules.tick_size,
            )
            return self._protective_orders()
        return self._exit(f, order.reason)

    def _exit(self, f: OrderFilled, reason: int) -> list[Command]:
        pos = self.position
        qty = min(f.quantity, float(pos[QTY]))
        self.account[CASH] += apply_exit_nb(pos, f.price, qty, reason, f.fee, f.time_ms)
        self._exit_fills.append(ExitFill(f.time_ms, f.price, qty, EXIT_REASONS[reason], f.fee))
        if pos[QTY] > 0:
            return []
        trade = self._trade(reason)
        note_outcome_nb(self.wins, self.account, trade.pnl > 0)
        pos[SIDE] = 0.0
        resting = [i for i, o in self.orders.items() if o.purpose in PROTECTIVE]
        commands: list[Command] = [CancelOrder(order_id) for order_id in resting]
        for order_id in resting:
            del self.orders[order_id]
        commands.append(Persist("trade", trade))
        return commands

    def _trade(self, reason: int) -> Trade:
        pos = self.position
        pnl = float(pos[REALIZED] - pos[FEES] - pos[FUNDING])
        notional = float(pos[QTY_INITIAL] * pos[ENTRY_PRICE])
        return Trade(
            position_id=int(pos[POSITION_ID]),
            symbol=self.symbol,
            side=side_name(int(pos[SIDE])),
            entry_time_ms=int(pos[ENTRY_TIME]),
            entry_price=float(pos[ENTRY_PRICE]),
            exit_time_ms=self._exit_fills[-1].time_ms,
            exit_price=float(pos[EXIT_VALUE] / pos[QTY_INITIAL]),
            quantity=float(pos[QTY_INITIAL]),
            leverage=float(pos[LEVERAGE]),
            margin=notional / float(pos[LEVERAGE]),
            pnl=pnl,
            pnl_pct=pnl / notional * 100.0,
            fees=float(pos[FEES]),
            funding=float(pos[FUNDING]),
            exit_reason=EXIT_REASONS[reason],
            signal_time_ms=int(pos[SIGNAL_TIME]),
            exits=tuple(self._exit_fills),
        )

    def _on_reject(self, r: OrderRejected) -> list[Command]:
        order = self.orders.pop(r.order_id, None)
        if order is None:
            raise UnknownOrderError(f"rejection for unknown order {r.order_id}")
        if order.purpose == "entry":
            self.entries.pop(r.order_id, None)
            return [Notify(f"entry {r.order_id} rejected: {r.reason}")]
        if order.purpose in ("stop", "emergency_stop") and self.position[SIDE] != 0:
            # No position may stay open without its stop: close it now.
            return [
                Notify(f"{order.purpose} {r.order_id} rejected ({r.reason}): closing the position"),
                self._market_close(EMERGENCY_CLOSE),
            ]
        return [Notify(f"{order.purpose} {r.order_id} rejected: {r.reason}")]
