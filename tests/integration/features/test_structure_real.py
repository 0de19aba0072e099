"""The structure kernel on real BTC/ETH futures candles: against a slow plain-Python reference,
batch against streaming, and causality (prefix and warm-up) with a checker proved to catch leaks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import talib

from slt.domain.features.structure_nb import (
    STRUCTURE_COLUMNS,
    StructureParams,
    structure_batch_nb,
    structure_reset_nb,
    structure_state,
    structure_step_nb,
    structure_warmups,
)
from slt.domain.series import F64
from tests.conftest import CATMAN_BTC_1H, CATMAN_BTC_5M, CATMAN_ETH_5M, real_ohlcv

pytestmark = pytest.mark.shared_data

ATR_PERIOD = 14
# Wilder ATR forgets its start like (1 - 1/n)^t: 1e-9 after this many bars past its lookback.
ATR_WARMUP = ATR_PERIOD + math.ceil(math.log(1e-9) / math.log(1 - 1 / ATR_PERIOD))
COL = {name: j for j, name in enumerate(STRUCTURE_COLUMNS)}
ATR_COLUMNS = tuple(n for n in STRUCTURE_COLUMNS if n.endswith("_atr"))
EXACT_COLUMNS = tuple(n for n in STRUCTURE_COLUMNS if n not in ATR_COLUMNS)
SMALL = StructureParams(
    swing_left=3,
    swing_right=2,
    horizon=60,
    liquidity_tolerance_atr=0.25,
    ob_max_age=80,
    ob_capacity=3,
)


@dataclass
class Candles:
    o: F64
    h: F64
    low: F64
    c: F64
    v: F64

    def __len__(self) -> int:
        return len(self.c)

    def slice(self, start: int, stop: int | None = None) -> Candles:
        return Candles(*(np.ascontiguousarray(x[start:stop]) for x in self.arrays()))

    def arrays(self) -> tuple[F64, F64, F64, F64, F64]:
        return self.o, self.h, self.low, self.c, self.v

    def atr(self) -> F64:
        return np.asarray(talib.ATR(self.h, self.low, self.c, ATR_PERIOD), dtype=np.float64)


def load(path: Path, start: int, stop: int | None) -> Candles:
    raw = real_ohlcv(path)
    return Candles(raw.open, raw.high, raw.low, raw.close, raw.volume).slice(start, stop)


@pytest.fixture(scope="module")
def btc() -> Candles:
    return load(CATMAN_BTC_5M, 60_000, 80_000)


@pytest.fixture(scope="module")
def eth() -> Candles:
    return load(CATMAN_ETH_5M, 100_000, 120_000)


def run(x: Candles, p: StructureParams, atr: F64 | None = None) -> F64:
    return structure_batch_nb(*x.arrays(), x.atr() if atr is None else atr, p)


def same(a: F64, b: F64) -> np.ndarray:
    return np.asarray((a == b) | (np.isnan(a) & np.isnan(b)), dtype=bool)


# --------------------------------------------------------------------------------------------
# The reference: whole-array brute force, both sides written out, no ring buffers, no mirroring.


@dataclass
class Swing:
    confirm: int
    pivot: int
    level: float


@dataclass
class Block:
    top: float
    bottom: float
    created: int
    touched: bool = False


@dataclass
class Side:
    high: bool  # True: swing highs, bullish breaks and blocks, buy-side pools
    swings: list[Swing]
    broken: set[int] = field(default_factory=set)
    blocks: list[Block] = field(default_factory=list)
    pools: list[tuple[float, int]] = field(default_factory=list)  # level, newest pivot


def reference_swings(h: F64, low: F64, left: int, right: int) -> tuple[list[Swing], list[Swing]]:
    highs, lows = [], []
    for q in range(left, len(h) - right):
        if h[q] > h[q - left : q].max() and h[q] >= h[q + 1 : q + right + 1].max():
            highs.append(Swing(q + right, q, float(h[q])))
        if low[q] < low[q - left : q].min() and low[q] <= low[q + 1 : q + right + 1].min():
            lows.append(Swing(q + right, q, float(low[q])))
    return highs, lows


def reference_structure(x: Candles, atr: F64, p: StructureParams) -> F64:
    """Every column, bar by bar, straight from the definitions in structure_nb's docstring."""
    o, h, low, c = x.o, x.h, x.low, x.c
    n, H = len(c), p.horizon
    highs, lows = reference_swings(h, low, p.swing_left, p.swing_right)
    sides = (Side(True, highs), Side(False, lows))
    breaks: list[tuple[int, int]] = []  # bar, direction
    out = np.full((n, len(STRUCTURE_COLUMNS)), np.nan)
    for t in range(n):
        row = out[t]
        prior = breaks[-1][1] if breaks and t - 1 - breaks[-1][0] <= H else 0
        row[COL["ob_invalidated"]] = row[COL["liq_sweep"]] = 0.0
        row[COL["bos"]] = row[COL["choch"]] = row[COL["ob_new"]] = 0.0
        latest_levels = []
        for side in sides:
            sign = 1 if side.high else -1
            known = [s for s in side.swings if s.confirm <= t and t - s.pivot <= H]
            invalidated = swept = False
            for b in list(side.blocks):
                gone = c[t] < b.bottom if side.high else c[t] > b.top
                into = low[t] <= b.top if side.high else h[t] >= b.bottom
                if t - b.created > p.ob_max_age:
                    side.blocks.remove(b)
                elif gone:
                    side.blocks.remove(b)
                    invalidated = True
                elif into:
                    b.touched = True
            for level, newest in list(side.pools):
                if t - newest > H:
                    side.pools.remove((level, newest))
                elif (h[t] > level) if side.high else (low[t] < level):
                    side.pools.remove((level, newest))
                    swept |= bool((c[t] < level) if side.high else (c[t] > level))
            row[COL["ob_invalidated"]] += sign * invalidated
            row[COL["liq_sweep"]] -= sign * swept  # an outside bar sweeping both sides: 0
            new = [s for s in known if s.confirm == t]
            if new and atr[t] > 0:
                s_new = new[0]
                members = []
                for e in known:
                    if (
                        e.confirm >= t
                        or abs(e.level - s_new.level) > p.liquidity_tolerance_atr * atr[t]
                    ):
                        continue
                    between = slice(e.pivot + 1, s_new.pivot)
                    if side.high:
                        intact = h[between].max(initial=-np.inf) <= max(e.level, s_new.level)
                    else:
                        intact = low[between].min(initial=np.inf) >= min(e.level, s_new.level)
                    if intact:
                        members.append(e.level)
                if members:
                    pick = max if side.high else min
                    side.pools.append((pick([*members, s_new.level]), s_new.pivot))
            latest = max(known, key=lambda s: s.confirm) if known else None
            broke = (
                latest is not None
                and latest.pivot not in side.broken
                and (c[t] > latest.level if side.high else c[t] < latest.level)
            )
            if broke:
                assert latest is not None
                side.broken.add(latest.pivot)
                span = list(range(latest.pivot, t))
                against = [j for j in span if (c[j] < o[j] if side.high else c[j] > o[j])]
                if against:
                    j = against[-1]
                elif side.high:
                    j = [q for q in span if low[q] == low[span].min()][-1]
                else:
                    j = [q for q in span if h[q] == h[span].max()][-1]
                if len(side.blocks) == p.ob_capacity:
                    side.blocks.remove(min(side.blocks, key=lambda b: b.created))
                side.blocks.append(Block(float(h[j]), float(low[j]), t))
                kind = "choch" if prior == -sign else "bos"
                row[COL[kind]] = row[COL["ob_new"]] = sign
                breaks.append((t, sign))
            name = "high" if side.high else "low"
            latest_levels.append(latest.level if latest else np.nan)
            if latest is not None:
                row[COL[f"swing_{name}_age"]] = t - latest.pivot
                if atr[t] > 0:
                    row[COL[f"swing_{name}_dist_atr"]] = sign * (latest.level - c[t]) / atr[t]
            kind = "bull" if side.high else "bear"
            if side.blocks:
                if side.high:
                    best = max(side.blocks, key=lambda b: (b.top, b.created))
                    gap = c[t] - best.top
                else:
                    best = max(side.blocks, key=lambda b: (-b.bottom, b.created))
                    gap = best.bottom - c[t]
                row[COL[f"ob_{kind}_age"]] = t - best.created
                row[COL[f"ob_{kind}_touched"]] = float(best.touched)
                if atr[t] > 0:
                    row[COL[f"ob_{kind}_dist_atr"]] = gap / atr[t]
            if side.pools and atr[t] > 0:
                gaps = [(lv - c[t]) if side.high else (c[t] - lv) for lv, _ in side.pools]
                row[COL[f"liq_{'buy' if side.high else 'sell'}_dist_atr"]] = min(gaps) / atr[t]
        recent = bool(breaks) and t - breaks[-1][0] <= H
        row[COL["trend"]] = breaks[-1][1] if recent else 0.0
        row[COL["bars_since_break"]] = t - breaks[-1][0] if recent else np.nan
        sh, sl = latest_levels
        row[COL["swing_range_pct"]] = (sh - sl) / c[t] * 100.0
        row[COL["premium_discount"]] = (c[t] - sl) / (sh - sl) if sh > sl else np.nan
    return out


# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("params", [StructureParams(), SMALL], ids=["default", "small"])
@pytest.mark.parametrize("market", ["btc", "eth"])
def test_kernel_matches_the_plain_python_reference_event_for_event(
    market: str, params: StructureParams, request: pytest.FixtureRequest
) -> None:
    x: Candles = request.getfixturevalue(market)
    atr = x.atr()

    kernel = run(x, params, atr)
    expected = reference_structure(x, atr, params)

    for name in STRUCTURE_COLUMNS:
        j = COL[name]
        assert same(kernel[:, j], expected[:, j]).all(), name
    for event in ("bos", "choch", "ob_new", "ob_invalidated", "liq_sweep"):
        for code in (1, -1):
            assert (kernel[:, COL[event]] == code).sum() >= 10, (event, code)


@pytest.mark.parametrize(
    "params",
    [
        # one block that lives a single bar, wide pools, several pivots pending at once
        StructureParams(1, 4, 40, liquidity_tolerance_atr=2.0, ob_max_age=0, ob_capacity=1),
        # two blocks replaced by newer ones, pools only at exactly equal swings, long horizon
        StructureParams(6, 1, 500, liquidity_tolerance_atr=0.0, ob_max_age=2_000, ob_capacity=2),
    ],
    ids=["short-lived", "long-lived"],
)
def test_kernel_matches_the_reference_with_parameters_at_their_limits(
    btc: Candles, params: StructureParams
) -> None:
    x = btc.slice(0, 8_000)
    atr = x.atr()

    kernel = run(x, params, atr)
    expected = reference_structure(x, atr, params)

    for name in STRUCTURE_COLUMNS:
        assert same(kernel[:, COL[name]], expected[:, COL[name]]).all(), name
    assert (kernel[:, COL["ob_new"]] != 0).sum() >= 100
    assert (kernel[:, COL["liq_sweep"]] != 0).sum() >= 5


