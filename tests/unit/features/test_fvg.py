"""Fair value gaps on hand-made candles: each definition pinned by a sequence small enough to
check by eye."""

from __future__ import annotations

import numpy as np
import pytest

from slt.domain.features.fvg_nb import (
    FVG_COLUMNS,
    FvgParams,
    fvg_batch_nb,
    fvg_reset_nb,
    fvg_state,
    fvg_step_nb,
    fvg_warmups,
)
from slt.domain.series import F64

# A bullish gap between high[0] = 11 and low[2] = 12, then a retrace: no touch (low 12.5),
# a touch that fills a quarter (low 11.75), a shallower low (11.9), and a full fill (low 11).
BULL_GAP = [
    (10.0, 11.0, 9.0, 10.5),
    (10.5, 13.0, 10.4, 12.8),
    (12.8, 14.0, 12.0, 13.5),
]
RETRACE = [
    (13.5, 13.8, 12.5, 13.0),
    (13.0, 13.2, 11.75, 12.0),
    (12.0, 12.6, 11.9, 12.5),
    (12.5, 12.7, 11.0, 11.2),
]


def _run(candles: list[tuple[float, float, float, float]], atr: float = 1.0, **params: int) -> F64:
    a = np.array(candles, dtype=np.float64)
    o, h, low, c = a.T.copy()
    assert np.all(low <= np.minimum(o, c)) and np.all(np.maximum(o, c) <= h)
    return fvg_batch_nb(o, h, low, c, np.full(len(a), atr), FvgParams()._replace(**params))


def _col(out: F64, name: str) -> F64:
    return out[:, FVG_COLUMNS.index(name)]


def _mirror(
    candles: list[tuple[float, float, float, float]],
) -> list[tuple[float, float, float, float]]:
    """Prices reflected around 15: every bullish shape becomes the bearish one."""
    return [(30.0 - o, 30.0 - low, 30.0 - h, 30.0 - c) for o, h, low, c in candles]


def test_bullish_gap_is_created_at_the_third_candle_not_the_middle_one() -> None:
    out = _run(BULL_GAP)

    assert list(_col(out, "fvg_new")) == [0.0, 0.0, 1.0]
    assert _col(out, "fvg_new_size_atr")[2] == 1.0  # low[2] - high[0] = 12 - 11
    assert np.isnan(_col(out, "fvg_new_size_atr")[:2]).all()


def test_bearish_gap_spans_from_the_third_candles_high_to_the_first_candles_low() -> None:
    candles = [(20.0, 21.0, 19.0, 19.5), (19.5, 19.6, 16.0, 16.5), (16.5, 17.5, 15.0, 16.0)]

    out = _run(candles, atr=2.0)

    assert list(_col(out, "fvg_new")) == [0.0, 0.0, -1.0]
    assert _col(out, "fvg_new_size_atr")[2] == (19.0 - 17.5) / 2.0
    assert _col(out, "fvg_bear_dist_atr")[2] == (17.5 - 16.0) / 2.0  # (bottom - close) / ATR


def test_a_gap_needs_the_middle_candle_to_close_in_its_direction() -> None:
    bearish_middle = [BULL_GAP[0], (12.8, 13.0, 10.4, 10.5), BULL_GAP[2]]

    out = _run(bearish_middle)

    assert not _col(out, "fvg_new").any()


def test_wicks_that_exactly_meet_leave_no_gap() -> None:
    meeting = [BULL_GAP[0], BULL_GAP[1], (12.8, 14.0, 11.0, 13.5)]  # low[2] == high[0]

    out = _run(meeting)

    assert not _col(out, "fvg_new").any()


def test_age_touch_and_fill_follow_the_lows_after_creation() -> None:
    out = _run(BULL_GAP + RETRACE)

    assert list(_col(out, "fvg_new")) == [0, 0, 1, 0, 0, 0, 0]
    assert list(_col(out, "fvg_bull_age")[2:6]) == [0, 1, 2, 3]
    # The creation candle's own low equals the top: that is not a touch.
    assert list(_col(out, "fvg_bull_touched")[2:6]) == [0, 0, 1, 1]
    # Fill keeps the deepest low since creation (11.75), not the latest one (11.9).
    assert list(_col(out, "fvg_bull_fill")[2:6]) == [0.0, 0.0, 0.25, 0.25]
    assert list(_col(out, "fvg_bull_dist_atr")[2:6]) == [1.5, 1.0, 0.0, 0.5]  # close - top
    assert list(_col(out, "fvg_bull_size_atr")[2:6]) == [1.0] * 4


