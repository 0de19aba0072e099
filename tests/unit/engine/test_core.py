"""The decision core as an event reducer: determinism, duplicates, rejections, model versions."""

from __future__ import annotations

import pytest
from tests.unit.engine.scenario import FIVE_MIN, RULES, T0, config

from slt.domain.trading.enums import EMERGENCY_CLOSE
from slt.domain.trading.symbol_rules import symbol_rules
from slt.engine.core import DecisionCore, UnknownOrderError
from slt.engine.messages import (
    CandleClosed,
    Command,
    Event,
    ModelChanged,
    OpenVirtualPosition,
    OrderFilled,
    OrderRejected,
    PlaceOrder,
)


def _signal(direction: int, k: int = 0, close: float = 100.0) -> CandleClosed:
    t = T0 + k * FIVE_MIN
    return CandleClosed(t, t + FIVE_MIN, close, close, close, close, direction, 0.75)


def _entry_fill(core: DecisionCore, commands: list[Command], price: float = 100.0) -> list[Command]:
    entry = next(c for c in commands if isinstance(c, PlaceOrder) and c.purpose == "entry")
    return core.apply(OrderFilled(entry.order_id, T0 + FIVE_MIN, price, entry.quantity, 0.5))


def test_the_same_events_give_the_same_commands_every_time() -> None:
    def replay() -> list[Command]:
        core = DecisionCore(config(), RULES, "TESTUSDT")
        events: list[Event] = [ModelChanged("v1"), _signal(1)]
        out: list[Command] = []
        for event in events:
            out += core.apply(event)
        return out + _entry_fill(core, out)

    assert replay() == replay()


def test_an_entry_fill_places_a_stop_and_a_target_at_percentages_of_the_fill_price() -> None:
    core = DecisionCore(config(), RULES, "TESTUSDT")
    placed = _entry_fill(core, core.apply(_signal(1)), price=200.0)
    orders = {c.purpose: c for c in placed if isinstance(c, PlaceOrder)}
    assert orders["stop"].price == pytest.approx(198.0) and orders["stop"].side == -1
    assert orders["take_profit"].price == pytest.approx(204.0) and orders["take_profit"].reduce_only


def test_a_second_fill_for_the_same_order_is_refused() -> None:
    core = DecisionCore(config(), RULES, "TESTUSDT")
    commands = core.apply(_signal(1))
    entry = next(c for c in commands if isinstance(c, PlaceOrder))
    fill = OrderFilled(entry.order_id, T0 + FIVE_MIN, 100.0, entry.quantity, 0.5)
    core.apply(fill)
    with pytest.raises(UnknownOrderError, match=entry.order_id):
        core.apply(fill)


def test_a_rejected_stop_closes_the_position_at_market_at_once() -> None:
    core = DecisionCore(config(), RULES, "TESTUSDT")
    placed = _entry_fill(core, core.apply(_signal(1)))
    stop = next(c for c in placed if isinstance(c, PlaceOrder) and c.purpose == "stop")
    commands = core.apply(OrderRejected(stop.order_id, "would immediately trigger"))
    close = [c for c in commands if isinstance(c, PlaceOrder)]
    assert len(close) == 1 and close[0].kind == "market" and close[0].reduce_only
    assert close[0].reason == EMERGENCY_CLOSE


def test_every_signal_opens_a_virtual_position_with_the_current_model_version() -> None:
    core = DecisionCore(config(), RULES, "TESTUSDT")
    core.apply(ModelChanged("2026-11-21.1"))
    first = core.apply(_signal(1))
    _entry_fill(core, first)
    second = core.apply(_signal(1, k=1))  # already long: traded no further, still learned from
    virtual = [c for c in first + second if isinstance(c, OpenVirtualPosition)]
    assert [v.model_version for v in virtual] == ["2026-11-21.1"] * 2
    assert not any(isinstance(c, PlaceOrder) and c.purpose == "entry" for c in second)


def test_confidence_at_or_below_one_half_skips_the_trade_under_kelly_sizing() -> None:
    core = DecisionCore(config(risk={"sizing": "kelly"}), RULES, "TESTUSDT")
    t = T0
    commands = core.apply(CandleClosed(t, t + FIVE_MIN, 100, 100, 100, 100, 1, 0.5))
    assert not any(isinstance(c, PlaceOrder) for c in commands)


def test_protective_order_prices_lie_on_the_symbols_tick_grid() -> None:
    rules = symbol_rules("BTCUSDT")  # tick 0.1
    core = DecisionCore(config(exits={"partial_take_profit_pct": 1.3}), rules, "BTCUSDT")
    opened = core.apply(_signal(1, close=30_000.0))
    placed = _entry_fill(core, opened, price=30_001.37)
    prices = [c.price for c in placed if isinstance(c, PlaceOrder)]
    assert len(prices) >= 3
    for price in prices:
        assert abs(price / 0.1 - round(price / 0.1)) < 1e-6, price
    stop = next(c for c in placed if isinstance(c, PlaceOrder) and c.purpose == "stop")
    assert stop.price == pytest.approx(29_701.4)  # 30,001.37 x 0.99 = 29,701.3563
