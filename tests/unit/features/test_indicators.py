"""The indicator family: batch against the streaming step, causality on real candles, the
definitions on hand-made markets, and RSI / ATR / EMA against plain-Python references."""

from __future__ import annotations

from functools import cache
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slt.adapters.importers.readers import RawRows
from slt.domain.features.causality import Compute, prefix_violations, warmup_violations
from slt.domain.features.indicators_nb import (
    INDICATOR_COLUMNS,
    IndicatorParams,
    atr_nb,
    ema_nb,
    indicator_batch_nb,
    indicator_reset_nb,
    indicator_state,
    indicator_step_nb,
    indicator_warmups,
    rsi_nb,
)
from slt.domain.series import F64
from tests.conftest import CATMAN_BTC_5M, CATMAN_ETH_5M, FILIMONOV_BTC_1M, real_ohlcv

P = IndicatorParams()
COLUMN = {name: k for k, name in enumerate(INDICATOR_COLUMNS)}
# Bar of the first value with default parameters: TA-Lib's lookbacks (RSI and ATR 14, EMA n - 1,
# MACD slow - 1 + signal - 1, windows n - 1, returns one bar later), the latest of the inputs.
FIRST_VALUE = {
    "rsi": 14,
    "atr_pct": 14,
    "ema_fast_dist_atr": 19,
    "ema_slow_dist_atr": 49,
    "ema_spread_atr": 49,
    "macd_atr": 33,
    "macd_signal_atr": 33,
    "macd_hist_atr": 33,
    "bb_width_pct": 19,
    "bb_position": 19,
    "volume_z": 19,
    "realized_vol_pct": 20,
    "return_atr": 14,
}
WINDOW_COLUMNS = ("bb_width_pct", "bb_position", "volume_z", "realized_vol_pct")


@cache
def _rows(path: str) -> RawRows:
    return real_ohlcv({"btc": CATMAN_BTC_5M, "eth": CATMAN_ETH_5M, "1m": FILIMONOV_BTC_1M}[path])


def _compute(rows: RawRows, p: IndicatorParams = P) -> Compute:
    def compute(start: int, stop: int) -> F64:
        cols = (rows.open, rows.high, rows.low, rows.close, rows.volume)
        o, h, low, c, v = (col[start:stop] for col in cols)
        return indicator_batch_nb(o, h, low, c, v, p)  # type: ignore[no-any-return]

    return compute


def _random_rows(n: int, count: int, seed: int) -> list[int]:
    picked = np.random.default_rng(seed).integers(0, n, size=count)
    return sorted({0, 13, 14, 33, 50, 400, n - 1, *map(int, picked)})


def _step_by_step(o: F64, h: F64, low: F64, c: F64, v: F64, p: IndicatorParams) -> tuple[F64, F64]:
    s = indicator_state(p)
    rows = np.empty((len(c), len(INDICATOR_COLUMNS)))
    atr = np.empty(len(c))
    for i in range(len(c)):
        atr[i] = indicator_step_nb(s, p, o[i], h[i], low[i], c[i], v[i], rows[i])
    return rows, atr


def _flat_market(n: int, price: float = 100.0, volume: float = 5.0) -> tuple[F64, ...]:
    return tuple(np.full(n, x) for x in (price, price, price, price, volume))


# ---- batch and streaming ---------------------------------------------------------------------


@pytest.mark.shared_data
def test_batch_equals_a_python_loop_over_the_step_on_real_candles() -> None:
    rows = _rows("btc")
    part = slice(50_000, 60_000)
    o, h, low, c, v = (x[part] for x in (rows.open, rows.high, rows.low, rows.close, rows.volume))

    streamed, atr = _step_by_step(o, h, low, c, v, P)
    batch = indicator_batch_nb(o, h, low, c, v, P)

    assert np.array_equal(streamed, batch, equal_nan=True)
    assert np.array_equal(atr, atr_nb(h, low, c, P.atr_period), equal_nan=True)
    assert np.isnan(batch[: P.ema_slow - 1]).any() and np.isfinite(batch[P.ema_slow :]).all()


def test_reset_brings_the_step_back_to_empty_history() -> None:
    rng = np.random.default_rng(1)
    c = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, 300)))
    o = np.concatenate([[c[0]], c[:-1]])
    h, low, v = np.maximum(o, c) * 1.002, np.minimum(o, c) * 0.998, rng.uniform(0, 10, 300)
    s = indicator_state(P)
    row = np.empty(len(INDICATOR_COLUMNS))
    for i in range(150):
        indicator_step_nb(s, P, c[-i - 1], c[-i - 1], c[-i - 1], c[-i - 1], 1.0, row)

    indicator_reset_nb(s)
    rows = np.empty((300, len(INDICATOR_COLUMNS)))
    for i in range(300):
        indicator_step_nb(s, P, o[i], h[i], low[i], c[i], v[i], rows[i])

    assert np.array_equal(rows, indicator_batch_nb(o, h, low, c, v, P), equal_nan=True)


