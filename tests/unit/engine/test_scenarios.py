"""Hand-computed backtests: every number below is worked out in the comments."""

from __future__ import annotations

import pytest
from tests.unit.engine.scenario import FIVE_MIN, HOUR, MMR, T0, candles, config, funding_rates, run


def test_long_that_hits_its_target_earns_the_target_minus_fees() -> None:
    # Signal at bar 0's close (100); entry at bar 1's open 100: qty = 1,000 / 100 = 10.
    # Target +2% = 102 is reached in bar 2 (high 102.5) and fills at 102 as a maker.
    bars = candles([(100, 100, 100, 100), (100, 101, 99.5, 100.5), (100.5, 102.5, 100.2, 102)])
    result = run(bars, {0: 1}, config())
    (trade,) = result.trades
    assert trade.side == "long"
    assert trade.entry_time_ms == T0 + FIVE_MIN
    assert trade.entry_price == 100.0
    assert trade.quantity == pytest.approx(10.0)
    assert trade.exit_price == 102.0
    assert trade.exit_reason == "take_profit"
    # fees: entry taker 1,000 x 0.05% = 0.5; exit maker 1,020 x 0.02% = 0.204
    assert trade.fees == pytest.approx(0.704)
    assert trade.pnl == pytest.approx(20.0 - 0.704)
    assert trade.pnl_pct == pytest.approx((20.0 - 0.704) / 1_000 * 100)
    assert result.equity[-1] == pytest.approx(10_000 + 20.0 - 0.704)


def test_short_that_gaps_through_its_liquidation_price_loses_its_whole_margin() -> None:
    # 20x short at 100 with a 2% stop: risk 1% of 10,000 = 100 -> notional 100 / 2% = 5,000,
    # qty 50, margin 5,000 / 20 = 250. LP = 100 x (1 + 1/20) / (1 + 0.004) = 104.5817.
    # Bar 2 opens at 106, beyond both the stop (102) and the liquidation price.
    cfg = config(
        risk={"leverage_min": 20, "leverage_max": 20},
        exits={"stop_loss_pct": 2.0, "take_profit_pct": 4.0},
    )
    bars = candles([(100, 100, 100, 100), (100, 100.5, 99.5, 100), (106, 107, 105.5, 106.5)])
    result = run(bars, {0: -1}, cfg)
    (trade,) = result.trades
    assert trade.side == "short"
    assert trade.leverage == 20.0
    assert trade.quantity == pytest.approx(50.0)
    assert trade.margin == pytest.approx(250.0)
    assert trade.exit_reason == "liquidation"
    assert trade.exit_price == pytest.approx(100 * (1 + 1 / 20) / (1 + MMR))
    # loss = margin 250 + entry fee 5,000 x 0.05% = 2.5
    assert trade.pnl == pytest.approx(-252.5)


def test_funding_is_charged_at_each_of_three_funding_times_while_held() -> None:
    # 1h candles, long entered at 01:00 at 100 (qty 10), held through 08:00, 16:00 and 00:00.
    # Funding uses the open of the candle at the funding time (no mark file):
    # 08:00 open 101, rate +0.01% -> pays 10 x 101 x 0.0001 = 0.101
    # 16:00 open 102, rate -0.02% -> receives 10 x 102 x 0.0002 = 0.204
    # 00:00 open 103, rate +0.03% -> pays 10 x 103 x 0.0003 = 0.309
    rows = [(100.0, 100.0, 100.0, 100.0)] * 8 + [(101.0, 101.0, 101.0, 101.0)] * 8
    rows += [(102.0, 102.0, 102.0, 102.0)] * 8 + [(103.0, 103.0, 103.0, 103.0)] * 2
    bars = candles(rows, step_ms=HOUR)
    funding = funding_rates([T0 + 8 * HOUR, T0 + 16 * HOUR, T0 + 24 * HOUR], [1e-4, -2e-4, 3e-4])
    cfg = config(
        exits={"stop_loss_pct": 5.0, "take_profit_pct": 10.0, "max_holding_minutes": 0},
        costs={"funding": True},
    )
    result = run(bars, {0: 1}, cfg, funding=funding)
    (trade,) = result.trades
    assert trade.exit_reason == "end_of_data"
    assert trade.funding == pytest.approx(0.101 - 0.204 + 0.309)
    # price PnL 10 x (103 - 100) = 30; fees 0.5 entry + 10 x 103 x 0.05% = 0.515 exit
    assert trade.pnl == pytest.approx(30.0 - 1.015 - 0.206)


def test_partial_take_profit_then_trailing_stop_closes_the_rest_at_the_trailed_level() -> None:
    # Long 10 at 100. Partial +1% (101) sells 5 as a maker. Trailing activates at +1% with a
    # 0.5% distance from the best price: bar 2 reaches 102, so from bar 3 the stop is
    # 102 x 0.995 = 101.49; bar 3 falls to 101.2 and the other 5 close at 101.49 (taker).
    cfg = config(
        exits={
            "stop_loss_pct": 1.0,
            "take_profit_pct": 5.0,
            "partial_take_profit_pct": 1.0,
            "partial_fraction": 0.5,
            "trailing_activation_pct": 1.0,
            "trailing_distance_pct": 0.5,
        }
    )
    bars = candles(
        [
            (100, 100, 100, 100),
            (100, 100.4, 99.8, 100.2),
            (100.2, 102, 100.1, 101.8),
            (101.8, 101.9, 101.2, 101.3),
        ]
    )
    result = run(bars, {0: 1}, cfg)
    (trade,) = result.trades
    reasons = [(e.reason, e.price, e.quantity) for e in trade.exits]
    assert reasons == [
        ("partial_take_profit", 101.0, pytest.approx(5.0)),
        ("trailing_stop", pytest.approx(101.49), pytest.approx(5.0)),
    ]
    assert trade.exit_reason == "trailing_stop"
    # fees: 0.5 entry + 505 x 0.02% = 0.101 + 507.45 x 0.05% = 0.253725
    assert trade.fees == pytest.approx(0.5 + 0.101 + 0.253725)
    assert trade.pnl == pytest.approx(5 * 1.0 + 5 * 1.49 - trade.fees)
    assert trade.exit_price == pytest.approx((505 + 507.45) / 10)


def test_time_stop_closes_after_two_hours_at_the_next_open() -> None:
    # Entry at bar 1's open (00:05). After 24 five-minute bars the close at 02:05 reaches the
    # 2-hour limit; the market close fills at bar 25's open, 02:05, price 100.3.
    rows = [(100.0, 100.2, 99.9, 100.0)] * 25 + [(100.3, 100.4, 100.2, 100.3)] * 3
    result = run(candles(rows), {0: 1}, config())
    (trade,) = result.trades
    assert trade.exit_reason == "time_stop"
    assert trade.exit_time_ms - trade.entry_time_ms == 2 * HOUR
    assert trade.exit_price == 100.3


def test_a_gap_through_the_stop_fills_at_the_open_not_at_the_stop() -> None:
    # Long 10 at 100, stop 99. Bar 2 opens at 98.5: the stop-market order fills at 98.5.
    bars = candles([(100, 100, 100, 100), (100, 100.3, 99.5, 99.6), (98.5, 99, 98, 98.8)])
    result = run(bars, {0: 1}, config())
    (trade,) = result.trades
    assert trade.exit_reason == "stop_loss"
    assert trade.exit_price == 98.5
    # loss 10 x 1.5 = 15; fees 0.5 + 985 x 0.05% = 0.4925
    assert trade.pnl == pytest.approx(-15.0 - 0.9925)
