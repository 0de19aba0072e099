"""The structure family on hand-made candles: each definition pinned by a small example."""

from __future__ import annotations

import numpy as np
import pytest

from slt.domain.features.structure_nb import (
    STRUCTURE_COLUMNS,
    StructureParams,
    structure_batch_nb,
    structure_state,
    structure_warmups,
)

P = StructureParams(
    swing_left=2,
    swing_right=2,
    horizon=20,
    liquidity_tolerance_atr=0.5,
    ob_max_age=10,
    ob_capacity=3,
)
Bars = list[tuple[float, float, float, float]]  # open, high, low, close


def run(bars: Bars, p: StructureParams = P, atr: float = 1.0) -> dict[str, np.ndarray]:
    o, h, low, c = (np.array(col, dtype=np.float64) for col in zip(*bars, strict=True))
    out = structure_batch_nb(o, h, low, c, np.zeros(len(c)), np.full(len(c), atr), p)
    return {name: out[:, j] for j, name in enumerate(STRUCTURE_COLUMNS)}


def path(closes: list[float], wick: float = 0.1) -> Bars:
    """Candles opening at the previous close, with a small wick each side."""
    bars = []
    for i, c in enumerate(closes):
        o = closes[i - 1] if i else c
        bars.append((o, max(o, c) + wick, min(o, c) - wick, c))
    return bars


def dojis(highs: list[float], depth: float = 1.0) -> Bars:
    """Candles that neither rise nor fall (open == close), ``depth`` tall below each high."""
    return [(h - depth / 2, h, h - depth, h - depth / 2) for h in highs]


def hold(price: float, n: int) -> Bars:
    return [(price, price + 0.1, price - 0.1, price)] * n


# Swing high 12.1 (pivot 2), broken at 8; swing low 8.9 (pivot 5), broken at 14 against the up
# trend; swing low 8.4 (pivot 14), broken at 18 with the down trend.
ZIGZAG = [10, 11, 12, 11, 10, 9, 10, 11, 12.5, 13, 12, 11, 10, 9, 8.5, 9.5, 10, 9, 8, 7]


def events(column: np.ndarray) -> dict[int, float]:
    return {int(i): float(column[i]) for i in np.flatnonzero(column)}


# ---- swings ---------------------------------------------------------------------------------


def test_swing_high_is_known_only_right_length_bars_after_its_pivot() -> None:
    out = run(dojis([10, 11, 14, 12, 11, 10, 9]))

    assert np.isnan(out["swing_high_age"][:4]).all()
    assert out["swing_high_age"][4] == 2
    assert out["swing_high_dist_atr"][4] == pytest.approx(14 - 10.5)
    assert out["swing_high_age"][6] == 4


def test_a_flat_top_pivots_on_its_first_bar() -> None:
    out = run(dojis([10, 11, 14, 14, 12, 11, 10]))

    assert np.isnan(out["swing_high_age"][:4]).all()
    assert out["swing_high_age"][4] == 2
    assert out["swing_high_age"][5] == 3  # still pivot 2: bar 3 has an equal high on its left


def test_a_higher_high_within_right_length_bars_cancels_the_swing() -> None:
    out = run(dojis([10, 11, 14, 12, 15, 13, 12]))

    assert out["swing_high_age"][4] != 2
    assert out["swing_high_age"][6] == 2  # the 15 at bar 4 is the swing instead


def test_swing_low_mirrors_swing_high() -> None:
    lows = [10, 9, 6, 8, 9, 10]
    out = run([(lo + 0.5, lo + 1, lo, lo + 0.5) for lo in lows])

    assert np.isnan(out["swing_low_age"][:4]).all()
    assert out["swing_low_age"][4] == 2
    assert out["swing_low_dist_atr"][4] == pytest.approx(9.5 - 6)


def test_a_swing_older_than_horizon_is_dropped() -> None:
    out = run(dojis([10, 11, 14] + [13 - 0.1 * i for i in range(30)]))

    assert out["swing_high_age"][22] == P.horizon
    assert np.isnan(out["swing_high_age"][23])


def test_premium_discount_places_the_close_in_the_latest_swing_range() -> None:
    out = run(path(ZIGZAG))

    # at bar 7 the swing high is 12.1 and the swing low 8.9; close 11
    assert out["premium_discount"][7] == pytest.approx((11 - 8.9) / (12.1 - 8.9))
    assert out["swing_range_pct"][7] == pytest.approx((12.1 - 8.9) / 11 * 100)
    assert np.isnan(out["premium_discount"][6])  # the swing low is confirmed only at bar 7


