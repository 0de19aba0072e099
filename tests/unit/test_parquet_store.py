from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slt.adapters.store.parquet_store import ParquetStore, merge_series
from slt.domain.series import Candles, FundingRates, Kind, Market, SeriesKey
from slt.domain.synthetic import random_funding, random_walk_candles
from slt.errors import StoreError, UnknownSeriesError


def _files(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file() and p.name != ".lock"}


def test_stored_candles_load_back_identical_and_contiguous(tmp_path: Path) -> None:
    store = ParquetStore(tmp_path)
    candles = random_walk_candles(n=500)
    store.merge(candles)
    loaded = store.load_candles(candles.key)
    for name, column in candles.columns().items():
        np.testing.assert_array_equal(getattr(loaded, name), column)
        assert getattr(loaded, name).flags.c_contiguous


def test_appending_a_later_span_extends_the_series(tmp_path: Path) -> None:
    store = ParquetStore(tmp_path)
    candles = random_walk_candles(n=300)
    store.merge(candles.take(slice(0, 200)))
    result = store.merge(candles.take(slice(150, 300)))
    assert (result.added, result.changed, result.total) == (100, 0, 300)
    np.testing.assert_array_equal(store.load_candles(candles.key).close, candles.close)


def test_on_overlap_the_incoming_rows_win_and_are_counted_as_changed() -> None:
    old = random_walk_candles(n=10)
    new = Candles(
        old.key,
        old.open_time_ms[5:],
        old.open[5:],
        old.high[5:],
        old.low[5:],
        old.close[5:] + 1.0,
        old.volume[5:],
    )
    merged, result = merge_series(old, new)
    assert (result.added, result.changed, result.total) == (0, 5, 10)
    assert isinstance(merged, Candles)
    np.testing.assert_array_equal(merged.close[5:], old.close[5:] + 1.0)


def test_a_transaction_that_fails_publishes_none_of_its_files(tmp_path: Path) -> None:
    store = ParquetStore(tmp_path)
    first = random_walk_candles(n=100)
    store.merge(first)
    before = _files(tmp_path)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.stage(random_walk_candles(n=200))
        tx.stage(random_funding())
        raise RuntimeError("crash between staging and commit")
    assert _files(tmp_path) == before
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_corrupt_store_file_is_an_error_naming_it(tmp_path: Path) -> None:
    store = ParquetStore(tmp_path)
    candles = random_walk_candles(n=10)
    store.merge(candles)
    path = store.path_for(candles.key)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(StoreError, match=str(path)):
        store.load(candles.key)


def test_an_unknown_series_error_says_what_the_store_holds(tmp_path: Path) -> None:
    store = ParquetStore(tmp_path)
    store.merge(random_walk_candles(n=10))
    with pytest.raises(UnknownSeriesError, match="futures 5m candles"):
        store.load(SeriesKey("BTCUSDT", Market.FUTURES, "1h"))
    with pytest.raises(UnknownSeriesError, match="holds: BTCUSDT"):
        store.load(SeriesKey("ETHUSDT", Market.FUTURES, "5m"))


def test_funding_rates_round_trip_with_their_own_columns(tmp_path: Path) -> None:
    store = ParquetStore(tmp_path)
    funding = random_funding(n=30)
    store.merge(funding)
    loaded = store.load(SeriesKey("BTCUSDT", Market.FUTURES, "8h", Kind.FUNDING))
    assert isinstance(loaded, FundingRates)
    np.testing.assert_array_equal(loaded.rate, funding.rate)
    assert store.series_keys() == [funding.key]


def _merge_span(root: str, start: int, stop: int) -> None:
    ParquetStore(Path(root)).merge(random_walk_candles(n=20_000).take(slice(start, stop)))


def test_two_processes_merging_at_once_lose_no_rows(tmp_path: Path) -> None:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    spans = [(0, 12_000), (8_000, 20_000), (4_000, 6_000), (15_000, 19_000)]
    workers = [context.Process(target=_merge_span, args=(str(tmp_path), a, b)) for a, b in spans]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    stored = ParquetStore(tmp_path).load_candles(random_walk_candles(n=1).key)
    np.testing.assert_array_equal(stored.close, random_walk_candles(n=20_000).close)
