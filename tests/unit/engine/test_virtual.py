"""Hand-computed virtual positions: every number below is worked out in the comments.

Unless a test says otherwise: taker fee 0.05 %, maker 0.02 %, no slippage, tick 0.01, stop 1 %,
target 2 %, no time stop; a one-unit position, so money is in price units.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from slt.domain.trading.enums import END_OF_DATA, STOP_LOSS, TAKE_PROFIT, TIME_STOP
from slt.domain.trading.params import CostParams, ExitParams
from slt.engine.virtual import VirtualInputError, VirtualOutcomes, virtual_outcomes

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
FIVE_MIN = 300_000
TICK = 0.01
EXITS = ExitParams(stop_loss_pct=1.0, take_profit_pct=2.0, max_holding_ms=0)
NO_SLIPPAGE = CostParams(slippage_bps=0.0)


def simulate(
    rows: Sequence[tuple[float, float, float, float]],
    signals: dict[int, int],
    exits: ExitParams = EXITS,
    costs: CostParams = NO_SLIPPAGE,
    stops: dict[int, float] | None = None,
) -> VirtualOutcomes:
    """(open, high, low, close) 5m rows from T0; a signal at a bar is decided at its close."""
    arr = np.array(rows, dtype=np.float64)
    direction = np.zeros(len(rows), dtype=np.int8)
    stop_pct = np.full(len(rows), exits.stop_loss_pct)
    for i, d in signals.items():
        direction[i] = d
    for i, s in (stops or {}).items():
        stop_pct[i] = s
    times = T0 + FIVE_MIN * np.arange(len(rows), dtype=np.int64)
    o, h, lo, c = (np.ascontiguousarray(arr[:, k]) for k in range(4))
    return virtual_outcomes(times, o, h, lo, c, FIVE_MIN, direction, stop_pct, exits, costs, TICK)


def test_long_that_reaches_its_target_earns_the_target_minus_fees_and_entry_slippage() -> None:
    # Signal at bar 0's close; entry at bar 1's open 100 plus 1 bp slippage = 100.01.
    # Target 100.01 x 1.02 = 102.0102 -> 102.01 on the tick grid, reached in bar 2 (high 102.5),
    # filled at its level as a maker. Fees: 100.01 x 0.05 % + 102.01 x 0.02 %.
    bars = [(100, 100, 100, 100), (100, 101, 99.5, 100.5), (100.5, 102.5, 100.2, 102)]
    out = simulate(bars, {0: 1}, costs=CostParams(slippage_bps=1.0))
    assert len(out) == 1
    assert out.signal_index[0] == 0
    assert out.direction[0] == 1
    assert out.entry_time_ms[0] == T0 + FIVE_MIN
    assert out.entry_price[0] == pytest.approx(100.01)
    assert out.exit_time_ms[0] == T0 + 2 * FIVE_MIN
    assert out.exit_price[0] == 102.01
    assert out.exit_reason[0] == TAKE_PROFIT
    pnl = (102.01 - 100.01) - 100.01 * 0.0005 - 102.01 * 0.0002
    assert out.return_pct[0] == pytest.approx(pnl / 100.01 * 100)
    assert out.reward[0] == pytest.approx(pnl / 100.01 * 100 / 1.0)
    assert out.stop_loss_pct[0] == 1.0
    assert out.take_profit_pct[0] == 2.0
    assert out.won[0]
    assert out.closed[0]


def test_short_that_reaches_its_stop_pays_taker_fee_and_slippage_on_the_stop_fill() -> None:
    # Short entry at bar 1's open 100 minus 1 bp = 99.99. Stop 99.99 x 1.01 = 100.9899 -> 100.99.
    # Bar 2's high 101.3 reaches it: a stop is a taker buy, 100.99 + 1 bp = 101.000099.
    bars = [(100, 100, 100, 100), (100, 100.5, 99.8, 100.2), (100.2, 101.3, 100.1, 101.2)]
    out = simulate(bars, {0: -1}, costs=CostParams(slippage_bps=1.0))
    assert out.direction[0] == -1
    assert out.entry_price[0] == pytest.approx(99.99)
    assert out.exit_reason[0] == STOP_LOSS
    assert out.exit_time_ms[0] == T0 + 2 * FIVE_MIN
    assert out.exit_price[0] == pytest.approx(101.000099)
    pnl = (99.99 - 101.000099) - 99.99 * 0.0005 - 101.000099 * 0.0005
    assert out.return_pct[0] == pytest.approx(pnl / 99.99 * 100)
    assert out.reward[0] == pytest.approx(pnl / 99.99 * 100)
    assert not out.won[0]
    assert out.closed[0]


def test_gap_through_the_stop_fills_at_the_open_not_at_the_stop() -> None:
    # Long at 100, stop 99. Bar 2 opens at 98, below the stop: the stop fills at 98 (taker).
    bars = [(100, 100, 100, 100), (100, 100.5, 99.5, 100), (98, 98.5, 97.5, 98.2)]
    out = simulate(bars, {0: 1})
    assert out.exit_reason[0] == STOP_LOSS
    assert out.exit_price[0] == 98.0
    assert out.exit_time_ms[0] == T0 + 2 * FIVE_MIN
    # (98 - 100) - 100 x 0.05 % - 98 x 0.05 % = -2.099 on 100 of notional
    assert out.return_pct[0] == pytest.approx(-2.099)
    assert out.reward[0] == pytest.approx(-2.099)


def test_time_stop_decided_at_a_close_fills_at_the_next_open() -> None:
    # Entry at bar 1's open (T0 + 5 min). Holding limit 10 min: at bar 2's close (T0 + 15 min)
    # it has been held 10 min, so it closes at bar 3's open 100.4 as a taker.
    exits = EXITS._replace(max_holding_ms=600_000)
    bars = [(100, 100, 100, 100), (100, 100.3, 99.8, 100.1), (100.1, 100.5, 99.9, 100.4)]
    bars += [(100.4, 100.6, 100.2, 100.5), (100.5, 100.6, 100.4, 100.5)]
    out = simulate(bars, {0: 1}, exits=exits)
    assert out.exit_reason[0] == TIME_STOP
    assert out.exit_time_ms[0] == T0 + 3 * FIVE_MIN
    assert out.exit_price[0] == 100.4
    assert out.return_pct[0] == pytest.approx(0.4 - 0.05 - 100.4 * 0.0005)
    assert out.won[0]  # closed in profit after costs
    assert out.closed[0]


def test_overlapping_positions_are_resolved_independently_and_opposites_do_not_close() -> None:
    # Long from bar 1's open 100 (stop 99, target 102); the short signal at bar 1 opens a
    # second position at bar 2's open 100.2 (stop 100.2 x 1.01 = 101.202 -> 101.2, target
    # 98.196 -> 98.2) while the long stays open. Bar 3 (high 102.3) fills the long's target
    # and the short's stop in the same candle.
    bars = [(100, 100, 100, 100), (100, 100.5, 99.6, 100.2), (100.2, 100.6, 99.7, 100.4)]
    bars += [(100.4, 102.3, 100.3, 102.1)]
    out = simulate(bars, {0: 1, 1: -1})
    assert list(out.signal_index) == [0, 1]
    assert list(out.direction) == [1, -1]
    assert list(out.entry_price) == [100.0, 100.2]
    assert list(out.exit_reason) == [TAKE_PROFIT, STOP_LOSS]
    assert list(out.exit_price) == [102.0, 101.2]
    assert list(out.exit_time_ms) == [T0 + 3 * FIVE_MIN] * 2
    long_pnl = 2.0 - 100 * 0.0005 - 102 * 0.0002
    short_pnl = (100.2 - 101.2) - 100.2 * 0.0005 - 101.2 * 0.0005
    assert out.return_pct == pytest.approx([long_pnl, short_pnl / 100.2 * 100])
    assert list(out.won) == [True, False]


def test_partial_take_profit_and_target_average_into_one_outcome() -> None:
    # Half at the partial +1 % (101), the rest at the target +2 % (102), both makers, in bar 2.
    # Average exit 101.5; fees 0.05 + 0.5 x 101 x 0.02 % + 0.5 x 102 x 0.02 % = 0.0703.
    exits = EXITS._replace(partial_take_profit_pct=1.0, partial_fraction=0.5)
    bars = [(100, 100, 100, 100), (100, 100.5, 99.5, 100.2), (100.2, 102.5, 100.1, 102.2)]
    out = simulate(bars, {0: 1}, exits=exits)
    assert out.exit_reason[0] == TAKE_PROFIT
    assert out.exit_price[0] == pytest.approx(101.5)
    assert out.return_pct[0] == pytest.approx(0.5 * 1 + 0.5 * 2 - 0.0703)
    assert out.won[0]


def test_signal_on_the_last_bar_opens_no_virtual_position() -> None:
    bars = [(100, 100, 100, 100), (100, 100.5, 99.5, 100), (100, 100.5, 99.5, 100)]
    out = simulate(bars, {2: 1})
    assert len(out) == 0
    assert out.won.dtype == np.bool_


def test_signal_without_a_finite_stop_above_zero_opens_no_virtual_position() -> None:
    bars = [(100, 100, 100, 100)] * 4
    out = simulate(bars, {0: 1, 1: -1, 2: 1}, stops={0: float("nan"), 1: 0.0})
    assert list(out.signal_index) == [2]


def test_signal_before_a_hole_in_the_data_opens_no_virtual_position() -> None:
    # As in the backtest loop, an entry is not filled across missing candles.
    times = T0 + FIVE_MIN * np.array([0, 1, 3, 4], dtype=np.int64)
    prices = np.full(4, 100.0)
    direction = np.array([0, 1, 1, 0], dtype=np.int8)
    out = virtual_outcomes(
        times, prices, prices, prices, prices, FIVE_MIN, direction, np.ones(4), EXITS,
        NO_SLIPPAGE, TICK,
    )  # fmt: skip
    assert list(out.signal_index) == [2]


def test_position_still_open_at_the_end_is_marked_at_the_last_close_and_not_closed() -> None:
    # Long at 100, never reaching 99 or 102; the data ends at bar 2's close 100.5
    # (T0 + 15 min): marked out there as a taker, flagged as not closed (no label yet).
    bars = [(100, 100, 100, 100), (100, 100.5, 99.5, 100.2), (100.2, 100.8, 100.1, 100.5)]
    out = simulate(bars, {0: 1})
    assert not out.closed[0]
    assert out.exit_reason[0] == END_OF_DATA
    assert out.exit_time_ms[0] == T0 + 3 * FIVE_MIN
    assert out.exit_price[0] == 100.5
    assert out.return_pct[0] == pytest.approx(0.5 - 0.05 - 100.5 * 0.0005)
    assert not out.won[0]  # in profit at the mark, but not closed: no label yet


def test_misaligned_arrays_are_refused_with_every_length_named() -> None:
    prices = np.full(3, 100.0)
    times = T0 + FIVE_MIN * np.arange(3, dtype=np.int64)
    with pytest.raises(VirtualInputError, match="direction 2"):
        virtual_outcomes(
            times, prices, prices, prices, prices, FIVE_MIN, np.zeros(2, np.int8), np.ones(3),
            EXITS, NO_SLIPPAGE, TICK,
        )  # fmt: skip


def test_a_timeframe_of_zero_is_refused() -> None:
    prices = np.full(3, 100.0)
    times = T0 + FIVE_MIN * np.arange(3, dtype=np.int64)
    with pytest.raises(VirtualInputError, match="timeframe_ms must be above 0"):
        virtual_outcomes(
            times, prices, prices, prices, prices, 0, np.zeros(3, np.int8), np.ones(3),
            EXITS, NO_SLIPPAGE, TICK,
        )  # fmt: skip