# ---- breaks ---------------------------------------------------------------------------------


def test_the_first_break_from_no_trend_is_a_bos() -> None:
    out = run(path(ZIGZAG))

    assert (out["trend"][:8] == 0).all()
    assert events(out["bos"])[8] == 1
    assert out["trend"][8] == 1
    assert out["bars_since_break"][8] == 0


def test_a_break_against_the_trend_is_a_choch_and_flips_the_trend() -> None:
    out = run(path(ZIGZAG))

    assert events(out["choch"]) == {14: -1}
    assert (out["trend"][8:14] == 1).all()
    assert (out["trend"][14:] == -1).all()


def test_a_break_with_the_trend_is_a_bos() -> None:
    out = run(path(ZIGZAG))

    assert events(out["bos"]) == {8: 1, 18: -1}


def test_a_swing_breaks_only_once() -> None:
    out = run(path(ZIGZAG))

    assert ZIGZAG[9] > 12.1  # bar 9 closes above the already broken swing high again
    assert out["bos"][9] == 0 and out["choch"][9] == 0


def test_the_trend_lapses_after_horizon_bars_without_a_break() -> None:
    out = run(path(ZIGZAG[:10]) + hold(12.8, 30))

    assert out["trend"][8 + P.horizon] == 1
    assert out["bars_since_break"][8 + P.horizon] == P.horizon
    assert out["trend"][9 + P.horizon] == 0
    assert np.isnan(out["bars_since_break"][9 + P.horizon])


# ---- order blocks ---------------------------------------------------------------------------


def test_a_bullish_order_block_is_the_last_down_candle_before_the_break() -> None:
    out = run(path(ZIGZAG))

    assert events(out["ob_new"]) == {8: 1, 14: -1, 18: -1}
    # bar 5 (10 -> 9) is the last down candle between pivot 2 and the break: zone [8.9, 10.1]
    assert out["ob_bull_dist_atr"][8] == pytest.approx(12.5 - 10.1)
    assert out["ob_bull_age"][8] == 0


def test_a_bearish_order_block_is_the_last_up_candle_before_the_break() -> None:
    out = run(path(ZIGZAG))

    # bar 9 (12.5 -> 13) is the last up candle between pivot 5 and the break: zone [12.4, 13.1]
    assert out["ob_bear_dist_atr"][14] == pytest.approx(12.4 - 8.5)
    # at bar 18 the newer block of bar 16 (9.5 -> 10), zone [9.4, 10.1], is the nearest
    assert out["ob_bear_dist_atr"][18] == pytest.approx(9.4 - 8)
    assert out["ob_bear_age"][18] == 0


def test_without_a_down_candle_the_block_is_the_latest_lowest_low_candle() -> None:
    no_down = [(10.0, 10.4, 9.5, 10.0), (10.0, 10.5, 9.5, 10.0)]  # equal lows, bar 6 is later
    bars = [*dojis([10, 11, 14, 12, 11]), *no_down, (10.6, 14.6, 10.5, 14.5)]  # 7 breaks the 14

    out = run(bars)

    assert out["ob_new"][7] == 1
    assert out["ob_bull_dist_atr"][7] == pytest.approx(14.5 - 10.5)  # bar 6, not bar 5


def test_a_block_is_touched_when_a_later_low_reaches_its_top() -> None:
    out = run(path(ZIGZAG))

    assert (out["ob_bull_touched"][8:12] == 0).all()
    assert out["ob_bull_touched"][12] == 1  # low 9.9 reaches the top 10.1


def test_a_block_is_invalidated_by_a_close_beyond_its_far_side() -> None:
    out = run(path(ZIGZAG))

    assert events(out["ob_invalidated"]) == {14: 1}  # close 8.5 below the bottom 8.9
    assert np.isnan(out["ob_bull_age"][14])


def test_a_block_is_dropped_after_its_max_age_without_an_invalidation_event() -> None:
    out = run(path(ZIGZAG[:10]) + hold(12.8, 30))

    assert out["ob_bull_age"][8 + P.ob_max_age] == P.ob_max_age
    assert np.isnan(out["ob_bull_age"][9 + P.ob_max_age])
    assert not out["ob_invalidated"].any()


