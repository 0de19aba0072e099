"""Claims of docs/features.md about smartmoneyconcepts 0.0.27, pinned on real BTC 5m data.

smc labels events at bars before they could be known and rewrites past labels when later
candles arrive; our structure family does neither. Where the two definitions coincide (swing
pivots, break bars) our events are smc's, shifted to the bar where they become knowable.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from slt.domain.features.structure_nb import StructureParams
from tests.conftest import CATMAN_BTC_5M
from tests.integration.features.test_structure_real import (
    COL,
    Candles,
    kernel_batch,
    load,
    prefix_mismatches,
    run,
)

with contextlib.redirect_stdout(io.StringIO()):  # smc greets on import
    from smartmoneyconcepts import smc

pytestmark = pytest.mark.shared_data

L = 5  # smc swing_length; its pivot window is [p - L + 1, p + L]
# Our definition that coincides with smc's unfiltered pivots, up to ties on the left side.
COINCIDING = StructureParams(swing_left=L - 1, swing_right=L, horizon=2_000, ob_max_age=10)
CUTS = (4_000, 9_000, 14_000, 19_000)


@dataclass
class Peer:
    x: Candles
    swings: pd.DataFrame
    breaks: pd.DataFrame
    blocks: pd.DataFrame
    pools: pd.DataFrame


def frame(x: Candles, stop: int | None = None) -> pd.DataFrame:
    cols = {"open": x.o, "high": x.h, "low": x.low, "close": x.c, "volume": x.v}
    return pd.DataFrame({k: v[:stop] for k, v in cols.items()})


def run_smc(x: Candles, stop: int | None = None) -> Peer:
    df = frame(x, stop)
    swings = smc.swing_highs_lows(df, L)
    return Peer(
        x,
        swings,
        smc.bos_choch(df, swings),
        smc.ob(df, swings),
        smc.liquidity(df, swings),
    )


@pytest.fixture(scope="module")
def x() -> Candles:
    return load(CATMAN_BTC_5M, 60_000, 80_000)  # 2023-07-28 .. 2023-10-05


@pytest.fixture(scope="module")
def peer(x: Candles) -> Peer:
    return run_smc(x)


@pytest.fixture(scope="module")
def prefixes(x: Candles) -> dict[int, Peer]:
    return {m: run_smc(x, m) for m in CUTS}


def labels_differ(full: pd.Series, part: pd.Series) -> np.ndarray:
    a, b = full.to_numpy()[: len(part)], part.to_numpy()
    return np.flatnonzero(~((a == b) | (np.isnan(a) & np.isnan(b))))


def smc_events(breaks: pd.DataFrame) -> pd.DataFrame:
    return breaks[breaks.BOS.notna() | breaks.CHOCH.notna()]


def raw_pivots(x: Candles, highs: bool) -> np.ndarray:
    """smc's own pivot rule before its filtering: the extreme of bars p - L + 1 .. p + L."""
    s = pd.Series(x.h if highs else x.low)
    window = s.shift(-L).rolling(2 * L)
    return np.asarray(s == (window.max() if highs else window.min()), dtype=bool)


# ---- swings ---------------------------------------------------------------------------------


def test_smc_swings_are_our_swings_stamped_right_length_bars_before_they_are_known(
    x: Candles, peer: Peer
) -> None:
    ours = run(x, COINCIDING)
    labels = peer.swings.HighLow.to_numpy()
    n = len(x)

    for code, name, prices in ((1, "swing_high_age", x.h), (-1, "swing_low_age", x.low)):
        theirs = set(np.flatnonzero(labels == code)) - {0, n - 1}
        ours_pivots = set(np.flatnonzero(ours[:, COL[name]] == L) - L)
        shared = theirs & ours_pivots
        assert len(shared) >= 0.99 * len(theirs)
        # the rest are plateaus: an equal extreme on the left, where we pivot on the first bar
        for p in theirs - ours_pivots:
            assert (prices[p - L + 1 : p] == prices[p]).any()
        # where they coincide we know the swing exactly L bars after smc stamps it
        confirmed = np.array(sorted(shared)) + L
        assert (ours[confirmed, COL[name]] == L).all()


def test_smc_labels_the_first_and_last_candles_as_swings_whatever_their_prices(
    x: Candles, peer: Peer, prefixes: dict[int, Peer]
) -> None:
    labels = peer.swings.HighLow.to_numpy()

    assert not raw_pivots(x, True)[[0, -1]].any() and not raw_pivots(x, False)[[0, -1]].any()
    assert not np.isnan(labels[0]) and not np.isnan(labels[-1])
    for m, part in prefixes.items():
        assert not np.isnan(part.swings.HighLow.to_numpy()[m - 1])


