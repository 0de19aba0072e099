"""``slt data download`` against a local server that speaks Binance's kline protocol.

The server serves real BTCUSDT 5m futures candles from ../shared/data; nothing here talks to a
real exchange. A fake clock drives both sides, so waits are asserted without being slept.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from slt.adapters.exchange.binance_klines import (
    BinanceKlineClient,
    DownloadResult,
    Pacing,
    download_candles,
    kline_weight,
    parse_klines,
    plan_ranges,
)
from slt.adapters.store.parquet_store import ParquetStore
from slt.domain.clock import parse_utc_ms
from slt.domain.series import Kind, Market, SeriesKey
from slt.errors import ExchangeError
from tests.conftest import CATMAN, SltRunner
from tests.integration.fake_binance import FakeBinance, RealCandles

pytestmark = pytest.mark.shared_data

TF = 300_000
START = parse_utc_ms("2024-01-01")
KEY = SeriesKey("BTCUSDT", Market.FUTURES, "5m", Kind.CANDLES)
AFTER_THE_DATA = parse_utc_ms("2024-06-01T00:00:30")  # every served candle has closed


def at(n: int) -> int:
    """Open time of the n-th candle after START."""
    return START + n * TF


class FakeClock:
    """Milliseconds that advance only when someone sleeps; the sleeps are recorded."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms
        self.sleeps: list[float] = []

    def __call__(self) -> int:
        return self.now_ms

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now_ms += round(seconds * 1000)


@pytest.fixture(scope="module")
def real(shared_data: Path) -> RealCandles:
    return RealCandles.from_feather(CATMAN / "BTC_USDT_USDT-5m-futures.feather")


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock(AFTER_THE_DATA)


@pytest.fixture()
def fake(real: RealCandles, clock: FakeClock) -> Iterator[FakeBinance]:
    with FakeBinance({("BTCUSDT", "5m"): real}, clock=clock) as server:
        yield server


@pytest.fixture()
def store(tmp_path: Path) -> ParquetStore:
    return ParquetStore(tmp_path / "market")


ClientFactory = Callable[..., BinanceKlineClient]


@pytest.fixture()
def client_for(fake: FakeBinance, clock: FakeClock) -> Iterator[ClientFactory]:
    opened: list[BinanceKlineClient] = []

    def make(pacing: Pacing | None = None, **kwargs: Any) -> BinanceKlineClient:
        kwargs = {"clock": clock, "sleep": clock.sleep, **kwargs}
        client = BinanceKlineClient(Market.FUTURES, fake.url, pacing, **kwargs)
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


def download(
    store: ParquetStore, client: BinanceKlineClient, start: int | None, end: int | None, **kw: Any
) -> DownloadResult:
    return download_candles(store, client, "BTCUSDT", Market.FUTURES, "5m", start, end, **kw)


def assert_store_holds_real(store: ParquetStore, real: RealCandles, start: int, end: int) -> None:
    stored = store.load_candles(KEY)
    lo, hi = real.index_of(start), real.index_of(end)
    np.testing.assert_array_equal(stored.open_time_ms, real.open_time_ms[lo:hi])
    for name in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(stored, name), getattr(real, name)[lo:hi], name)


def started_at(fake: FakeBinance) -> list[int]:
    return [int(r.params["startTime"]) for r in fake.kline_requests()]


# ------------------------------------------------------------------ downloading


def test_a_download_stores_exactly_the_real_candles_bar_for_bar(
    fake: FakeBinance, store: ParquetStore, client_for: ClientFactory, real: RealCandles
) -> None:
    result = download(store, client_for(), START, at(3000))

    assert_store_holds_real(store, real, START, at(3000))
    assert (result.added, result.stored, result.first_ms, result.last_ms) == (
        3000, 3000, START, at(2999),
    )  # fmt: skip