def test_when_the_pool_is_full_the_oldest_block_makes_room() -> None:
    stairs = [
        float(x)
        for step in range(6)
        for x in (10 + 2 * step, 11 + 2 * step, 12 + 2 * step, 11 + 2 * step, 10.5 + 2 * step)
    ]
    one = StructureParams(swing_left=2, swing_right=2, horizon=20, ob_max_age=50, ob_capacity=1)

    out = run(path(stairs), one)
    many = run(path(stairs), one._replace(ob_capacity=10))

    created = np.flatnonzero(out["ob_new"] == 1)
    assert len(created) >= 3
    after = np.arange(created[1], len(stairs))
    assert (out["ob_bull_age"][after] <= after - created[1]).all()
    assert (many["ob_bull_age"] != out["ob_bull_age"]).any()


# ---- liquidity ------------------------------------------------------------------------------

EQUAL_HIGHS = [10, 11, 14, 12, 11, 12, 14.2, 12, 11, 10.5]  # swing highs 14 and 14.2


def test_two_swing_highs_within_tolerance_form_a_buy_side_pool_at_their_max() -> None:
    out = run(dojis(EQUAL_HIGHS))

    assert np.isnan(out["liq_buy_dist_atr"][:8]).all()  # the 14.2 is confirmed at bar 8
    assert out["liq_buy_dist_atr"][8] == pytest.approx(14.2 - 10.5)


def test_a_wick_above_the_pool_closing_back_below_is_a_bearish_sweep() -> None:
    out = run([*dojis(EQUAL_HIGHS), (12.0, 14.5, 11.8, 13.5), (13.0, 13.2, 12.5, 13.0)])

    assert events(out["liq_sweep"]) == {10: -1}
    assert np.isnan(out["liq_buy_dist_atr"][10:]).all()


def test_a_close_through_the_pool_removes_it_without_a_sweep() -> None:
    out = run([*dojis(EQUAL_HIGHS), (12.0, 14.5, 11.8, 14.4)])

    assert not out["liq_sweep"].any()
    assert np.isnan(out["liq_buy_dist_atr"][10])


def test_a_higher_swing_between_two_equal_highs_forms_no_pool() -> None:
    out = run(dojis([10, 11, 14, 12, 11, 15, 12, 11, 14.2, 12, 11, 10.5]))

    assert out["swing_high_age"][10] == 2  # the 14.2 is a confirmed swing
    assert np.isnan(out["liq_buy_dist_atr"]).all()


def test_swing_highs_further_apart_than_the_tolerance_form_no_pool() -> None:
    out = run(dojis(EQUAL_HIGHS), P._replace(liquidity_tolerance_atr=0.1))

    assert np.isnan(out["liq_buy_dist_atr"]).all()


def test_no_pool_forms_while_the_atr_is_missing() -> None:
    out = run([*dojis(EQUAL_HIGHS), (12.0, 14.5, 11.8, 13.5)], atr=np.nan)

    assert not out["liq_sweep"].any()


def test_a_sell_side_pool_swept_from_below_is_a_bullish_sweep() -> None:
    lows = [20, 19, 16, 18, 19, 18, 15.8, 18, 19, 19.5]
    bars = [(lo + 0.5, lo + 1, lo, lo + 0.5) for lo in lows] + [(18.0, 18.2, 15.5, 16.5)]

    out = run(bars)

    assert out["liq_sell_dist_atr"][9] == pytest.approx(20 - 15.8)
    assert events(out["liq_sweep"]) == {10: 1}


def test_a_pool_lapses_when_its_newest_swing_is_older_than_horizon() -> None:
    out = run(dojis(EQUAL_HIGHS + [10.4 - 0.01 * i for i in range(20)]))

    assert np.isfinite(out["liq_buy_dist_atr"][6 + P.horizon])
    assert np.isnan(out["liq_buy_dist_atr"][7 + P.horizon])


# ---- parameters -----------------------------------------------------------------------------


def test_parameters_the_definitions_cannot_honour_are_refused() -> None:
    for bad in (P._replace(swing_right=0), P._replace(horizon=1), P._replace(ob_capacity=0)):
        with pytest.raises(ValueError):
            structure_state(bad)


def test_warmups_follow_the_parameters() -> None:
    w = dict(zip(STRUCTURE_COLUMNS, structure_warmups(P, 50), strict=True))

    assert w["swing_high_age"] == 2 + 20
    assert w["trend"] == 2 + 2 * 20
    assert w["choch"] == 2 + 2 * 20 + 1
    assert w["ob_bull_age"] == 2 + 20 + 10
    assert w["swing_high_dist_atr"] == 50
    assert w["liq_sweep"] == 50 + 20 - 2
