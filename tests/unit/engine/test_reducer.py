"""The portfolio reducer event by event: the order lifecycle, identity, snapshots, caps.

A small harness plays the exchange by hand, so each test shows the exact events a live
exchange could send and the commands the core answers with.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from tests.unit.engine.scenario import FIVE_MIN, RULES, T0, config, rules_for

from slt.engine.identity import CLIENT_ORDER_ID, client_order_id, parse_client_order_id
from slt.engine.messages import (
    CancelOrder,
    CandleClosed,
    CloseRequested,
    Command,
    Event,
    ModelChanged,
    Notify,
    OpenVirtualPosition,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    Persist,
    PlaceOrder,
)
from slt.engine.reducer import Reducer
from slt.engine.state import PortfolioState, SnapshotError
from slt.errors import IntegrityError, SltError
from slt.runtime.trading_config import TradingConfig

RUN = "test0001"


class Harness:
    """A reducer, its state, and the exchange's side played by hand."""

    def __init__(self, cfg: TradingConfig | None = None, symbols: tuple[str, ...] = ("TESTUSDT",)):
        self.reducer = Reducer((cfg or config()).engine(), [rules_for(s) for s in symbols])
        self.state = self.reducer.new_state(RUN)
        self.trade_id = 0
        self.log: list[Command] = []

    def send(self, event: Event) -> list[Command]:
        self.state, commands = self.reducer.step(self.state, event)
        self.log += commands
        return commands

    def candle(
        self, k: int, close: float = 100.0, direction: int = 0, symbol: str = "TESTUSDT",
        high: float | None = None, low: float | None = None,
    ) -> list[Command]:  # fmt: skip
        t = T0 + k * FIVE_MIN
        hi = close if high is None else high
        lo = close if low is None else low
        return self.send(
            CandleClosed(symbol, t, t + FIVE_MIN, close, hi, lo, close, direction, 0.75, 1.0)
        )

    def accept(self, commands: list[Command]) -> list[Command]:
        """The exchange takes every order placed: submitted, then accepted."""
        out: list[Command] = []
        for c in commands:
            if isinstance(c, PlaceOrder):
                out += self.send(OrderSubmitted(c.client_order_id, c.symbol))
                out += self.send(OrderAccepted(c.client_order_id, c.symbol))
        return out

    def fill(
        self, order: PlaceOrder, price: float, qty: float | None = None, status: str = "filled",
        k: int = 1, trade_id: int | None = None,
    ) -> list[Command]:  # fmt: skip
        if trade_id is None:
            self.trade_id += 1
            trade_id = self.trade_id
        quantity = order.quantity if qty is None else qty
        fee = price * quantity * 0.0005
        event = OrderFilled(
            order.client_order_id,
            order.symbol,
            trade_id,
            T0 + k * FIVE_MIN,
            price,
            quantity,
            fee,
            status,
        )  # type: ignore[arg-type]
        return self.send(event)

    def open_long(self, price: float = 100.0) -> dict[str, PlaceOrder]:
        """Signal, entry accepted and filled, protective orders accepted; by purpose."""
        entry = _one(self.candle(0, 100.0, 1), "entry")
        self.accept([entry])
        placed = self.fill(entry, price)
        self.accept(placed)
        return {c.purpose: c for c in placed if isinstance(c, PlaceOrder)}


def _one(commands: list[Command], purpose: str) -> PlaceOrder:
    found = [c for c in commands if isinstance(c, PlaceOrder) and c.purpose == purpose]
    assert len(found) == 1, commands
    return found[0]


def _notices(commands: list[Command]) -> list[Notify]:
    return [c for c in commands if isinstance(c, Notify)]


def test_the_same_events_give_the_same_commands_and_an_equal_state() -> None:
    def session() -> Harness:
        h = Harness()
        h.send(ModelChanged("v1"))
        h.open_long(100.0)
        h.candle(1, 101.0)
        return h

    a, b = session(), session()
    assert a.log == b.log and len(a.log) >= 5
    assert a.state == b.state
    a.candle(2, 102.0, high=103.0)
    assert a.state != b.state