def test_requests_walk_forward_by_1000_and_size_the_last_page_to_what_is_left(
    fake: FakeBinance, store: ParquetStore, client_for: ClientFactory
) -> None:
    client = client_for()

    download(store, client, START, at(2400))

    sent = [r.params for r in fake.kline_requests()]
    assert [int(p["startTime"]) for p in sent] == [START, at(1000), at(2000)]
    assert [p["limit"] for p in sent] == ["1000", "1000", "400"]
    assert {(p["symbol"], p["interval"], p["endTime"]) for p in sent} == {
        ("BTCUSDT", "5m", str(at(2400) - 1))
    }
    # Binance's header after the last request: weight 5 per 1000-candle page, 2 for 400.
    assert client.used_weight == 5 + 5 + 2


def test_kline_weight_follows_binance_limit_brackets() -> None:
    weights = [kline_weight(Market.FUTURES, n) for n in (1, 99, 100, 499, 500, 1000, 1001, 1500)]
    assert weights == [1, 1, 2, 2, 5, 5, 10, 10]
    assert kline_weight(Market.SPOT, 1000) == 2


def test_the_download_waits_for_the_next_minute_when_the_weight_budget_would_be_exceeded(
    fake: FakeBinance, store: ParquetStore, client_for: ClientFactory, clock: FakeClock
) -> None:
    client = client_for(Pacing(weight_budget_per_minute=12))

    download(store, client, START, at(4000))

    assert clock.sleeps == [30.5]  # from :30 to half a second past the next minute
    minutes = [r.time_ms // 60_000 for r in fake.kline_requests()]
    assert minutes[2] == minutes[1] + 1 and minutes[3] == minutes[2]
    assert [r.status for r in fake.kline_requests()] == [200] * 4


def test_the_project_request_limit_spaces_requests_over_its_period(
    fake: FakeBinance, store: ParquetStore, client_for: ClientFactory, clock: FakeClock
) -> None:
    client = client_for(Pacing(2000, max_requests=2, period_s=10))

    download(store, client, START, at(4000))

    assert clock.sleeps == [10.0]
    assert len(fake.kline_requests()) == 4


# ------------------------------------------------------------------ resuming


def test_a_second_run_requests_only_the_missing_tail(
    fake: FakeBinance, store: ParquetStore, client_for: ClientFactory, real: RealCandles
) -> None:
    download(store, client_for(), START, at(2000))
    fake.requests.clear()

    result = download(store, client_for(), START, at(2600))

    assert started_at(fake) == [at(2000)]
    assert fake.kline_requests()[0].params["limit"] == "600"
    assert result.added == 600
    assert_store_holds_real(store, real, START, at(2600))


def test_running_the_same_download_again_sends_nothing_and_changes_nothing(
    fake: FakeBinance, store: ParquetStore, client_for: ClientFactory
) -> None:
    download(store, client_for(), START, at(1500))
    path = store.path_for(KEY)
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    fake.requests.clear()

    result = download(store, client_for(), START, at(1500))

    assert fake.kline_requests() == []
    assert (result.ranges, result.added, result.stored) == ((), 0, 1500)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


def test_an_earlier_start_downloads_only_the_missing_head(
    fake: FakeBinance, store: ParquetStore, client_for: ClientFactory, real: RealCandles
) -> None:
    download(store, client_for(), at(1000), at(2000))
    fake.requests.clear()

    download(store, client_for(), START, at(2000))

    assert started_at(fake) == [START]
    assert fake.kline_requests()[0].params["endTime"] == str(at(1000) - 1)
    assert_store_holds_real(store, real, START, at(2000))


def test_fill_gaps_requests_only_the_holes_inside_the_stored_range(
    fake: FakeBinance, store: ParquetStore, client_for: ClientFactory, real: RealCandles
) -> None:
    download(store, client_for(), START, at(1200))
    holed = store.load_candles(KEY)
    keep = (holed.open_time_ms < at(300)) | (holed.open_time_ms >= at(350))
    store.path_for(KEY).unlink()
    store.merge(holed.take(keep))
    fake.requests.clear()

    download(store, client_for(), START, at(1200), fill_gaps=True)

    assert started_at(fake) == [at(300)]
    assert fake.kline_requests()[0].params["limit"] == "50"
    assert_store_holds_real(store, real, START, at(1200))


def test_when_the_server_fails_midway_the_stored_pages_are_kept_and_a_rerun_completes(
    fake: FakeBinance,
    store: ParquetStore,
    client_for: ClientFactory,
    real: RealCandles,
    clock: FakeClock,
) -> None:
    fake.fail_after(2, status=500)

    with pytest.raises(ExchangeError, match=r"still unavailable \(500\) after 2 retries"):
        download(store, client_for(Pacing(2000, max_retries=2)), START, at(3500))

    assert_store_holds_real(store, real, START, at(2000))
    assert clock.sleeps == [1.0, 2.0]  # backing off between the retries
    fake.heal()
    fake.requests.clear()
    download(store, client_for(), START, at(3500))
    assert started_at(fake) == [at(2000), at(3000)]
    assert_store_holds_real(store, real, START, at(3500))


# ------------------------------------------------------------------ rate limits and errors


def test_a_429_with_retry_after_is_waited_out_and_the_download_then_succeeds(
    fake: FakeBinance, store: ParquetStore, client_for: ClientFactory, real: RealCandles
) -> None:
    fake.fail_next(1, status=429, retry_after_s=1)
    client = client_for(clock=lambda: time.time_ns() // 1_000_000, sleep=time.sleep)
    began = time.monotonic()

    download(store, client, START, at(1000))

    assert time.monotonic() - began >= 1.0
    assert client.waited_s == 1.0
    assert [r.status for r in fake.kline_requests()] == [429, 200]
    assert_store_holds_real(store, real, START, at(1000))


def test_too_many_429s_raise_an_exchange_error_and_store_nothing(
    fake: FakeBinance, store: ParquetStore, client_for: ClientFactory, clock: FakeClock
) -> None:
    fake.fail_next(10, status=429, retry_after_s=1)

    with pytest.raises(ExchangeError, match=r"still rate limited \(HTTP 429.*after 3 retries"):
        download(store, client_for(Pacing(2000, max_retries=3)), START, at(1000))

    assert clock.sleeps == [1.0, 1.0, 1.0]
    assert len(fake.kline_requests()) == 4
    assert not store.has(KEY)


def test_a_418_ban_longer_than_the_allowed_wait_fails_at_once(
    fake: FakeBinance, store: ParquetStore, client_for: ClientFactory, clock: FakeClock
) -> None:
    fake.fail_next(1, status=418, retry_after_s=7200)

    with pytest.raises(ExchangeError, match=r"answered 418 and asks for a 7200 s pause"):
        download(store, client_for(), START, at(1000))

    assert clock.sleeps == []
    assert len(fake.kline_requests()) == 1


def test_an_unknown_symbol_raises_a_clear_error_and_leaves_the_store_unchanged(
    fake: FakeBinance, store: ParquetStore, client_for: ClientFactory
) -> None:
    download(store, client_for(), START, at(500))
    before = store.path_for(KEY).read_bytes()

    with pytest.raises(ExchangeError, match=r"does not list symbol 'FOOUSDT'.*Invalid symbol"):
        download_candles(store, client_for(), "FOOUSDT", Market.FUTURES, "5m", START, at(500))

    assert store.series_keys() == [KEY]
    assert store.path_for(KEY).read_bytes() == before


def test_the_candle_still_forming_is_never_stored(
    fake: FakeBinance,
    store: ParquetStore,
    client_for: ClientFactory,
    real: RealCandles,
    clock: FakeClock,
) -> None:
    fake.forming_candles = True
    clock.now_ms = at(1500) + 2 * 60_000  # two minutes into candle 1500

    result = download(store, client_for(), START, None)

    assert int(fake.kline_requests()[-1].params["endTime"]) == clock.now_ms - 1
    assert result.last_ms == at(1499)
    assert_store_holds_real(store, real, START, at(1500))


def test_a_price_that_is_not_a_number_fails_the_page_and_nothing_of_it_is_stored(
    fake: FakeBinance, store: ParquetStore, client_for: ClientFactory
) -> None:
    def corrupt(rows: list[list[Any]]) -> list[list[Any]]:
        rows[3][2] = "NaN"
        return rows

    fake.mangle = corrupt

    with pytest.raises(ExchangeError, match=r"kline 2024-01-01 00:15: high is 'NaN'"):
        download(store, client_for(), START, at(1000))

    assert not store.has(KEY)


ROW = [START, "1.5", "2", "1", "1.5", "10", START + TF - 1, "15", 3, "5", "7.5", "0"]


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (ROW[:11], "not a list of 12 fields"),
        ({"open": 1}, "not a list of 12 fields"),
        ([str(START), *ROW[1:]], ""),  # a numeric string time is accepted
        ([True, *ROW[1:]], "non-integer open/close time"),
        ([*ROW[:3], "abc", *ROW[4:]], "low is 'abc'"),
        ([*ROW[:4], None, *ROW[5:]], "close is None"),
        ([*ROW[:5], "-1", *ROW[6:]], "volume is '-1'"),
        ([*ROW[:1], "inf", *ROW[2:]], "open is 'inf'"),
        ([*ROW[:6], START + TF, *ROW[7:]], "not one interval after its open"),
    ],
)
def test_malformed_kline_rows_are_rejected_with_the_problem_named(
    row: object, problem: str
) -> None:
    if not problem:
        assert len(parse_klines([row], "test", TF)) == 1
        return
    with pytest.raises(ExchangeError, match=problem):
        parse_klines([row], "test", TF)


