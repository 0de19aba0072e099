"""ema_cross as a step over explicit state: the batch kernel, the step and the stream agree with a
plain-Python crossing rule over TA-Lib's EMAs on every bar."""

from __future__ import annotations

import numpy as np
import pytest
import talib

from slt.domain.strategies.ema_cross import CROSS_SCORE, EmaCross, EmaCrossParams
from slt.domain.strategies.ema_cross_nb import (
    EmaCrossKernelParams,
    ema_cross_nb,
    ema_cross_state_nb,
    ema_cross_step_nb,
)
from slt.errors import InvalidSeriesError
from tests.unit.strategies.feature_rows import FIVE_MINUTES_MS


def reference(close: np.ndarray, fast: int, slow: int) -> tuple[list[int], list[float]]:
    """The documented rule, bar by bar, on TA-Lib's EMAs (seeded by the SMA of ``period``)."""
    fast_ema, slow_ema = talib.EMA(close, fast), talib.EMA(close, slow)
    direction, score = [0], [0.0]
    for i in range(1, len(close)):
        f0, s0, f1, s1 = fast_ema[i - 1], slow_ema[i - 1], fast_ema[i], slow_ema[i]
        if f1 > s1 and f0 <= s0:
            direction.append(1)
        elif f1 < s1 and f0 >= s0:
            direction.append(-1)
        else:
            direction.append(0)
        score.append(CROSS_SCORE if direction[-1] else 0.0)
    return direction[: len(close)], score[: len(close)]


def random_walk(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))


CLOSES = {
    "random walk": random_walk(3_000, 1),
    "flat, then steps": np.r_[np.full(40, 100.0), np.full(30, 110.0), np.full(30, 90.0)],
    "a NaN close after the warm-up": np.r_[random_walk(60, 2), np.nan, random_walk(40, 3)],
    "a NaN close inside the warm-up": np.r_[random_walk(5, 4), np.nan, random_walk(80, 5)],
    "shorter than the slow period": random_walk(20, 6),
}


@pytest.mark.parametrize("name", CLOSES)
@pytest.mark.parametrize(("fast", "slow"), [(12, 26), (2, 3), (5, 50)])
def test_the_batch_kernel_follows_the_plain_rule_on_talib_emas(
    name: str, fast: int, slow: int
) -> None:
    close = CLOSES[name]
    direction, score = ema_cross_nb(close, fast, slow, CROSS_SCORE)
    expected_direction, expected_score = reference(close, fast, slow)
    assert direction.tolist() == expected_direction
    assert score.tolist() == expected_score


def test_the_step_fed_close_by_close_gives_the_batch_output() -> None:
    close = CLOSES["random walk"]
    params = EmaCrossKernelParams(fast=12, slow=26, score=CROSS_SCORE)
    state = ema_cross_state_nb()
    stepped = [ema_cross_step_nb(state, float(x), params) for x in close]
    direction, score = ema_cross_nb(close, 12, 26, CROSS_SCORE)
    assert [d for d, _ in stepped] == direction.tolist()
    assert [s for _, s in stepped] == score.tolist()
    assert np.count_nonzero(direction) > 50


def test_the_stream_gives_every_bar_of_the_batch_signals() -> None:
    close = CLOSES["a NaN close after the warm-up"]
    strategy = EmaCross(EmaCrossParams(fast=2, slow=3))
    stream = strategy.stream(None)
    rows = [
        stream.update(i * FIVE_MINUTES_MS, x, x, x, x, 1.0, None, 0) for i, x in enumerate(close)
    ]
    direction, score = ema_cross_nb(close, 2, 3, CROSS_SCORE)
    assert rows == list(zip(direction.tolist(), score.tolist(), strict=True))
    assert all(type(d) is int and type(s) is float for d, s in rows)


def test_two_streams_of_one_strategy_fed_in_turn_keep_separate_state() -> None:
    strategy = EmaCross()
    closes = CLOSES["random walk"], random_walk(3_000, 7)
    streams = strategy.stream(None), strategy.stream(None)
    rows: tuple[list[int], list[int]] = ([], [])
    for i in range(3_000):
        for close, stream, out in zip(closes, streams, rows, strict=True):
            x = float(close[i])
            out.append(stream.update(i * FIVE_MINUTES_MS, x, x, x, x, 1.0, None, 0)[0])
    for close, out in zip(closes, rows, strict=True):
        assert out == ema_cross_nb(close, 12, 26, CROSS_SCORE)[0].tolist()


def test_a_candle_not_later_than_the_one_before_is_refused() -> None:
    stream = EmaCross().stream(None)
    stream.update(FIVE_MINUTES_MS, 1.0, 1.0, 1.0, 1.0, 1.0, None, 0)
    with pytest.raises(InvalidSeriesError, match="in time order"):
        stream.update(FIVE_MINUTES_MS, 1.0, 1.0, 1.0, 1.0, 1.0, None, 0)
