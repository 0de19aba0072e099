"""Binance public-archive files: futures with a header row, spot without, ms or µs times."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slt.adapters.importers.importer import plan_import
from slt.adapters.importers.writers import write_binance_archive
from slt.domain.clock import parse_utc_ms
from slt.domain.series import Candles, Kind, Market, SeriesKey
from tests.conftest import CATMAN, FILIMONOV

pytestmark = pytest.mark.shared_data


def _real(path: Path, month: str) -> Candles:
    (planned,) = plan_import([path]).files
    assert isinstance(planned.series, Candles)
    start = parse_utc_ms(f"{month}-01")
    year, mon = map(int, month.split("-"))
    end = parse_utc_ms(f"{year + mon // 12}-{mon % 12 + 1:02d}-01")
    return planned.series.between(start, end)


def _assert_same(a: Candles, b: Candles) -> None:
    np.testing.assert_array_equal(a.open_time_ms, b.open_time_ms)
    for name in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_a_futures_monthly_zip_with_header_imports_as_futures(
    shared_data: Path, tmp_path: Path
) -> None:
    real = _real(CATMAN / "BTC_USDT_USDT-5m-futures.feather", "2024-01")
    path = write_binance_archive(real, tmp_path / "BTCUSDT-5m-2024-01.zip", header=True)
    (planned,) = plan_import([path]).files
    assert planned.series.key == SeriesKey("BTCUSDT", Market.FUTURES, "5m", Kind.CANDLES)
    assert isinstance(planned.series, Candles)
    _assert_same(planned.series, real.take(slice(None)))
    assert len(planned.series) == 31 * 288


def test_a_spot_csv_without_header_in_microseconds_imports_as_spot(
    shared_data: Path, tmp_path: Path
) -> None:
    real = _real(FILIMONOV / "ETH_USDT-1m.feather", "2025-06")
    path = write_binance_archive(
        real, tmp_path / "ETHUSDT-1m-2025-06.csv", header=False, microseconds=True
    )
    (planned,) = plan_import([path]).files
    assert planned.series.key == SeriesKey("ETHUSDT", Market.SPOT, "1m")
    assert isinstance(planned.series, Candles)
    _assert_same(planned.series, real)


def test_mark_price_klines_are_recognised_by_their_archive_folder(
    shared_data: Path, tmp_path: Path
) -> None:
    real = _real(CATMAN / "BTC_USDT_USDT-8h-mark.feather", "2023-03")
    folder = tmp_path / "data" / "futures" / "um" / "monthly" / "markPriceKlines" / "BTCUSDT" / "8h"
    path = write_binance_archive(real, folder / "BTCUSDT-8h-2023-03.zip", header=True)
    (planned,) = plan_import([path]).files
    assert planned.series.key == SeriesKey("BTCUSDT", Market.FUTURES, "8h", Kind.MARK)


def test_an_archive_funding_file_imports_as_funding_rates(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-fundingRate-2024-01.csv"
    path.write_text(
        "calc_time,funding_interval_hours,last_funding_rate\n"
        "1704067200000,8,0.00037409\n1704096000006,8,0.00026818\n1704124800000,8,0.00010000\n"
    )
    (planned,) = plan_import([path]).files
    assert planned.series.key == SeriesKey("BTCUSDT", Market.FUTURES, "8h", Kind.FUNDING)
    assert planned.series.columns()["time_ms"].tolist() == [
        1704067200000,
        1704096000000,
        1704124800000,
    ]