# ---- causality on real candles ---------------------------------------------------------------


@pytest.mark.shared_data
def test_a_row_is_the_same_from_any_prefix_of_history_ending_at_it() -> None:
    compute = _compute(_rows("btc"))
    full = compute(0, len(_rows("btc").close))

    found = prefix_violations(
        compute, full, _random_rows(len(full), 40, seed=11), INDICATOR_COLUMNS
    )

    assert found == [], "\n".join(map(str, found[:10]))


@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["eth", "1m"])
def test_a_shorter_history_agrees_after_each_columns_declared_warmup(name: str) -> None:
    compute = _compute(_rows(name))
    full = compute(0, len(_rows(name).close))
    starts = [1, 2, 777, 31_337, 100_001]
    warmups = indicator_warmups(P)

    first_values = [FIRST_VALUE[name] for name in INDICATOR_COLUMNS]

    found = warmup_violations(compute, full, starts, warmups, INDICATOR_COLUMNS)
    early = warmup_violations(compute, full, starts, first_values, INDICATOR_COLUMNS)

    assert found == [], "\n".join(map(str, found[:10]))
    # The check has teeth: at their first value the exponential columns still remember history.
    assert {v.column for v in early} == set(INDICATOR_COLUMNS) - set(WINDOW_COLUMNS)


@pytest.mark.shared_data
def test_the_prefix_check_catches_a_column_that_reads_the_next_candle() -> None:
    honest = _compute(_rows("btc"))
    leaky_column = COLUMN["macd_hist_atr"]

    def leaky(start: int, stop: int) -> F64:
        out = honest(start, stop)
        out[:-1, leaky_column] = out[1:, leaky_column]
        out[-1, leaky_column] = np.nan  # the next candle is not there yet
        return out

    full = leaky(0, 30_000)
    found = prefix_violations(leaky, full, _random_rows(30_000, 10, seed=5), INDICATOR_COLUMNS)

    assert found and {v.column for v in found} == {"macd_hist_atr"}


@pytest.mark.shared_data
def test_the_warmup_check_catches_a_warmup_declared_too_short() -> None:
    compute = _compute(_rows("btc"))
    full = compute(0, 40_000)
    too_short = list(indicator_warmups(P))
    too_short[COLUMN["ema_slow_dist_atr"]] = 200  # the EMA(50) seed still weighs 2e-4

    found = warmup_violations(compute, full, [1, 9_999, 23_456], too_short, INDICATOR_COLUMNS)

    assert found and {v.column for v in found} == {"ema_slow_dist_atr"}


# ---- definitions -----------------------------------------------------------------------------


def test_default_warmups_let_exponential_memory_fade_below_1e_12() -> None:
    warmups = dict(zip(INDICATOR_COLUMNS, indicator_warmups(P), strict=True))

    # ATR(14): 14 + ceil(ln 1e-12 / ln(13/14)) = 387; EMA(50): 49 + 691; MACD: 25 + 360.
    assert warmups == {
        "rsi": 387,
        "atr_pct": 387,
        "ema_fast_dist_atr": 387,
        "ema_slow_dist_atr": 740,
        "ema_spread_atr": 740,
        "macd_atr": 387,
        "macd_signal_atr": 387,
        "macd_hist_atr": 387,
        "bb_width_pct": 19,
        "bb_position": 19,
        "volume_z": 19,
        "realized_vol_pct": 20,
        "return_atr": 387,
    }


@pytest.mark.shared_data
def test_each_column_starts_on_the_first_bar_where_all_its_inputs_exist() -> None:
    rows = _rows("eth")
    out = _compute(rows)(0, 1_000)

    first = {name: int(np.argmax(np.isfinite(out[:, k]))) for name, k in COLUMN.items()}

    assert first == FIRST_VALUE
    assert np.isfinite(out[49:]).all()


def test_a_market_that_never_moves_has_rsi_0_a_centred_flat_band_and_no_atr_scale() -> None:
    o, h, low, c, v = _flat_market(400)

    out = indicator_batch_nb(o, h, low, c, v, P)
    streamed, atr = _step_by_step(o, h, low, c, v, P)

    last = dict(zip(INDICATOR_COLUMNS, out[-1], strict=True))
    assert last["rsi"] == 0.0 and last["atr_pct"] == 0.0
    assert last["bb_width_pct"] == 0.0 and last["bb_position"] == 0.5
    assert last["volume_z"] == 0.0 and last["realized_vol_pct"] == 0.0
    for name in INDICATOR_COLUMNS:
        if name.endswith("_atr"):
            assert np.isnan(out[:, COLUMN[name]]).all(), name
    assert np.isnan(atr).all()  # other families get no ATR to measure in
    assert np.array_equal(streamed, out, equal_nan=True)