def test_a_fully_filled_gap_leaves_the_pool_with_one_mitigation_event() -> None:
    out = _run(BULL_GAP + RETRACE)

    assert list(_col(out, "fvg_bull_count")) == [0, 0, 1, 1, 1, 1, 0]
    assert list(_col(out, "fvg_bull_mitigated")) == [0, 0, 0, 0, 0, 0, 1]
    assert np.isnan(_col(out, "fvg_bull_fill")[6])
    assert np.isnan(_col(out, "fvg_bull_dist_atr")[6])


def test_bearish_columns_mirror_the_bullish_ones_with_highs() -> None:
    bull = _run(BULL_GAP + RETRACE)

    bear = _run(_mirror(BULL_GAP + RETRACE))

    assert np.array_equal(_col(bear, "fvg_new"), -_col(bull, "fvg_new"))
    for part in ("dist_atr", "size_atr", "age", "fill", "touched", "count", "mitigated"):
        got, want = _col(bear, f"fvg_bear_{part}"), _col(bull, f"fvg_bull_{part}")
        assert np.array_equal(got, want, equal_nan=True), part
    assert not _col(bear, "fvg_bull_count").any()


def test_a_gap_older_than_max_age_leaves_the_pool_without_an_event() -> None:
    calm = [RETRACE[0]] * 5  # never reaches the gap's top

    out = _run(BULL_GAP + calm, max_age=3)

    assert list(_col(out, "fvg_bull_age")[2:6]) == [0, 1, 2, 3]
    assert list(_col(out, "fvg_bull_count")) == [0, 0, 1, 1, 1, 1, 0, 0]
    assert not _col(out, "fvg_bull_mitigated").any()


def _staircase() -> list[tuple[float, float, float, float]]:
    """Five rising candles: bullish gaps [11.75, 13.75], [13.75, 15.75], [15.75, 17.75] at
    candles 2, 3, 4; then one dip to 13 that fills the two younger gaps and touches the oldest."""
    rising = [(10.0 + 2 * k, 11.75 + 2 * k, 9.75 + 2 * k, 11.5 + 2 * k) for k in range(5)]
    return [*rising, (19.5, 19.75, 13.0, 13.5)]


def test_a_full_pool_drops_its_oldest_gap_for_a_new_one() -> None:
    roomy = _run(_staircase(), capacity=3)
    full = _run(_staircase(), capacity=2)

    assert list(_col(roomy, "fvg_new")) == [0, 0, 1, 1, 1, 0]
    assert _col(roomy, "fvg_bull_count")[4] == 3 and _col(full, "fvg_bull_count")[4] == 2
    # The dip fills the two younger gaps in both pools; only the roomy one still holds the oldest.
    assert _col(roomy, "fvg_bull_mitigated")[5] == 2 and _col(full, "fvg_bull_mitigated")[5] == 2
    assert _col(roomy, "fvg_bull_count")[5] == 1 and _col(full, "fvg_bull_count")[5] == 0
    assert _col(roomy, "fvg_bull_fill")[5] == (13.75 - 13.0) / 2.0
    assert _col(roomy, "fvg_bull_age")[5] == 3


def test_a_gap_created_after_the_younger_gaps_were_filled_joins_the_pool() -> None:
    # After the dip only the oldest staircase gap is left; a rally then leaves a gap
    # [19.75, 19.8] at candle 7 above it.
    candles = [
        *_staircase(),
        (13.5, 20.0, 13.4, 19.9),
        (19.9, 21.0, 19.8, 20.5),
        (20.5, 20.6, 19.9, 20.0),
    ]

    out = _run(candles, capacity=3)

    assert list(_col(out, "fvg_bull_count")) == [0, 0, 1, 2, 3, 1, 1, 2, 2]
    assert list(_col(out, "fvg_bull_age")[5:]) == [3, 4, 0, 1]
    assert _col(out, "fvg_bull_dist_atr")[8] == 20.0 - 19.8


