"""Invariants over random markets, signals and configurations (hypothesis).

The event-driven core and simulated broker are fed candle by candle; after every event the
account must balance, an open position must have its stop resting at the broker, fees must
not be negative, and no entry may precede the close of the candle that signalled it. The
compiled backtest loop must then produce exactly the same trades and equity.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.engine.scenario import FIVE_MIN, RULES, T0, candles, funding_rates

from slt.domain.trading.position_nb import FEES, FUNDING, REALIZED, SIDE
from slt.engine.backtest import MarketData, run_backtest
from slt.engine.core import DecisionCore
from slt.engine.event_runner import run_event_driven
from slt.engine.messages import Command, Event, OrderFilled, Persist
from slt.engine.sim_broker import SimulatedBroker
from slt.engine.trading_config import TradingConfig


@st.composite
def markets(draw: st.DrawFn) -> tuple[list[tuple[float, float, float, float]], list[int]]:
    n = draw(st.integers(30, 160))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    vol = draw(st.sampled_from([0.002, 0.006, 0.02]))
    jumps = rng.random(n) < draw(st.sampled_from([0.0, 0.03, 0.1]))
    ret = rng.normal(0, vol, n) + jumps * rng.normal(0, 6 * vol, n)
    close = 100 * np.exp(np.cumsum(ret))
    open_ = np.concatenate(
        ([100.0], close[:-1] * np.exp(jumps[:-1] * rng.normal(0, 3 * vol, n - 1)))
    )
    wick = np.abs(rng.normal(0, vol, (2, n)))
    high = np.maximum(open_, close) * (1 + wick[0])
    low = np.minimum(open_, close) * (1 - wick[1])
    rows = list(zip(open_, high, low, close, strict=True))
    p = draw(st.sampled_from([0.05, 0.2, 0.5]))
    signals = [int(x) for x in rng.choice([-1, 0, 1], size=n, p=[p / 2, 1 - p, p / 2])]
    return rows, signals


@st.composite
def configs(draw: st.DrawFn) -> TradingConfig:
    lev_max = draw(st.sampled_from([1, 3, 10, 20]))
    exits: dict[str, object] = {
        "stop_loss_pct": draw(st.sampled_from([0.5, 1.0, 2.0])),
        "take_profit_pct": draw(st.sampled_from([0.0, 1.0, 3.0])),
        "max_holding_minutes": draw(st.sampled_from([0, 30, 120])),
        "reverse_on_opposite": draw(st.booleans()),
        "exit_on_opposite": draw(st.booleans()),
    }
    if draw(st.booleans()):
        exits |= {"trailing_activation_pct": 0.5, "trailing_distance_pct": 0.4}
    if draw(st.booleans()) and exits["take_profit_pct"] != 1.0:
        exits |= {"partial_take_profit_pct": 0.6, "partial_fraction": 0.5}
    if draw(st.booleans()):
        exits |= {"break_even_trigger_pct": 0.4}
    return TradingConfig.model_validate(
        {
            "risk": {
                "sizing": draw(st.sampled_from(["fixed", "kelly", "atr"])),
                "leverage_min": 1,
                "leverage_max": lev_max,
                "win_rate_min_trades": 2,
            },
            "exits": exits,
            "costs": {
                "slippage_bps": draw(st.sampled_from([0.0, 2.0])),
                "slippage_range_fraction": draw(st.sampled_from([0.0, 0.1])),
                "funding": True,
            },
        }
    )


def _data(rows: list[tuple[float, float, float, float]]) -> MarketData:
    bars = candles(rows)
    hours = [T0 + 8 * 3_600_000 * k for k in range(1, 4)]
    funding = funding_rates(hours, [1e-4, -3e-4, 5e-4])
    return MarketData(candles=bars, start_ms=T0, rules=RULES, funding=funding)


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
Case = tuple[MarketData, list[int], TradingConfig, float]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A market, its signals, a configuration and the signals' raw score."""
    rows, signals = draw(markets())
    return _data(rows), signals, draw(configs()), draw(st.sampled_from([0.3, 0.5, 1.0]))


@SETTINGS
@given(case=cases())
def test_account_balances_and_every_open_position_has_a_resting_stop(case: Case) -> None:
    data, signals, config, score = case
    direction = np.array(signals, dtype=np.int8)
    closed_pnl = 0.0

    def check(
        event: Event, commands: list[Command], core: DecisionCore, broker: SimulatedBroker
    ) -> None:
        nonlocal closed_pnl
        if isinstance(event, OrderFilled):
            assert event.fee >= 0
        closed_pnl += sum(c.trade.pnl for c in commands if isinstance(c, Persist) and c.trade)
        pos = core.position
        open_part = pos[REALIZED] - pos[FEES] - pos[FUNDING] if pos[SIDE] != 0 else 0.0
        assert core.cash == pytest.approx(config.initial_equity + closed_pnl + open_part, abs=1e-6)
        if pos[SIDE] != 0:
            stops = [o for o in core.orders.values() if o.purpose == "stop"]
            assert len(stops) == 1 and math.isfinite(stops[0].price)
            assert stops[0].order_id in broker.orders

    scores = np.where(direction != 0, score, 0.0)
    trades, _, _ = run_event_driven(data, direction, scores, config, observe=check)
    for trade in trades:
        assert trade.fees >= 0
        assert trade.entry_time_ms >= trade.signal_time_ms + FIVE_MIN


@SETTINGS
@given(case=cases())
def test_event_driven_engine_and_compiled_loop_give_the_same_trades_and_equity(case: Case) -> None:
    data, signals, config, score = case
    direction = np.array(signals, dtype=np.int8)
    scores = np.where(direction != 0, score, 0.0)
    fast, _ = run_backtest(data, direction, scores, config)
    trades, equity, _ = run_event_driven(data, direction, scores, config)
    assert [t._asdict() for t in trades] == [t._asdict() for t in fast.trades]
    np.testing.assert_array_equal(equity, fast.equity)