def test_smc_drops_swings_when_a_later_swing_of_the_same_kind_appears(
    x: Candles, peer: Peer
) -> None:
    labels = peer.swings.HighLow.to_numpy()

    raw_highs = raw_pivots(x, True)
    filtered_out = np.flatnonzero(raw_highs & (labels != 1))
    assert len(filtered_out) > 0.15 * raw_highs.sum()
    ours = run(x, COINCIDING)
    kept_by_us = set(np.flatnonzero(ours[:, COL["swing_high_age"]] == L) - L)
    assert len(kept_by_us & set(filtered_out)) > 100


def test_smc_swing_labels_of_past_bars_change_when_later_candles_arrive(
    peer: Peer, prefixes: dict[int, Peer]
) -> None:
    changed = [
        labels_differ(peer.swings.HighLow, part.swings.HighLow) for part in prefixes.values()
    ]

    assert all(m - 1 in d for m, d in zip(prefixes, changed, strict=True))  # the forced last bar
    assert sum(len(d[d < m - 1]) for m, d in zip(prefixes, changed, strict=True)) > 0


# ---- breaks ---------------------------------------------------------------------------------


def test_smc_stamps_bos_and_choch_on_the_broken_swing_before_the_break(peer: Peer) -> None:
    events = smc_events(peer.breaks)
    early = events.BrokenIndex.to_numpy() - events.index.to_numpy()

    assert (early >= 2).all()
    assert np.median(early) >= 8


def test_smc_keeps_a_break_only_once_a_later_swing_confirms_the_pattern(peer: Peer) -> None:
    events = smc_events(peer.breaks)
    pivots = np.flatnonzero(~np.isnan(peer.swings.HighLow.to_numpy()))
    order = {p: k for k, p in enumerate(pivots)}
    # the fourth swing of the pattern follows the stamped one by two swings
    fourth = np.array([pivots[order[s] + 2] for s in events.index])

    after_break = fourth + L > events.BrokenIndex.to_numpy()

    assert after_break.mean() > 0.9


def test_smc_drops_breaks_not_yet_broken_at_the_end_of_the_data(
    peer: Peer, prefixes: dict[int, Peer]
) -> None:
    full = smc_events(peer.breaks)
    dropped = 0
    for m, part in prefixes.items():
        pending = full[(full.index < m) & (full.BrokenIndex >= m)]
        assert not set(pending.index) & set(smc_events(part.breaks).index)
        dropped += len(pending)

    assert dropped > 0
    assert (
        peer.breaks.BrokenIndex.notna() & peer.breaks.BOS.isna() & peer.breaks.CHOCH.isna()
    ).any()


def test_our_break_bars_are_smc_break_bars_in_the_same_direction_where_both_break(
    x: Candles, peer: Peer
) -> None:
    ours = run(x, COINCIDING)
    direction = ours[:, COL["bos"]] + ours[:, COL["choch"]]
    events = smc_events(peer.breaks)
    smc_direction = events.BOS.fillna(events.CHOCH).to_numpy()
    bars = events.BrokenIndex.to_numpy().astype(int)

    shared = direction[bars] != 0

    assert shared.mean() > 0.85
    assert (direction[bars[shared]] == smc_direction[shared]).all()


# ---- order blocks ---------------------------------------------------------------------------


def test_smc_order_blocks_of_past_bars_change_thousands_of_bars_later(
    peer: Peer, prefixes: dict[int, Peer]
) -> None:
    farthest = max(
        m - labels_differ(peer.blocks.OB, part.blocks.OB).min(initial=m)
        for m, part in prefixes.items()
    )

    assert farthest > 1_000


def test_smc_keeps_few_of_the_order_blocks_it_creates(x: Candles, peer: Peer) -> None:
    kept = int(peer.blocks.OB.notna().sum())
    ours = run(x, COINCIDING)
    created_by_us = int((ours[:, COL["ob_new"]] != 0).sum())

    assert kept < 0.1 * created_by_us


# ---- liquidity ------------------------------------------------------------------------------


def test_smc_liquidity_tolerance_comes_from_the_range_of_the_whole_series(x: Candles) -> None:
    m = 5_000  # the slice's lowest low comes later, at bar 5924
    assert x.low[:m].min() > x.low.min()
    early = slice(0, m - 1_000)  # pools stamped long before the cut

    alone = smc.liquidity(frame(x, m), smc.swing_highs_lows(frame(x, m), L))
    full = smc.liquidity(frame(x), smc.swing_highs_lows(frame(x), L))

    assert len(labels_differ(full.Level[early], alone.Level[early])) > 0


def test_smc_stamps_a_pool_on_its_first_swing_long_before_the_last_one_exists(
    peer: Peer,
) -> None:
    pools = peer.pools.dropna(subset=["Liquidity"])

    known = pools.End.to_numpy() + L - pools.index.to_numpy()

    assert np.median(known) > 50


# ---- ours, on the same cuts -----------------------------------------------------------------


def test_our_rows_do_not_change_when_later_candles_arrive(x: Candles) -> None:
    rows = np.array(CUTS) - 1

    assert prefix_mismatches(kernel_batch(COINCIDING), x, rows) == set()