def test_when_a_full_pool_evicts_the_nearest_gap_the_next_nearest_takes_its_place() -> None:
    # Gap A [11, 12] at candle 2, gap B [11.65, 11.9] at candle 6 and gap C [11.8, 11.85] at
    # candle 10, whose close (11.99) is nearest A's top, then B's, then C's.
    candles = [
        *BULL_GAP,
        (13.5, 13.5, 11.5, 11.6),
        (11.6, 11.65, 11.55, 11.62),
        (11.62, 11.95, 11.6, 11.9),
        (11.9, 12.3, 11.9, 12.2),
        (12.2, 12.25, 11.7, 11.75),
        (11.75, 11.8, 11.72, 11.78),
        (11.78, 11.9, 11.75, 11.88),
        (11.88, 12.0, 11.85, 11.99),
    ]

    roomy = _run(candles, capacity=3)
    full = _run(candles, capacity=2)

    assert _col(roomy, "fvg_new")[10] == 1 and _col(full, "fvg_new")[10] == 1
    assert _col(roomy, "fvg_bull_count")[10] == 3 and _col(roomy, "fvg_bull_age")[10] == 8
    assert _col(full, "fvg_bull_count")[10] == 2 and _col(full, "fvg_bull_age")[10] == 4
    assert _col(full, "fvg_bull_dist_atr")[10] == 11.99 - 11.9


def test_the_nearest_gap_is_the_one_whose_top_is_closest_to_the_close() -> None:
    out = _run(_staircase(), capacity=3)

    # At candle 4 the close (19.5) is nearest the youngest top, 17.75.
    assert _col(out, "fvg_bull_age")[4] == 0
    assert _col(out, "fvg_bull_dist_atr")[4] == 19.5 - 17.75


def test_the_nearest_gap_can_be_an_older_one_below_the_price() -> None:
    # Gap A [11, 12] at candle 2, a wide gap B [13.6, 16] at candle 5; price sinks to 13.75
    # inside B without filling it: A's top (1.75 away) is nearer than B's top (2.25 away).
    candles = [
        *BULL_GAP,
        (13.5, 13.6, 12.9, 13.0),
        (13.0, 17.0, 12.95, 16.8),
        (16.8, 17.5, 16.0, 17.2),
        (17.2, 17.3, 13.7, 13.75),
    ]

    out = _run(candles)

    assert list(_col(out, "fvg_new")) == [0, 0, 1, 0, 0, 1, 0]
    assert _col(out, "fvg_bull_count")[6] == 2
    assert _col(out, "fvg_bull_age")[6] == 4
    assert _col(out, "fvg_bull_dist_atr")[6] == 13.75 - 12.0


def test_on_equal_distances_the_younger_gap_is_the_nearest() -> None:
    # Gap [11, 12] at candle 2; price dips to 11.5; a second gap [11.9, 12] at candle 6 has the
    # same top. (Candle 4 also creates a bearish gap; it is irrelevant here.)
    candles = [
        *BULL_GAP,
        (13.5, 13.6, 11.5, 11.6),
        (11.6, 11.9, 11.5, 11.7),
        (11.7, 12.4, 11.6, 12.3),
        (12.3, 12.6, 12.0, 12.5),
    ]

    out = _run(candles)

    assert _col(out, "fvg_new")[6] == 1 and _col(out, "fvg_bull_count")[6] == 2
    assert _col(out, "fvg_bull_age")[6] == 0
    assert _col(out, "fvg_bull_fill")[6] == 0.0


@pytest.mark.parametrize("atr", [np.nan, 0.0])
def test_without_a_usable_atr_only_the_atr_columns_are_missing(atr: float) -> None:
    known = _run(BULL_GAP + RETRACE, atr=1.0)

    unknown = _run(BULL_GAP + RETRACE, atr=atr)

    for k, name in enumerate(FVG_COLUMNS):
        if name.endswith("_atr"):
            assert np.isnan(unknown[:, k]).all(), name
        else:
            assert np.array_equal(unknown[:, k], known[:, k], equal_nan=True), name


def test_reset_forgets_every_gap_and_the_last_two_candles() -> None:
    p = FvgParams()
    s = fvg_state(p)
    row = np.empty(len(FVG_COLUMNS))
    for o, h, low, c in BULL_GAP:
        fvg_step_nb(s, p, o, h, low, c, 1.0, row)
    assert row[FVG_COLUMNS.index("fvg_bull_count")] == 1

    fvg_reset_nb(s)
    fvg_step_nb(s, p, *RETRACE[0], 1.0, row)

    assert np.array_equal(row, _run(RETRACE[:1])[0], equal_nan=True)


def test_warmups_are_two_candles_for_creation_and_max_age_plus_two_for_the_pool() -> None:
    warm = dict(zip(FVG_COLUMNS, fvg_warmups(FvgParams(max_age=40)), strict=True))

    assert warm["fvg_new"] == 2 and warm["fvg_new_size_atr"] == 2
    assert {w for n, w in warm.items() if not n.startswith("fvg_new")} == {42}


def test_a_pool_without_room_is_refused() -> None:
    with pytest.raises(ValueError, match="capacity"):
        fvg_state(FvgParams(capacity=0))
