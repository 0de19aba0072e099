"""What the core does when a shell tells it what the exchange holds (``Reconciled``)."""

from __future__ import annotations

import pytest
from tests.unit.engine.scenario import T0, config
from tests.unit.engine.test_reducer import RUN, Harness, _notices, _one

from slt.engine.identity import client_order_id
from slt.engine.messages import (
    CancelOrder,
    ExchangeOrder,
    ExchangePosition,
    OrderCanceled,
    Persist,
    PlaceOrder,
    Reconciled,
)
from slt.errors import IntegrityError


def _as_listed(order: PlaceOrder) -> ExchangeOrder:
    return ExchangeOrder(order.client_order_id, order.symbol, order.kind, order.side,
                         order.quantity, order.price, order.reduce_only)  # fmt: skip


def test_a_position_whose_stop_is_gone_from_the_exchange_gets_a_new_stop() -> None:
    h = Harness()
    orders = h.open_long()
    held = ExchangePosition("TESTUSDT", 1, orders["stop"].quantity, 100.0)
    commands = h.send(Reconciled(T0, h.state.wallet, (held,), (_as_listed(orders["take_profit"]),)))
    stop = _one(commands, "stop")
    assert stop.price == pytest.approx(orders["stop"].price)
    assert stop.client_order_id != orders["stop"].client_order_id  # a new id, never reused
    assert any("no stop" in n.text for n in _notices(commands))


def test_an_order_of_this_run_the_core_does_not_expect_is_cancelled() -> None:
    h = Harness()
    orders = h.open_long()
    listed = tuple(_as_listed(o) for o in orders.values())
    orphan = ExchangeOrder(client_order_id(RUN, "TESTUSDT", 77), "TESTUSDT", "limit", -1, 1.0,
                           150.0, True)  # fmt: skip
    held = ExchangePosition("TESTUSDT", 1, orders["stop"].quantity, 100.0)
    commands = h.send(Reconciled(T0, h.state.wallet, (held,), (*listed, orphan)))
    assert CancelOrder(orphan.client_order_id, "TESTUSDT") in commands
    assert not any(isinstance(c, PlaceOrder) for c in commands)


def test_an_order_placed_by_hand_is_left_alone_and_reported() -> None:
    h = Harness()
    mine = ExchangeOrder("web_8f3k2", "TESTUSDT", "limit", 1, 1.0, 90.0, False)
    commands = h.send(Reconciled(T0, h.state.wallet, (), (mine,)))
    assert not any(isinstance(c, CancelOrder) for c in commands)
    assert "not placed by this run" in _notices(commands)[0].text


@pytest.mark.parametrize("policy", ["adopt", "flatten"])
def test_a_position_the_bot_did_not_open_is_protected_and_adopted_or_flattened(
    policy: str,
) -> None:
    h = Harness(config(reconcile={"unknown_position": policy}))
    unknown = ExchangePosition("TESTUSDT", -1, 2.0, 100.0)
    commands = h.send(Reconciled(T0, h.state.wallet, (unknown,), ()))
    stop = _one(commands, "stop")
    assert stop.side == 1 and stop.price == pytest.approx(101.0)  # the configured 1 % above
    closes = [c for c in commands if isinstance(c, PlaceOrder) and c.purpose == "close"]
    assert len(closes) == (0 if policy == "adopt" else 1)
    position = h.state.book.positions[0]
    assert (position["side"], position["qty"]) == (-1, 2.0)


def test_a_position_the_exchange_no_longer_holds_is_closed_in_the_books_at_the_last_price() -> None:
    h = Harness()
    orders = h.open_long()
    h.candle(1, 99.5)
    commands = h.send(Reconciled(T0, h.state.wallet, (), ()))
    trade = next(c.trade for c in commands if isinstance(c, Persist))
    assert trade.exit_reason == "reconciled" and trade.exit_price == pytest.approx(99.5)
    assert h.state.book.positions[0]["side"] == 0
    assert orders  # its orders were marked gone, nothing left to cancel at the exchange
    assert not any(isinstance(c, CancelOrder) for c in commands)


def test_a_smaller_position_at_the_exchange_is_brought_in_line() -> None:
    h = Harness()
    orders = h.open_long()
    quantity = orders["stop"].quantity
    held = ExchangePosition("TESTUSDT", 1, quantity / 2, 100.0)
    listed = tuple(_as_listed(o) for o in orders.values())
    h.candle(1, 100.0)
    commands = h.send(Reconciled(T0, h.state.wallet, (held,), listed))
    assert h.state.book.positions[0]["qty"] == pytest.approx(quantity / 2)
    assert any("brought in line" in n.text for n in _notices(commands))


def test_the_wallet_takes_the_exchange_balance() -> None:
    h = Harness()
    commands = h.send(Reconciled(T0, 9_876.5, (), ()))
    assert h.state.wallet == 9_876.5
    assert "wallet set" in _notices(commands)[0].text


def test_a_fill_read_after_a_reconciliation_closed_its_order_is_noted_not_a_fault() -> None:
    """The exchange's snapshot came before the fill's event (Binance had "forgotten" the
    order for a moment): the reconciliation took the position as the exchange held it, and
    the late fill changes nothing; the same fill on an order cancelled by the exchange is
    still an integrity fault."""
    h = Harness()
    orders = h.open_long()
    take_profit = orders["take_profit"]
    held = ExchangePosition("TESTUSDT", 1, orders["stop"].quantity, 100.0)
    h.send(Reconciled(T0, h.state.wallet, (held,), (_as_listed(orders["stop"]),)))
    before = h.state.book.positions[0][["side", "qty"]].tolist(), h.state.wallet
    commands = h.fill(take_profit, 102.0)
    assert "after a reconciliation had closed it" in _notices(commands)[0].text
    assert (h.state.book.positions[0][["side", "qty"]].tolist(), h.state.wallet) == before

    h = Harness()
    orders = h.open_long()
    h.send(OrderCanceled(orders["take_profit"].client_order_id, "TESTUSDT"))
    with pytest.raises(IntegrityError, match="illegal order transition"):
        h.fill(orders["take_profit"], 102.0)