def test_batch_equals_the_streaming_step_bit_for_bit(btc: Candles) -> None:
    atr = btc.atr()
    batch = run(btc, SMALL, atr)
    state = structure_state(SMALL)
    streamed = np.empty_like(batch)

    for i in range(len(btc)):
        structure_step_nb(
            state, SMALL, btc.o[i], btc.h[i], btc.low[i], btc.c[i], btc.v[i], atr[i], streamed[i]
        )

    assert same(batch, streamed).all()


def test_a_reset_state_continues_exactly_like_a_new_one(eth: Candles) -> None:
    atr = eth.atr()
    state = structure_state(StructureParams())
    scratch = np.empty(len(STRUCTURE_COLUMNS))
    for i in range(5_000):
        structure_step_nb(
            state, StructureParams(), eth.o[i], eth.h[i], eth.low[i], eth.c[i], 0.0, atr[i], scratch
        )
    structure_reset_nb(state)
    rows = np.empty((3_000, len(STRUCTURE_COLUMNS)))

    for i in range(3_000):
        structure_step_nb(
            state, StructureParams(), eth.o[i], eth.h[i], eth.low[i], eth.c[i], 0.0, atr[i], rows[i]
        )

    assert same(rows, run(eth.slice(0, 3_000), StructureParams(), atr[:3_000])).all()


# ---- causality checkers --------------------------------------------------------------------

Batch = Callable[[Candles, F64], F64]


def kernel_batch(p: StructureParams) -> Batch:
    return lambda x, atr: structure_batch_nb(*x.arrays(), atr, p)