def test_a_snapshot_restores_an_equal_state_that_goes_on_identically() -> None:
    h = Harness(config(exits={"trailing_activation_pct": 0.5, "trailing_distance_pct": 0.3}))
    h.open_long()
    restored = PortfolioState.restore(h.state.snapshot())
    assert restored == h.state
    twin = Harness(config(exits={"trailing_activation_pct": 0.5, "trailing_distance_pct": 0.3}))
    twin.state = restored
    assert h.candle(1, 101.0, high=102.0) == twin.candle(1, 101.0, high=102.0)
    assert twin.state == h.state


def test_a_corrupt_snapshot_is_refused_with_a_clear_error() -> None:
    data = Harness().state.snapshot()
    with pytest.raises(SnapshotError, match="unreadable portfolio snapshot"):
        PortfolioState.restore(data[: len(data) // 2])


def test_an_entry_is_protected_once_filled_at_percentages_of_the_fill_price() -> None:
    h = Harness()
    orders = h.open_long(200.0)
    assert orders["stop"].price == pytest.approx(198.0) and orders["stop"].side == -1
    assert orders["stop"].close_position and orders["stop"].reduce_only
    assert orders["take_profit"].price == pytest.approx(204.0)
    assert orders["take_profit"].kind == "limit" and orders["take_profit"].reduce_only


def test_a_market_entry_filled_in_two_trades_opens_one_position_at_the_average_price() -> None:
    h = Harness()
    entry = _one(h.candle(0, 100.0, 1), "entry")
    h.accept([entry])
    half = entry.quantity / 2
    assert h.fill(entry, 100.0, half, "partially_filled") == []  # protected once it is done
    placed = h.fill(entry, 102.0, entry.quantity - half)
    position = h.state.book.positions[0]
    assert position["qty"] == pytest.approx(entry.quantity)
    assert position["entry_price"] == pytest.approx(101.0)
    assert _one(placed, "stop").price == pytest.approx(99.99)  # 1% below the average, on tick


def test_a_duplicate_fill_is_ignored_with_a_warning_and_never_applied_twice() -> None:
    h = Harness()
    entry = _one(h.candle(0, 100.0, 1), "entry")
    h.accept([entry])
    h.fill(entry, 100.0, entry.quantity / 2, "partially_filled", trade_id=7)
    before = h.state.copy()
    again = h.fill(entry, 100.0, entry.quantity / 2, "partially_filled", trade_id=7)
    assert [n.level for n in _notices(again)] == ["warning"]
    assert "duplicate fill" in _notices(again)[0].text
    assert h.state.book.positions[0]["qty"] == before.book.positions[0]["qty"]
    assert h.state.wallet == before.wallet


def test_a_fill_for_an_order_never_placed_is_an_integrity_error_and_changes_nothing() -> None:
    h = Harness()
    h.open_long()
    before = h.state.copy()
    ghost = client_order_id(RUN, "TESTUSDT", 999)
    with pytest.raises(IntegrityError, match="never placed") as caught:
        h.send(OrderFilled(ghost, "TESTUSDT", 99, T0, 100.0, 1.0, 0.05))
    assert not isinstance(caught.value, SltError)  # not the CLI's "bad input, exit 2" path
    assert h.state == before


def test_an_illegal_transition_is_an_integrity_error_and_changes_nothing() -> None:
    h = Harness()
    orders = h.open_long()
    target = orders["take_profit"]
    h.fill(target, 102.0)  # the target closes the position: FILLED
    before = h.state.copy()
    with pytest.raises(IntegrityError, match=r"illegal order transition.*filled"):
        h.send(OrderAccepted(target.client_order_id, "TESTUSDT"))
    assert h.state == before


def test_a_moved_stop_is_placed_before_the_old_one_is_cancelled() -> None:
    h = Harness(config(exits={"trailing_activation_pct": 0.5, "trailing_distance_pct": 0.3}))
    old = h.open_long()["stop"]
    moved = h.candle(1, 101.0, high=102.0)  # best 102: trailing stop 102 x 0.997 = 101.69
    new = _one(moved, "stop")
    assert new.price == pytest.approx(101.69) and new.reason == "trailing_stop"
    assert not any(isinstance(c, CancelOrder) for c in moved)  # the old one stays for now
    answered = h.accept([new])
    assert answered == [CancelOrder(old.client_order_id, "TESTUSDT")]


def test_a_fill_of_the_old_stop_during_its_replacement_closes_and_cancels_the_new_one() -> None:
    h = Harness(config(exits={"trailing_activation_pct": 0.5, "trailing_distance_pct": 0.3}))
    orders = h.open_long()
    new = _one(h.candle(1, 101.0, high=102.0), "stop")
    h.send(OrderSubmitted(new.client_order_id, "TESTUSDT"))
    closed = h.fill(orders["stop"], 99.0)  # the old stop fired before the new one was live
    trade = next(c.trade for c in closed if isinstance(c, Persist))
    assert trade.exit_reason == "stop_loss"
    cancelled = {c.client_order_id for c in closed if isinstance(c, CancelOrder)}
    assert new.client_order_id in cancelled and orders["take_profit"].client_order_id in cancelled
    assert h.state.book.positions[0]["side"] == 0


def test_a_rejected_replacement_stop_keeps_the_old_one_and_its_level() -> None:
    h = Harness(config(exits={"trailing_activation_pct": 0.5, "trailing_distance_pct": 0.3}))
    old = h.open_long()["stop"]
    new = _one(h.candle(1, 101.0, high=102.0), "stop")
    h.send(OrderSubmitted(new.client_order_id, "TESTUSDT"))
    answer = h.send(
        OrderRejected(new.client_order_id, "TESTUSDT", "order would immediately trigger")
    )
    assert not any(isinstance(c, PlaceOrder) for c in answer)
    assert "previous stop stays" in _notices(answer)[0].text
    assert h.state.book.positions[0]["stop"] == pytest.approx(old.price)


def test_a_rejected_first_stop_closes_the_position_at_market_at_once() -> None:
    h = Harness()
    entry = _one(h.candle(0, 100.0, 1), "entry")
    h.accept([entry])
    placed = h.fill(entry, 100.0)
    stop = _one(placed, "stop")
    h.send(OrderSubmitted(stop.client_order_id, "TESTUSDT"))
    answer = h.send(
        OrderRejected(stop.client_order_id, "TESTUSDT", "order would immediately trigger")
    )
    close = _one(answer, "close")
    assert close.kind == "market" and close.reduce_only and close.reason == "emergency_close"


def test_a_late_take_profit_fill_after_the_close_is_taken_on_and_flattened() -> None:
    h = Harness()
    orders = h.open_long()
    closed = h.fill(orders["stop"], 99.0)
    assert any(isinstance(c, Persist) for c in closed)
    # The target had filled at the exchange before its cancel arrived; the fill comes late.
    late = h.fill(orders["take_profit"], 102.0, k=2)
    assert "did not expect" in _notices(late)[0].text
    flatten = _one(late, "close")
    assert flatten.side == 1  # the target sold what was no longer held: buy it back
    pnl = sum(c.trade.pnl for c in h.log if isinstance(c, Persist))
    book = h.state.book
    open_part = float(book.positions[0]["realized"] - book.positions[0]["fees"])
    assert h.state.wallet == pytest.approx(10_000.0 + pnl + open_part)


def test_a_cancel_refused_because_the_order_filled_first_leaves_it_filled() -> None:
    h = Harness()
    orders = h.open_long()
    closed = h.fill(orders["take_profit"], 102.0)  # target filled: the stop is cancelled
    stop_cancel = [c for c in closed if isinstance(c, CancelOrder)]
    assert stop_cancel == [CancelOrder(orders["stop"].client_order_id, "TESTUSDT")]
    answer = h.send(
        OrderCancelRejected(orders["stop"].client_order_id, "TESTUSDT", "unknown order")
    )
    assert answer == []
    assert h.send(OrderCanceled(orders["stop"].client_order_id, "TESTUSDT")) == []


def test_a_reversal_sends_its_entry_only_once_the_close_has_filled() -> None:
    h = Harness()
    h.open_long()
    reversing = h.candle(1, 100.5, -1)
    close = _one(reversing, "close")
    assert close.reason == "opposite_signal"
    assert not any(isinstance(c, PlaceOrder) and c.purpose == "entry" for c in reversing)
    h.accept([close])
    after_close = h.fill(close, 100.4, k=2)
    entry = _one(after_close, "entry")
    assert entry.side == -1


def test_close_requested_closes_at_market_and_drops_a_held_reversal() -> None:
    h = Harness()
    h.open_long()
    close = _one(h.candle(1, 100.5, -1), "close")
    assert h.send(CloseRequested("TESTUSDT", "end_of_data")) == []  # a close is already out
    h.accept([close])
    after = h.fill(close, 100.4, k=2)
    assert not any(isinstance(c, PlaceOrder) and c.purpose == "entry" for c in after)


def test_client_order_ids_are_namespaced_valid_on_binance_and_unique_across_restarts() -> None:
    h = Harness(symbols=("TESTUSDT", "1000SHIBUSDT"))
    ids = [c.client_order_id for c in h.open_long().values()]
    restored = Harness(symbols=("TESTUSDT", "1000SHIBUSDT"))
    restored.state = PortfolioState.restore(h.state.snapshot())
    restored.candle(5, 100.0, symbol="1000SHIBUSDT", direction=1)
    later = [c.client_order_id for c in restored.log if isinstance(c, PlaceOrder)]
    other_run = client_order_id("run00002", "TESTUSDT", 1)
    every = ids + later + [other_run, client_order_id(RUN, "A" * 40 + "USDT", 10**9)]
    assert len(set(every)) == len(every)
    assert all(CLIENT_ORDER_ID.match(i) for i in every)
    assert parse_client_order_id(later[0], RUN, ("TESTUSDT", "1000SHIBUSDT"))[0] == 1  # type: ignore[index]
    assert parse_client_order_id(other_run, RUN, ("TESTUSDT",)) is None


def test_every_signal_opens_a_virtual_position_stamped_with_the_model_in_force() -> None:
    h = Harness()
    h.send(ModelChanged("2026-11-21.1"))
    first = h.candle(0, 100.0, 1)
    declined = h.send(CandleClosed("TESTUSDT", T0 + FIVE_MIN, T0 + 2 * FIVE_MIN, 100, 100, 100,
                                   100, -1, 0.9, 1.0, gate=False))  # fmt: skip
    virtual = [c for c in first + declined if isinstance(c, OpenVirtualPosition)]
    assert [v.model_version for v in virtual] == ["2026-11-21.1"] * 2
    assert not any(isinstance(c, PlaceOrder) for c in declined)  # the model said no


def test_the_account_caps_apply_across_symbols() -> None:
    cfg = config(risk={"risk_pct": 5.0, "max_position_pct": 10.0, "max_total_pct": 15.0})
    h = Harness(cfg, symbols=("AAAUSDT", "BBBUSDT", "CCCUSDT"))
    first = _one(h.candle(0, 100.0, 1, symbol="AAAUSDT"), "entry")
    second = _one(h.candle(0, 100.0, 1, symbol="BBBUSDT"), "entry")
    third = h.candle(0, 100.0, 1, symbol="CCCUSDT")
    # 10% + 5% of 10,000 reserved at 1x: the third finds no room left under 15%.
    assert first.quantity * 100.0 == pytest.approx(1_000.0)
    assert second.quantity * 100.0 == pytest.approx(500.0)
    assert not any(isinstance(c, PlaceOrder) and c.purpose == "entry" for c in third)


def test_max_open_positions_counts_every_symbol_of_the_account() -> None:
    h = Harness(config(risk={"max_open_positions": 1}), symbols=("AAAUSDT", "BBBUSDT"))
    assert _one(h.candle(0, 100.0, 1, symbol="AAAUSDT"), "entry")
    assert not any(isinstance(c, PlaceOrder) for c in h.candle(0, 100.0, 1, symbol="BBBUSDT"))


def test_an_event_for_a_symbol_outside_the_portfolio_is_refused() -> None:
    h = Harness()
    with pytest.raises(SltError, match="not one of this portfolio's symbols"):
        h.candle(0, 100.0, 1, symbol="ETHUSDT")


def test_nan_stop_means_a_virtual_position_is_not_opened_and_nothing_trades() -> None:
    h = Harness()
    t = T0
    commands = h.send(CandleClosed("TESTUSDT", t, t + FIVE_MIN, 100, 100, 100, 100, 1, 0.75,
                                   math.nan))  # fmt: skip
    assert commands == []
    assert np.all(h.state.book.orders["status"] == 0)
    assert RULES.symbol == "TESTUSDT"
