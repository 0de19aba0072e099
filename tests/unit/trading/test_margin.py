"""Leverage brackets, isolated-margin liquidation and exchange rounding, computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from slt.domain.trading.margin_nb import (
    bracket_row_nb,
    floor_to_step_nb,
    liquidation_distance_pct_nb,
    liquidation_price_nb,
    maintenance_margin_nb,
    max_leverage_nb,
    round_price_nb,
)
from slt.domain.trading.symbol_rules import symbol_rules

BTC = symbol_rules("BTCUSDT").brackets
ETH = symbol_rules("ETHUSDT").brackets
GENERIC = symbol_rules("SOLUSDT").brackets
# BTCUSDT's first two brackets: [0, 50k) 125x mmr 0.4% cum 0; [50k, 600k) 100x mmr 0.5% cum 50.


def _row_by_loop(brackets: np.ndarray, notional: float) -> int:
    """The obviously-correct reference: the row whose [floor, cap) holds the notional."""
    for i, (floor, cap, *_rest) in enumerate(brackets):
        if floor <= notional < cap:
            return i
    return len(brackets) - 1


def test_a_notional_at_a_bracket_floor_belongs_to_that_bracket() -> None:
    assert bracket_row_nb(BTC, 49_999.99) == 0
    assert bracket_row_nb(BTC, 50_000.0) == 1
    assert bracket_row_nb(BTC, 0.0) == 0


def test_a_notional_beyond_the_last_cap_uses_the_last_bracket() -> None:
    # BTCUSDT's last cap is 1.8e9 (1x, mmr 50%).
    assert bracket_row_nb(BTC, 5e9) == len(BTC) - 1
    assert max_leverage_nb(BTC, 5e9) == 1.0


def test_a_nan_notional_falls_on_the_safest_bracket() -> None:
    assert bracket_row_nb(BTC, math.nan) == len(BTC) - 1


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=0.0, max_value=3e9, allow_nan=False))
def test_the_bracket_row_matches_a_plain_loop(notional: float) -> None:
    for table in (BTC, ETH, GENERIC):
        assert bracket_row_nb(table, notional) == _row_by_loop(table, notional)


def test_max_leverage_falls_as_the_notional_grows() -> None:
    assert max_leverage_nb(BTC, 30_000.0) == 125.0
    assert max_leverage_nb(BTC, 60_000.0) == 100.0
    assert max_leverage_nb(BTC, 1_000_000.0) == 75.0  # [600k, 3M) 75x


def test_maintenance_margin_is_notional_times_rate_minus_cum() -> None:
    # 30,000 x 0.4% - 0 = 120; 60,000 x 0.5% - 50 = 250; 1,000,000 x 0.65% - 950 = 5,550.
    assert maintenance_margin_nb(BTC, 30_000.0) == pytest.approx(120.0)
    assert maintenance_margin_nb(BTC, 60_000.0) == pytest.approx(250.0)
    assert maintenance_margin_nb(BTC, 1_000_000.0) == pytest.approx(5_550.0)


def test_maintenance_margin_has_no_jump_at_a_bracket_floor() -> None:
    # At 50,000: 50,000 x 0.4% - 0 = 200 = 50,000 x 0.5% - 50 (what cum is for).
    for table in (BTC, ETH, GENERIC):
        for floor in table[1:, 0]:
            below = maintenance_margin_nb(table, floor * (1 - 1e-12))
            assert maintenance_margin_nb(table, floor) == pytest.approx(below, rel=1e-9)


def test_long_one_btc_at_30000_with_10x_is_liquidated_near_27108() -> None:
    # Notional 30,000 -> bracket 1 (mmr 0.004, cum 0); margin 30,000 / 10 = 3,000.
    # LP = (WB + cum - side*Q*EP) / (Q*MMR - side*Q) = (3,000 + 0 - 30,000) / (0.004 - 1)
    #    = -27,000 / -0.996 = 27,108.4337...
    lp = liquidation_price_nb(1, 30_000.0, 1.0, 3_000.0, BTC)
    assert lp == pytest.approx(27_000.0 / 0.996)
    assert lp == pytest.approx(27_108.4337, abs=1e-4)


def test_short_one_btc_at_30000_with_10x_is_liquidated_near_32869() -> None:
    # LP = (3,000 + 0 + 30,000) / (0.004 + 1) = 33,000 / 1.004 = 32,868.5259...
    lp = liquidation_price_nb(-1, 30_000.0, 1.0, 3_000.0, BTC)
    assert lp == pytest.approx(33_000.0 / 1.004)
    assert lp == pytest.approx(32_868.5259, abs=1e-4)


def test_a_position_in_the_second_bracket_uses_its_rate_and_cum() -> None:
    # 2 BTC at 30,000 = 60,000 notional -> bracket 2 (mmr 0.005, cum 50); 10x -> margin 6,000.
    # LP = (6,000 + 50 - 60,000) / (2 x 0.005 - 2) = -53,950 / -1.99 = 27,110.5527...
    lp = liquidation_price_nb(1, 30_000.0, 2.0, 6_000.0, BTC)
    assert lp == pytest.approx(53_950.0 / 1.99)
    # Short: (6,000 + 50 + 60,000) / (0.01 + 2) = 66,050 / 2.01 = 32,860.6965...
    assert liquidation_price_nb(-1, 30_000.0, 2.0, 6_000.0, BTC) == pytest.approx(66_050.0 / 2.01)


def test_a_long_that_cannot_be_liquidated_reports_zero() -> None:
    # 1x with the second bracket's cum: (60,000 + 50 - 60,000) / (2 x 0.005 - 2) = 50 / -1.99 < 0.
    assert liquidation_price_nb(1, 30_000.0, 2.0, 60_000.0, BTC) == 0.0
    assert liquidation_distance_pct_nb(1, 1.0, BTC, 60_000.0) == 100.0


def test_a_short_at_1x_is_liquidated_just_under_double_the_entry() -> None:
    # (30,000 + 0 + 30,000) / (1.004) = 59,760.956...; distance (1 - 0.004) / 1.004 = 99.2032%.
    assert liquidation_price_nb(-1, 30_000.0, 1.0, 30_000.0, BTC) == pytest.approx(60_000 / 1.004)
    assert liquidation_distance_pct_nb(-1, 1.0, BTC, 30_000.0) == pytest.approx(99.6 / 1.004)


def test_liquidation_distance_at_10x_in_the_first_bracket_by_hand() -> None:
    # Long: (1/10 + 0 - 0.004) / (1 - 0.004) = 0.096 / 0.996 = 9.6386%.
    # Short: (1/10 + 0 - 0.004) / (1 + 0.004) = 0.096 / 1.004 = 9.5618%.
    assert liquidation_distance_pct_nb(1, 10.0, BTC, 30_000.0) == pytest.approx(9.6 / 0.996)
    assert liquidation_distance_pct_nb(-1, 10.0, BTC, 30_000.0) == pytest.approx(9.6 / 1.004)


@pytest.mark.parametrize("side", [1, -1])
@pytest.mark.parametrize(
    ("notional", "leverage"), [(30_000.0, 10.0), (60_000.0, 20.0), (2_000_000.0, 50.0), (1e6, 3.0)]
)
def test_liquidation_distance_agrees_with_the_liquidation_price(
    side: int, notional: float, leverage: float
) -> None:
    entry = 25_000.0
    lp = liquidation_price_nb(side, entry, notional / entry, notional / leverage, BTC)
    distance = liquidation_distance_pct_nb(side, leverage, BTC, notional)
    assert lp == pytest.approx(entry * (1 - side * distance / 100), rel=1e-12)


def test_bad_sides_and_sizes_give_nan_not_a_price() -> None:
    assert math.isnan(liquidation_price_nb(0, 30_000.0, 1.0, 3_000.0, BTC))
    assert math.isnan(liquidation_price_nb(1, 30_000.0, 0.0, 3_000.0, BTC))
    assert math.isnan(liquidation_price_nb(1, 0.0, 1.0, 3_000.0, BTC))
    assert math.isnan(liquidation_distance_pct_nb(2, 10.0, BTC, 30_000.0))
    assert math.isnan(liquidation_distance_pct_nb(1, 0.0, BTC, 30_000.0))


def test_a_leverage_above_the_bracket_gives_a_non_positive_distance() -> None:
    # 1/500 = 0.2% < mmr 0.4%: liquidated at once.
    assert liquidation_distance_pct_nb(1, 500.0, BTC, 30_000.0) < 0


@settings(max_examples=300, deadline=None)
@example(table=ETH, notional=530_000_000.0, entry=897_754.75, leverage_share=0.0)
@given(
    table=st.sampled_from([BTC, ETH, GENERIC]),
    notional=st.floats(min_value=5.0, max_value=2e9),
    entry=st.floats(min_value=0.01, max_value=1e6),
    leverage_share=st.floats(min_value=0.0, max_value=1.0),
)
def test_within_the_bracket_leverage_longs_liquidate_below_and_shorts_above_entry(
    table: np.ndarray, notional: float, entry: float, leverage_share: float
) -> None:
    # The kernel picks the bracket from quantity * entry, which can land one ulp below a
    # bracket cap that ``notional`` sits on (530e6 / 897754.75 * 897754.75 < 530e6): use the
    # notional the position really has, as the engine does.
    quantity = notional / entry
    notional = quantity * entry
    leverage = 1.0 + leverage_share * (max_leverage_nb(table, notional) - 1.0)
    margin = notional / leverage
    long_lp = liquidation_price_nb(1, entry, quantity, margin, table)
    short_lp = liquidation_price_nb(-1, entry, quantity, margin, table)
    assert 0.0 <= long_lp < entry
    assert short_lp > entry
    for side, lp in ((1, long_lp), (-1, short_lp)):
        distance = liquidation_distance_pct_nb(side, leverage, table, notional)
        assert distance > 0
        assert lp == pytest.approx(entry * (1 - side * distance / 100), rel=1e-9, abs=1e-9)


def test_prices_round_to_the_nearest_tick() -> None:
    assert round_price_nb(30_000.04, 0.1) == 30_000.0
    assert round_price_nb(30_000.06, 0.1) == 30_000.1
    assert round_price_nb(1_234.5678, 0.01) == 1_234.57
    assert round_price_nb(10.26, 0.5) == 10.5  # 20.52 ticks -> 21
    assert round_price_nb(0.1 + 0.2, 0.1) == 0.3  # 0.30000000000000004 comes back clean


def test_a_price_half_way_between_ticks_rounds_up() -> None:
    # 100.05 / 0.1 is 1000.4999... in floats; a decimal half still goes up.
    assert round_price_nb(100.05, 0.1) == 100.1
    assert round_price_nb(2.5, 1.0) == 3.0


def test_quantities_floor_to_whole_steps_despite_float_error() -> None:
    # 0.003 / 0.001 happens to be 3.0, but 0.043 / 0.001 is 42.99999999999999 and a plain floor
    # would lose a step.
    assert 0.043 / 0.001 < 43
    assert floor_to_step_nb(0.003, 0.001) == 0.003
    assert floor_to_step_nb(0.043, 0.001) == 0.043
    assert floor_to_step_nb(0.3, 0.1) == 0.3  # 2.9999999999999996 steps
    assert floor_to_step_nb(0.0029999, 0.001) == 0.002
    assert floor_to_step_nb(1.23456, 0.01) == 1.23
    assert floor_to_step_nb(12_345.678, 0.001) == 12_345.678
    assert floor_to_step_nb(7.0, 5.0) == 5.0


def test_a_negative_quantity_floors_towards_zero() -> None:
    assert floor_to_step_nb(-0.0035, 0.001) == -0.003


def test_a_zero_increment_leaves_the_value_unchanged() -> None:
    assert round_price_nb(123.456789, 0.0) == 123.456789
    assert floor_to_step_nb(0.123456, 0.0) == 0.123456


@settings(max_examples=300, deadline=None)
@given(
    steps=st.integers(min_value=0, max_value=10_000_000),
    step=st.sampled_from([1.0, 0.1, 0.01, 0.001, 0.0001, 1e-8, 0.5, 5.0]),
)
def test_a_whole_number_of_steps_is_kept_exactly(steps: int, step: float) -> None:
    qty = steps * step
    assert floor_to_step_nb(qty, step) == pytest.approx(qty, rel=1e-12)
    assert floor_to_step_nb(qty, step) == pytest.approx(round_price_nb(qty, step), rel=1e-12)
