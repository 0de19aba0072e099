"""ema_cross on hand-made closes whose crosses are known."""

from __future__ import annotations

import numpy as np
import pytest

from slt.domain.strategies.base import StrategyError
from slt.domain.strategies.ema_cross import EmaCross, EmaCrossParams
from tests.unit.strategies.feature_rows import candles_of


def test_a_step_up_after_a_flat_market_is_a_long_and_a_step_down_a_short() -> None:
    # Flat: both EMAs equal 100 exactly. Up: the fast EMA moves more, so it crosses on that bar.
    close = np.r_[np.full(40, 100.0), np.full(30, 110.0), np.full(30, 90.0)]
    signals = EmaCross().signals(candles_of(close), None)
    assert np.flatnonzero(signals.direction).tolist() == [40, 70]
    assert signals.direction[[40, 70]].tolist() == [1, -1]
    assert signals.score[[40, 70]].tolist() == [0.5, 0.5]
    assert signals.score.sum() == 1.0
    assert signals.direction.dtype == np.int8


def test_a_fast_ema_already_above_the_slow_one_when_both_warm_up_is_no_cross() -> None:
    close = np.linspace(100.0, 200.0, 200)  # rising from the start: fast > slow at once
    assert EmaCross().signals(candles_of(close), None).count == 0


def test_small_periods_follow_the_same_rule() -> None:
    # EMA(2) and EMA(3), TA-Lib seeding: fast from bar 1, slow from bar 2 (SMA of 3 closes).
    close = [10.0, 10.0, 10.0, 12.0, 12.0, 9.0, 9.0]
    signals = EmaCross(EmaCrossParams(fast=2, slow=3)).signals(candles_of(close), None)
    assert signals.direction.tolist() == [0, 0, 0, 1, 0, -1, 0]


def test_fewer_candles_than_the_slow_period_give_no_signal() -> None:
    assert EmaCross().signals(candles_of([1.0, 2.0, 1.0]), None).count == 0
    assert len(EmaCross().signals(candles_of([]), None)) == 0


def test_a_fast_period_not_below_the_slow_one_is_refused() -> None:
    with pytest.raises(StrategyError, match="fast < slow"):
        EmaCrossParams(fast=26, slow=12)


def test_ema_cross_needs_no_features() -> None:
    assert EmaCross().uses_features is False
    assert EmaCross().name == "ema_cross"
