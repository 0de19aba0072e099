"""Fair value gaps and calendar levels on real CATMAN 5m futures candles: against slow
plain-Python references, streaming against batch, and causality (prefix and warm-up checks)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache

import numpy as np
import pytest
import talib

from slt.adapters.importers.readers import RawRows
from slt.domain.features.causality import Compute, prefix_violations, warmup_violations
from slt.domain.features.fvg_nb import (
    FVG_COLUMNS,
    FvgParams,
    fvg_batch_nb,
    fvg_state,
    fvg_step_nb,
    fvg_warmups,
)
from slt.domain.features.levels_nb import (
    LEVELS_COLUMNS,
    LevelsParams,
    levels_batch_nb,
    levels_state,
    levels_step_nb,
    levels_warmups,
)
from slt.domain.series import F64, I64
from slt.domain.timeframes import DAY_MS, WEEK_MS
from tests.conftest import CATMAN_BTC_5M, CATMAN_ETH_5M, real_ohlcv

pytestmark = pytest.mark.shared_data

TF_MS = 300_000
TIGHT = FvgParams(max_age=60, capacity=3)  # small enough that gaps expire and get evicted


@cache
def _candles(name: str) -> tuple[RawRows, F64]:
    """Candles and their Wilder ATR(14) from TA-Lib (NaN for the first 14 candles)."""
    rows = real_ohlcv(CATMAN_BTC_5M if name == "btc" else CATMAN_ETH_5M)
    return rows, talib.ATR(rows.high, rows.low, rows.close, 14)


def _equal(a: F64, b: F64) -> bool:
    return bool(np.array_equal(a, b, equal_nan=True))


# --- slow reference: every gap's whole life from its definition, then the pool ---------------


@dataclass
class _Gap:
    bar: int
    bullish: bool
    top: float
    bottom: float
    fill: F64 = field(default_factory=lambda: np.empty(0))  # after candles bar+1, bar+2, ...
    first_touch: int | None = None
    mitigated: int | None = None
    end: int = 0  # first candle at which the gap is no longer in the pool


def _gaps(o: F64, h: F64, low: F64, c: F64, p: FvgParams) -> list[_Gap]:
    n = len(c)
    gaps = []
    for i in range(2, n):
        if h[i - 2] < low[i] and c[i - 1] > o[i - 1]:
            gaps.append(_Gap(i, True, low[i], h[i - 2]))
        elif low[i - 2] > h[i] and c[i - 1] < o[i - 1]:
            gaps.append(_Gap(i, False, low[i - 2], h[i]))
    for g in gaps:
        later = slice(g.bar + 1, min(n, g.bar + p.max_age + 1))
        if g.bullish:
            deepest = np.minimum.accumulate(low[later])
            g.fill = np.clip((g.top - deepest) / (g.top - g.bottom), 0.0, 1.0)
            touches = np.flatnonzero(low[later] <= g.top)
        else:
            deepest = np.maximum.accumulate(h[later])
            g.fill = np.clip((deepest - g.bottom) / (g.top - g.bottom), 0.0, 1.0)
            touches = np.flatnonzero(h[later] >= g.bottom)
        full = np.flatnonzero(g.fill >= 1.0)
        g.first_touch = g.bar + 1 + int(touches[0]) if len(touches) else None
        g.mitigated = g.bar + 1 + int(full[0]) if len(full) else None
        g.end = g.mitigated if g.mitigated is not None else g.bar + p.max_age + 1
    for bullish in (True, False):
        pool: list[_Gap] = []
        for g in (g for g in gaps if g.bullish == bullish):
            pool = [a for a in pool if a.end > g.bar]
            if len(pool) == p.capacity:
                evicted = pool.pop(0)
                evicted.end, evicted.mitigated = g.bar, None
            pool.append(g)
    return gaps


def fvg_reference(o: F64, h: F64, low: F64, c: F64, atr: F64, p: FvgParams) -> F64:
    n = len(c)
    out = np.full((n, len(FVG_COLUMNS)), np.nan)
    out[:, 0] = 0.0
    gaps = _gaps(o, h, low, c, p)
    starts = [g.bar for g in gaps]
    for g in gaps:
        out[g.bar, 0] = 1.0 if g.bullish else -1.0
        if np.isfinite(atr[g.bar]) and atr[g.bar] > 0:
            out[g.bar, 1] = (g.top - g.bottom) / atr[g.bar]
    for t in range(n):
        atr_ok = bool(np.isfinite(atr[t]) and atr[t] > 0)
        recent = gaps[bisect.bisect_left(starts, t - p.max_age) : bisect.bisect_right(starts, t)]
        for d, bullish in enumerate((True, False)):
            live = [g for g in recent if g.bullish == bullish and g.end > t]
            out[t, 12 + d] = len(live)
            out[t, 14 + d] = sum(1 for g in recent if g.bullish == bullish and g.mitigated == t)
            if not live:
                continue
            g = min(live, key=lambda g: (abs(c[t] - (g.top if bullish else g.bottom)), -g.bar))
            j = 2 + 5 * d
            if atr_ok:
                out[t, j] = (c[t] - g.top) / atr[t] if bullish else (g.bottom - c[t]) / atr[t]
                out[t, j + 1] = (g.top - g.bottom) / atr[t]
            out[t, j + 2] = t - g.bar
            out[t, j + 3] = 0.0 if t == g.bar else g.fill[t - g.bar - 1]
            out[t, j + 4] = float(g.first_touch is not None and g.first_touch <= t)
    return out


@pytest.mark.parametrize(
    ("name", "start", "p"),
    [("btc", 40_000, FvgParams()), ("eth", 100_000, FvgParams()), ("btc", 7, TIGHT)],
    ids=["btc-default", "eth-default", "btc-tight-pool"],
)
def test_fvg_kernel_matches_the_slow_reference_bit_for_bit(
    name: str, start: int, p: FvgParams
) -> None:
    rows, atr = _candles(name)
    part = slice(start, start + 12_000)
    args = (rows.open[part], rows.high[part], rows.low[part], rows.close[part], atr[part])

    got = fvg_batch_nb(*args, p)
    want = fvg_reference(*args, p)

    for k, column in enumerate(FVG_COLUMNS):
        assert _equal(got[:, k], want[:, k]), column
    assert (got[:, 0] != 0).sum() > 2_000  # real data: gaps are common
    assert got[:, 14].sum() > 500 and got[:, 15].sum() > 500


@pytest.mark.parametrize(
    "p",
    [FvgParams(capacity=1), FvgParams(max_age=30, capacity=2), FvgParams(max_age=0)],
    ids=["one-slot", "two-slots", "no-age"],
)
def test_fvg_kernel_matches_the_slow_reference_when_pools_evict_or_expire_at_once(
    p: FvgParams,
) -> None:
    # One slot: every gap evicts the last one, often the nearest. No age: a gap leaves the pool
    # at the candle after its creation, before any candle can fill it.
    rows, atr = _candles("eth")
    part = slice(20_000, 32_000)
    args = (rows.open[part], rows.high[part], rows.low[part], rows.close[part], atr[part])

    got = fvg_batch_nb(*args, p)
    want = fvg_reference(*args, p)

    for k, column in enumerate(FVG_COLUMNS):
        assert _equal(got[:, k], want[:, k]), column
    assert got[:, 12].max() == min(p.capacity, p.max_age + 1)


def test_tight_pool_reference_sees_gaps_expire_and_get_evicted() -> None:
    rows, _ = _candles("btc")
    part = slice(7, 12_007)

    gaps = _gaps(rows.open[part], rows.high[part], rows.low[part], rows.close[part], TIGHT)

    evicted = [g for g in gaps if g.mitigated is None and g.end < g.bar + TIGHT.max_age + 1]
    expired = [g for g in gaps if g.end == g.bar + TIGHT.max_age + 1]
    assert len(evicted) > 100 and len(expired) > 20


# --- slow reference for calendar levels, from datetime ----------------------------------------


def levels_reference(times: I64, h: F64, low: F64, c: F64, atr: F64, tf_ms: int) -> F64:
    n = len(c)
    stamps = [datetime.fromtimestamp(int(t) / 1000, UTC) for t in times]
    out = np.full((n, len(LEVELS_COLUMNS)), np.nan)
    for r, length in enumerate((timedelta(days=1), timedelta(weeks=1))):
        groups: dict[datetime, list[int]] = {}
        for i, stamp in enumerate(stamps):
            day = stamp.replace(hour=0, minute=0, second=0, microsecond=0)
            groups.setdefault(day - timedelta(days=day.weekday() if r else 0), []).append(i)
        complete = []  # (end ms, high, low) of each period observed from its start to its end
        for begin, idx in groups.items():
            end_ms = int((begin + length).timestamp() * 1000)
            first_ok = int(times[idx[0]]) == int(begin.timestamp() * 1000)
            if first_ok and int(times[idx[-1]]) + tf_ms == end_ms:
                complete.append((end_ms, h[idx].max(), low[idx].min()))
        ends = [e for e, _, _ in complete]
        for i in range(n):
            k = bisect.bisect_right(ends, int(times[i]) + tf_ms) - 1
            if k < 0:
                continue
            _, high, lowest = complete[k]
            if np.isfinite(atr[i]) and atr[i] > 0:
                out[i, 2 * r] = (high - c[i]) / atr[i]
                out[i, 2 * r + 1] = (c[i] - lowest) / atr[i]
            if r == 0:
                out[i, 4] = (high - c[i]) / c[i] * 100.0
                out[i, 5] = (c[i] - lowest) / c[i] * 100.0
    for i, stamp in enumerate(stamps):
        out[i, 6] = 0 if stamp.hour < 7 else 1 if stamp.hour < 12 else 2 if stamp.hour < 20 else 3
        out[i, 7] = stamp.weekday()
    return out


@pytest.mark.parametrize(("name", "start"), [("btc", 777), ("eth", 50_001)])
def test_levels_kernel_matches_the_datetime_reference_bit_for_bit(name: str, start: int) -> None:
    rows, atr = _candles(name)
    part = slice(start, start + 60_000)
    args = (rows.times_ms[part], rows.high[part], rows.low[part], rows.close[part], atr[part])

    got = levels_batch_nb(*args, LevelsParams(tf_ms=TF_MS))
    want = levels_reference(*args, TF_MS)

    for k, column in enumerate(LEVELS_COLUMNS):
        assert _equal(got[:, k], want[:, k]), column
    assert np.isfinite(got[:, 2]).mean() > 0.9


# --- streaming == batch ---------------------------------------------------------------------


def test_fvg_step_by_step_equals_the_batch_bit_for_bit() -> None:
    rows, atr = _candles("eth")
    part = slice(30_000, 45_000)
    o, h, low, c, a = rows.open[part], rows.high[part], rows.low[part], rows.close[part], atr[part]
    p = FvgParams()
    s = fvg_state(p)
    streamed = np.empty((len(c), len(FVG_COLUMNS)))

    for i in range(len(c)):
        fvg_step_nb(s, p, o[i], h[i], low[i], c[i], a[i], streamed[i])

    assert _equal(streamed, fvg_batch_nb(o, h, low, c, a, p))


def test_levels_step_by_step_equals_the_batch_bit_for_bit() -> None:
    rows, atr = _candles("btc")
    part = slice(5_555, 20_555)
    t, h, low, c, a = (
        rows.times_ms[part],
        rows.high[part],
        rows.low[part],
        rows.close[part],
        atr[part],
    )
    p = LevelsParams(tf_ms=TF_MS)
    s = levels_state(p)
    streamed = np.empty((len(c), len(LEVELS_COLUMNS)))

    for i in range(len(c)):
        levels_step_nb(s, p, t[i], h[i], low[i], c[i], a[i], streamed[i])

    assert _equal(streamed, levels_batch_nb(t, h, low, c, a, p))


# --- causality --------------------------------------------------------------------------------


def _fvg_compute(rows: RawRows, p: FvgParams, atr: F64 | None = None) -> Compute:
    """Rows of candles[start:stop]; the ATR comes from the same candles unless one is given."""

    def compute(start: int, stop: int) -> F64:
        o, h = rows.open[start:stop], rows.high[start:stop]
        low, c = rows.low[start:stop], rows.close[start:stop]
        a = talib.ATR(h, low, c, 14) if atr is None else atr[start:stop]
        return fvg_batch_nb(o, h, low, c, a, p)

    return compute


def _levels_compute(rows: RawRows, atr: F64 | None = None) -> Compute:
    def compute(start: int, stop: int) -> F64:
        h, low, c = rows.high[start:stop], rows.low[start:stop], rows.close[start:stop]
        a = talib.ATR(h, low, c, 14) if atr is None else atr[start:stop]
        return levels_batch_nb(rows.times_ms[start:stop], h, low, c, a, LevelsParams(tf_ms=TF_MS))

    return compute


def _random_rows(n: int, count: int, seed: int) -> list[int]:
    picked = np.random.default_rng(seed).integers(0, n, size=count)
    return sorted({0, 1, 2, 3, n - 1, *map(int, picked)})


@pytest.mark.parametrize("p", [FvgParams(), TIGHT], ids=["default", "tight-pool"])
def test_fvg_row_of_a_candle_is_the_same_from_any_prefix_ending_there(p: FvgParams) -> None:
    rows, _ = _candles("btc")
    compute = _fvg_compute(rows, p)
    full = compute(0, len(rows.close))

    found = prefix_violations(compute, full, _random_rows(len(full), 40, seed=3), FVG_COLUMNS)

    assert found == []


def test_levels_row_of_a_candle_is_the_same_from_any_prefix_ending_there() -> None:
    rows, _ = _candles("eth")
    compute = _levels_compute(rows)
    full = compute(0, len(rows.close))

    found = prefix_violations(compute, full, _random_rows(len(full), 60, seed=4), LEVELS_COLUMNS)

    assert found == []


@pytest.mark.parametrize("p", [FvgParams(), TIGHT], ids=["default", "tight-pool"])
def test_fvg_rows_match_the_full_run_after_the_declared_warmup(p: FvgParams) -> None:
    # The ATR is an input with its own warm-up (the engine adds it to every _atr column), so
    # each start reads the full run's ATR: what is checked here is the pool's own memory.
    rows, atr = _candles("btc")
    compute = _fvg_compute(rows, p, atr)
    full = compute(0, len(rows.close))
    starts = [1, 2, 3, 999, 31_337, 77_777, 140_000]
    warmups = fvg_warmups(p)

    found = warmup_violations(compute, full, starts, warmups, FVG_COLUMNS, rtol=0.0, atol=0.0)
    unwarmed = warmup_violations(compute, full, starts, [0] * len(warmups), FVG_COLUMNS)

    assert found == []
    assert unwarmed != []  # the check has teeth: right after a start the pools differ


def test_levels_rows_match_the_full_run_after_the_declared_warmup() -> None:
    rows, atr = _candles("btc")
    compute = _levels_compute(rows, atr)
    full = compute(0, len(rows.close))
    t = rows.times_ms
    after_monday = int(np.flatnonzero((t - 4 * DAY_MS) % WEEK_MS == 0)[3]) + 1  # worst case
    after_midnight = int(np.flatnonzero(t % DAY_MS == 0)[40]) + 1
    starts = [1, after_monday, after_midnight, 12_345, 100_001]
    warmups = levels_warmups(LevelsParams(tf_ms=TF_MS))

    found = warmup_violations(compute, full, starts, warmups, LEVELS_COLUMNS, rtol=0.0, atol=0.0)
    unwarmed = warmup_violations(compute, full, starts, [0] * len(warmups), LEVELS_COLUMNS)

    assert found == []
    assert {v.column for v in unwarmed} >= {"prev_day_high_dist_pct", "prev_week_low_dist_atr"}


@pytest.mark.parametrize("family", ["fvg", "levels"])
def test_the_prefix_check_catches_a_column_that_reads_the_next_candle(family: str) -> None:
    rows, _ = _candles("btc")
    n = 30_000
    honest = _fvg_compute(rows, FvgParams()) if family == "fvg" else _levels_compute(rows)
    names = FVG_COLUMNS if family == "fvg" else LEVELS_COLUMNS
    leaky_column = 12 if family == "fvg" else 6  # fvg_bull_count, session: never NaN

    def leaky(start: int, stop: int) -> F64:
        out = honest(start, stop)
        out[:-1, leaky_column] = out[1:, leaky_column]
        out[-1, leaky_column] = np.nan  # the next candle is not there
        return out

    found = prefix_violations(leaky, leaky(0, n), _random_rows(n, 10, seed=5), names)

    assert found and {v.column for v in found} == {names[leaky_column]}