@pytest.mark.parametrize(
    ("start", "end", "stored", "fill_gaps", "expected"),
    [
        (0, 10, None, False, [(0, 10)]),
        (0, 10, [3, 4, 5], False, [(0, 3), (6, 10)]),
        (4, 10, [3, 4, 5], False, [(6, 10)]),
        (0, 5, [3, 4, 5], False, [(0, 3)]),
        (3, 6, [3, 4, 5], False, []),
        (0, 10, [3, 6, 7], False, [(0, 3), (8, 10)]),
        (0, 10, [3, 6, 7], True, [(0, 3), (4, 6), (8, 10)]),
    ],
)
def test_only_the_head_and_tail_missing_from_the_store_are_planned(
    start: int, end: int, stored: list[int] | None, fill_gaps: bool, expected: list[tuple[int, int]]
) -> None:
    times = None if stored is None else np.array(stored, dtype=np.int64) * TF
    ranges = plan_ranges(start * TF, end * TF, TF, times, fill_gaps)
    assert ranges == [(a * TF, b * TF) for a, b in expected]


def test_a_start_between_candle_opens_is_moved_to_the_next_open() -> None:
    assert plan_ranges(START + 1, at(10), TF, None) == [(at(1), at(10))]


# ------------------------------------------------------------------ the command line


def test_the_cli_downloads_into_the_data_dir_and_reports_what_it_stored(
    fake: FakeBinance, run_slt: SltRunner, tmp_path: Path, real: RealCandles
) -> None:
    end = parse_utc_ms("2024-01-05")

    done = run_slt(
        "data", "download", "--symbol", "BTC/USDT:USDT", "--timeframe", "5m",
        "--start", "2024-01-01", "--end", "2024-01-05",
        env={"SLT_BINANCE_FUTURES_URL": fake.url},
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "1,152 candles added" in done.stdout
    assert "2024-01-01 00:00 .. 2024-01-04 23:55" in done.stdout
    assert_store_holds_real(ParquetStore(tmp_path / "user_data" / "market"), real, START, end)


def test_the_cli_names_an_unknown_symbol_on_one_line_and_exits_2(
    fake: FakeBinance, run_slt: SltRunner
) -> None:
    done = run_slt(
        "data", "download", "--symbol", "FOOUSDT", "--start", "2024-01-01", "--end", "2024-01-02",
        env={"SLT_BINANCE_FUTURES_URL": fake.url},
    )  # fmt: skip

    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: Binance futures does not list symbol 'FOOUSDT' "
        "(Binance says: Invalid symbol. (code -1121))"
    ]