def test_bollinger_position_is_0_at_the_lower_band_and_1_at_the_upper_band() -> None:
    # A window alternating 99 / 101 has middle 100 and stddev 1; bands at 98 and 102.
    closes = np.array([99.0, 101.0] * 10 + [102.0 + 2.0 / 19.0])
    o, h, low, v = closes, closes, closes, np.ones(len(closes))
    out = indicator_batch_nb(o, h, low, closes, v, P)
    window = closes[-20:]
    mean, std = window.mean(), window.std()

    position = out[-1, COLUMN["bb_position"]]
    width = out[-1, COLUMN["bb_width_pct"]]

    assert position == pytest.approx((closes[-1] - (mean - 2 * std)) / (4 * std), rel=1e-12)
    assert width == pytest.approx(4 * std / mean * 100.0, rel=1e-12)
    assert out[19, COLUMN["bb_position"]] == pytest.approx(0.75, rel=1e-12)  # close 101 = m + s


def test_volume_z_is_the_volume_in_standard_deviations_from_its_mean() -> None:
    volume = np.array([10.0, 20.0] * 10 + [40.0])
    flat = np.full(len(volume), 100.0)

    out = indicator_batch_nb(flat, flat, flat, flat, volume, P)

    assert out[-1, COLUMN["volume_z"]] == pytest.approx(
        (40.0 - volume[-20:].mean()) / volume[-20:].std(), rel=1e-12
    )


# ---- plain-Python references on random markets -----------------------------------------------

moves = st.lists(st.one_of(st.just(0.0), st.floats(-0.05, 0.05)), min_size=0, max_size=120)
periods = st.integers(2, 30)


def _closes(steps: list[float]) -> F64:
    return 100.0 * np.exp(np.cumsum(np.array([0.0, *steps])))


def _wilder(values: list[float], period: int) -> list[float]:
    """First average: the mean of the first ``period`` values; then (avg * (n-1) + x) / n."""
    out = [sum(values[:period]) / period]
    for x in values[period:]:
        out.append((out[-1] * (period - 1) + x) / period)
    return out


def rsi_reference(closes: F64, period: int) -> F64:
    changes = [float(b - a) for a, b in pairwise(closes)]
    out = np.full(len(closes), np.nan)
    if len(changes) < period:
        return out
    gains = _wilder([max(d, 0.0) for d in changes], period)
    losses = _wilder([max(-d, 0.0) for d in changes], period)
    for k, (g, lo) in enumerate(zip(gains, losses, strict=True)):
        out[period + k] = 100.0 * g / (g + lo) if g + lo > 0.0 else 0.0
    return out


def atr_reference(high: F64, low: F64, close: F64, period: int) -> F64:
    ranges = [
        max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
        for i in range(1, len(close))
    ]
    out = np.full(len(close), np.nan)
    if len(ranges) >= period:
        out[period:] = _wilder(ranges, period)
    return out


def ema_reference(x: F64, period: int) -> F64:
    out = np.full(len(x), np.nan)
    if len(x) < period:
        return out
    k = 2.0 / (period + 1)
    out[period - 1] = sum(x[:period]) / period
    for i in range(period, len(x)):
        out[i] = out[i - 1] + k * (x[i] - out[i - 1])
    return out


@settings(max_examples=200, deadline=None)
@given(moves, periods)
def test_rsi_matches_a_plain_python_wilder_rsi(steps: list[float], period: int) -> None:
    closes = _closes(steps)

    got, want = rsi_nb(closes, period), rsi_reference(closes, period)

    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.allclose(got, want, rtol=0.0, atol=1e-9 * 100.0, equal_nan=True)


@settings(max_examples=200, deadline=None)
@given(moves, periods, st.data())
def test_atr_matches_a_plain_python_wilder_atr(
    steps: list[float], period: int, data: st.DataObject
) -> None:
    close = _closes(steps)
    open_ = np.concatenate([[close[0]], close[:-1]])
    wicks = st.lists(st.floats(0.0, 0.03), min_size=len(close), max_size=len(close))
    high = np.maximum(open_, close) * (1.0 + np.array(data.draw(wicks)))
    low = np.minimum(open_, close) * (1.0 - np.array(data.draw(wicks)))

    got, want = atr_nb(high, low, close, period), atr_reference(high, low, close, period)

    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.allclose(got, want, rtol=1e-9, atol=1e-12, equal_nan=True)


@settings(max_examples=200, deadline=None)
@given(moves, periods)
def test_ema_matches_a_plain_python_sma_seeded_ema(steps: list[float], period: int) -> None:
    closes = _closes(steps)

    got, want = ema_nb(closes, period), ema_reference(closes, period)

    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.allclose(got, want, rtol=1e-9, atol=0.0, equal_nan=True)
