from __future__ import annotations

import numpy as np
import pytest

from slt.domain.clock import format_utc_ms, parse_utc_ms
from slt.domain.intervals import MIXED_RUN_LENGTH, read_interval, round_to_minute
from slt.domain.series import Candles, Market, SeriesKey
from slt.domain.symbols import SymbolError, exchange_symbol
from slt.domain.timeframes import TimeframeError, timeframe_ms, timeframe_name
from slt.errors import InvalidSeriesError, SltError


@pytest.mark.parametrize(
    "name", ["BTC/USDT:USDT", "BTC_USDT_USDT", "BTC_USDT", "BTC/USDT", "btcusdt", "BTCUSDT"]
)
def test_freqtrade_pair_names_map_to_the_exchange_symbol(name: str) -> None:
    assert exchange_symbol(name) == "BTCUSDT"


def test_altcoin_btc_pairs_keep_their_quote_asset() -> None:
    assert exchange_symbol("ADA_BTC") == "ADABTC"


@pytest.mark.parametrize("name", ["", "BTC/USDT/EUR/X", "BTC USDT", "B$C_USDT"])
def test_unreadable_symbols_are_refused_with_the_name(name: str) -> None:
    with pytest.raises(SymbolError, match="symbol"):
        exchange_symbol(name)


@pytest.mark.parametrize(
    ("name", "ms"), [("1m", 60_000), ("5m", 300_000), ("8h", 28_800_000), ("1d", 86_400_000)]
)
def test_timeframes_round_trip_between_names_and_milliseconds(name: str, ms: int) -> None:
    assert timeframe_ms(name) == ms
    assert timeframe_name(ms) == name


@pytest.mark.parametrize("name", ["5x", "m5", "0m", ""])
def test_unknown_timeframes_are_refused(name: str) -> None:
    with pytest.raises(TimeframeError, match="timeframe"):
        timeframe_ms(name)


def test_dates_without_offset_are_read_as_utc() -> None:
    assert parse_utc_ms("2024-01-01") == 1_704_067_200_000
    assert parse_utc_ms("2024-01-01T00:05:00Z") == 1_704_067_500_000
    assert format_utc_ms(1_704_067_500_000) == "2024-01-01 00:05"


def test_unreadable_dates_name_the_text() -> None:
    with pytest.raises(SltError, match="'yesterday'"):
        parse_utc_ms("yesterday")


def test_candles_refuse_times_that_do_not_increase() -> None:
    key = SeriesKey("BTCUSDT", Market.FUTURES, "1m")
    ones = np.ones(3)
    with pytest.raises(InvalidSeriesError, match="strictly increasing"):
        Candles.from_arrays(key, np.array([0, 60_000, 60_000]), ones, ones, ones, ones, ones)


def test_candles_between_selects_a_half_open_window() -> None:
    key = SeriesKey("BTCUSDT", Market.FUTURES, "1m")
    t = np.arange(10, dtype=np.int64) * 60_000
    c = Candles.from_arrays(key, t, t * 1.0, t * 1.0, t * 1.0, t * 1.0, t * 1.0)
    window = c.between(120_000, 300_000)
    assert window.open_time_ms.tolist() == [120_000, 180_000, 240_000]
    assert window.open_time_ms.flags.c_contiguous


def test_interval_is_the_most_common_step_despite_holes() -> None:
    t = np.array([0, 1, 2, 4, 5, 8, 9, 10], dtype=np.int64) * 60_000
    reading = read_interval(t)
    assert reading is not None
    assert reading.interval_ms == 60_000
    assert reading.mixed_with_ms is None


def test_a_long_run_of_another_step_is_read_as_a_mixed_timeframe() -> None:
    minutes = np.arange(100, dtype=np.int64) * 60_000
    hours = minutes[-1] + np.arange(1, MIXED_RUN_LENGTH + 2, dtype=np.int64) * 3_600_000
    reading = read_interval(np.concatenate([minutes, hours]))
    assert reading is not None
    assert reading.interval_ms == 60_000
    assert reading.mixed_with_ms == 3_600_000


def test_funding_jitter_rounds_to_the_settlement_minute() -> None:
    jittered = np.array([1_672_560_000_008, 1_672_588_799_997], dtype=np.int64)
    assert round_to_minute(jittered).tolist() == [1_672_560_000_000, 1_672_588_800_000]