def prefix_mismatches(batch: Batch, x: Candles, rows: np.ndarray) -> set[str]:
    """Columns whose row t differs between the full run and a run on candles[:t+1]."""
    atr = x.atr()
    full = batch(x, atr)
    bad = set()
    for t in rows:
        t = int(t)
        row = batch(x.slice(0, t + 1), atr[: t + 1])[t]
        bad |= {n for n in STRUCTURE_COLUMNS if not same(row[COL[n]], full[t, COL[n]])}
    return bad


def warmup_mismatches(
    batch: Batch, x: Candles, starts: list[int], warmups: tuple[int, ...]
) -> set[str]:
    """Columns whose rows t >= s + warm-up differ between the full run and a run on candles[s:]
    with the ATR restarted too: ATR columns beyond 1e-9, the others at all."""
    full = batch(x, x.atr())
    bad = set()
    for s in starts:
        part = x.slice(s)
        late = batch(part, part.atr())
        for name, w in zip(STRUCTURE_COLUMNS, warmups, strict=True):
            a, b = late[w:, COL[name]], full[s + w :, COL[name]]
            if name in ATR_COLUMNS:
                ok = np.isclose(a, b, rtol=1e-9, atol=1e-9) | (np.isnan(a) & np.isnan(b))
            else:
                ok = same(a, b)
            if not ok.all():
                bad.add(name)
    return bad


def test_every_row_equals_the_last_row_of_a_run_on_its_prefix(btc: Candles) -> None:
    rows = np.random.default_rng(7).integers(0, len(btc), 60)

    assert prefix_mismatches(kernel_batch(StructureParams()), btc, rows) == set()
    assert prefix_mismatches(kernel_batch(SMALL), btc.slice(0, 8_000), rows % 8_000) == set()


def test_the_prefix_check_catches_a_column_that_reads_the_next_candle(btc: Candles) -> None:
    def leaky(x: Candles, atr: F64) -> F64:
        out = structure_batch_nb(*x.arrays(), atr, SMALL)
        out[:, COL["trend"]] = np.append(out[1:, COL["trend"]], np.nan)
        return out

    rows = np.random.default_rng(3).integers(0, 5_000, 40)

    assert prefix_mismatches(leaky, btc.slice(0, 5_000), rows) == {"trend"}


@pytest.mark.parametrize("params", [StructureParams(), SMALL], ids=["default", "small"])
def test_rows_after_the_declared_warmups_equal_the_full_run(
    btc: Candles, params: StructureParams
) -> None:
    warmups = structure_warmups(params, ATR_WARMUP)

    assert warmup_mismatches(kernel_batch(params), btc, [1, 777, 3_001, 9_999], warmups) == set()


def test_the_warmup_check_catches_every_column_without_a_warmup(btc: Candles) -> None:
    none = (0,) * len(STRUCTURE_COLUMNS)

    bad = warmup_mismatches(kernel_batch(SMALL), btc, list(range(1, 19_000, 250)), none)

    assert bad == set(STRUCTURE_COLUMNS)


def test_daily_sized_structure_warms_up_within_its_declared_bars_on_hourly_data() -> None:
    x = load(CATMAN_BTC_1H, 0, None)
    daily = StructureParams(swing_left=2, swing_right=2, horizon=30, ob_max_age=30)
    warmups = structure_warmups(daily, ATR_WARMUP)
    starts = list(range(1, len(x) - 2_000, 997))

    assert warmup_mismatches(kernel_batch(daily), x, starts, warmups) == set()
    assert warmups[COL["trend"]] == 62


def test_columns_that_do_not_use_the_atr_are_unchanged_without_one(eth: Candles) -> None:
    with_atr = run(eth, StructureParams())
    without = run(eth, StructureParams(), np.full(len(eth), np.nan))

    for name in (
        "trend",
        "bos",
        "choch",
        "bars_since_break",
        "premium_discount",
        "swing_range_pct",
        "swing_high_age",
        "swing_low_age",
        "ob_new",
        "ob_invalidated",
        "ob_bull_age",
        "ob_bear_touched",
    ):
        assert same(with_atr[:, COL[name]], without[:, COL[name]]).all(), name
    for name in ATR_COLUMNS:
        assert np.isnan(without[:, COL[name]]).all(), name
    assert (without[:, COL["liq_sweep"]] == 0).all()
