"""Importing every real market-data file in ../shared/data, bar for bar."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.feather as feather
import pytest

from slt.adapters.importers.importer import Overrides, apply_import, plan_import
from slt.adapters.importers.naming import data_suffix, hints_from_path
from slt.adapters.importers.readers import READERS
from slt.adapters.store.parquet_store import ParquetStore
from slt.domain.series import Candles, FundingRates, Kind, Market, SeriesKey
from tests.conftest import CATMAN, FREQTRADE_TESTDATA, ROSHAN

pytestmark = pytest.mark.shared_data

UNNAMED = {"candles.json", "populate_dataframe_with_trades_DF.feather"}


def _market_files(root: Path) -> list[Path]:
    files = [p for p in sorted(root.rglob("*")) if p.is_file() and data_suffix(p)]
    return [p for p in files if not hints_from_path(p).trades]


def test_every_candle_mark_and_funding_file_in_shared_data_imports(
    shared_data: Path, tmp_path: Path
) -> None:
    store = ParquetStore(tmp_path / "market")
    files = _market_files(shared_data)
    assert len(files) >= 90  # SOURCES.md lists 98 data files, 7 of them trades
    for path in files:
        overrides = Overrides(symbol="TESTUSDT") if path.name in UNNAMED else Overrides()
        plan = plan_import([path], overrides)
        (planned,) = plan.files
        raw = READERS[hints_from_path(path).fmt](path)
        assert len(planned.series) == len(np.unique(raw.times_ms)), path
        apply_import(store, plan)
    assert len(store.series_keys()) >= 50


def test_a_real_futures_file_is_stored_bar_for_bar(shared_data: Path, tmp_path: Path) -> None:
    path = CATMAN / "BTC_USDT_USDT-5m-futures.feather"
    store = ParquetStore(tmp_path / "market")
    apply_import(store, plan_import([path]))
    stored = store.load_candles(SeriesKey("BTCUSDT", Market.FUTURES, "5m"))
    table = feather.read_table(path)
    assert len(stored) == 143_900
    expected_ms = table.column("date").to_numpy().astype("datetime64[ms]").astype(np.int64)
    np.testing.assert_array_equal(stored.open_time_ms, expected_ms)
    for name in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(stored, name), table.column(name).to_numpy())


def test_a_file_named_8m_holding_1m_candles_is_imported_as_1m_with_a_warning(
    shared_data: Path,
) -> None:
    plan = plan_import([FREQTRADE_TESTDATA / "UNITTEST_BTC-8m.json.gz"])
    (planned,) = plan.files
    assert planned.series.key == SeriesKey("UNITTESTBTC", Market.SPOT, "1m")
    assert any("name says 8m" in w and "1m" in w for w in planned.warnings)


def test_funding_labelled_1h_is_stored_as_8_hourly_rates_from_the_open_column(
    shared_data: Path,
) -> None:
    path = ROSHAN / "futures" / "BTC_USDT_USDT-1h-funding_rate.feather"
    (planned,) = plan_import([path]).files
    series = planned.series
    assert isinstance(series, FundingRates)
    assert series.key == SeriesKey("BTCUSDT", Market.FUTURES, "8h", Kind.FUNDING)
    assert len(series) == 7_323
    table = feather.read_table(path)
    np.testing.assert_array_equal(series.rate, table.column("open").to_numpy())
    assert np.all(series.time_ms % (8 * 3_600_000) == 0)


def test_jittered_funding_times_from_two_sources_merge_without_duplicates(
    shared_data: Path, tmp_path: Path
) -> None:
    store = ParquetStore(tmp_path / "market")
    catman = CATMAN / "BTC_USDT_USDT-8h-funding_rate.feather"  # carries ms jitter
    roshan = ROSHAN / "futures" / "BTC_USDT_USDT-1h-funding_rate.feather"
    apply_import(store, plan_import([roshan]))
    (merge,) = (f.merge for f in apply_import(store, plan_import([catman])))
    assert merge.added == 0  # the same 1,498 settlements, already held
    assert merge.changed == 0
    assert len(store.load(SeriesKey("BTCUSDT", Market.FUTURES, "8h", Kind.FUNDING))) == 7_323


def test_reimporting_the_same_file_changes_nothing(shared_data: Path, tmp_path: Path) -> None:
    store = ParquetStore(tmp_path / "market")
    path = CATMAN / "ETH_USDT_USDT-1h-futures.feather"
    apply_import(store, plan_import([path]))
    before = store.path_for(SeriesKey("ETHUSDT", Market.FUTURES, "1h")).read_bytes()
    (again,) = apply_import(store, plan_import([path]))
    assert (again.merge.added, again.merge.changed, again.merge.total) == (0, 0, 11_991)
    assert store.path_for(SeriesKey("ETHUSDT", Market.FUTURES, "1h")).read_bytes() == before


def test_overlapping_sources_merge_into_one_series_without_duplicates(
    shared_data: Path, tmp_path: Path
) -> None:
    store = ParquetStore(tmp_path / "market")
    long_history = ROSHAN / "futures" / "BTC_USDT_USDT-1h-futures.feather"
    overlapping = CATMAN / "BTC_USDT_USDT-1h-futures.feather"
    apply_import(store, plan_import([overlapping, long_history]))
    stored = store.load_candles(SeriesKey("BTCUSDT", Market.FUTURES, "1h"))
    union = np.union1d(
        *(
            feather.read_table(p)
            .column("date")
            .to_numpy()
            .astype("datetime64[ms]")
            .astype(np.int64)
            for p in (long_history, overlapping)
        )
    )
    np.testing.assert_array_equal(stored.open_time_ms, union)


def test_importing_a_whole_folder_skips_trades_and_unnamed_files_with_reasons(
    shared_data: Path,
) -> None:
    plan = plan_import([FREQTRADE_TESTDATA])
    skipped = {p.name: reason for p, reason in plan.skipped}
    assert "trades" in skipped["XRP_ETH-trades.feather"]
    assert "--symbol" in skipped["candles.json"]
    assert len(plan.files) == 23  # 30 files: 5 hold trades, 2 name no symbol


def test_a_pandas_column_json_file_imports_when_given_a_symbol(shared_data: Path) -> None:
    path = FREQTRADE_TESTDATA / "orderflow" / "candles.json"
    (planned,) = plan_import([path], Overrides(symbol="BTCUSDT", market=Market.FUTURES)).files
    assert planned.series.key == SeriesKey("BTCUSDT", Market.FUTURES, "5m")
    assert isinstance(planned.series, Candles)
    assert len(planned.series) == 10_999
