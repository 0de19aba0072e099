"""The local exchange's REST answers over real BTCUSDT / ETHUSDT futures data, on a real HTTP
server on 127.0.0.1: what a client sees at a replayed moment, Binance's error answers and
rate limits."""

from __future__ import annotations

import itertools
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from slt.adapters.exchange.local.auth import hmac_signature
from slt.adapters.exchange.local.limits import RateLimits
from slt.adapters.exchange.local.market import SymbolTape
from slt.adapters.exchange.local.tapes import load_tapes
from slt.adapters.store.parquet_store import ParquetStore
from slt.domain.clock import parse_utc_ms
from slt.domain.resample import resample
from slt.domain.timeframes import DAY_MS
from slt.errors import SltError
from tests.conftest import CATMAN, CATMAN_BTC_5M, CATMAN_ETH_5M
from tests.support.local_exchange import ACCOUNT, real_store, serving

START = parse_utc_ms("2024-01-01")
# The wall clock the server sees: 2026-12-07 13:47:12.345 UTC, fixed, so answers are exact.
WALL = parse_utc_ms("2026-12-07") + 13 * 3_600_000 + 47 * 60_000 + 12_345


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ParquetStore:
    root = tmp_path_factory.mktemp("exchange-store")
    files = [CATMAN_BTC_5M, CATMAN_ETH_5M, CATMAN / "BTC_USDT_USDT-8h-funding_rate.feather"]
    return real_store(root, files)


@pytest.fixture(scope="module")
def tapes(store: ParquetStore) -> dict[str, SymbolTape]:
    return load_tapes(store, ["BTCUSDT", "ETHUSDT"], START, None)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), json.loads(error.read())


def test_at_speed_one_the_replay_moves_whole_days_so_market_time_is_the_wall_clock(
    tapes: dict[str, SymbolTape],
) -> None:
    with serving(tapes, START, wall=lambda: WALL) as ex:
        status, headers, body = get(f"{ex.url}/fapi/v1/time")
        assert status == 200 and body == {"serverTime": WALL}
        assert headers["X-MBX-USED-WEIGHT-1M"] == "1"
        shift = ex.exchange.clock.shift_ms
        assert shift % DAY_MS == 0 and shift > 0
        # The replayed moment: 2024-01-01 at the wall clock's time of day.
        assert ex.exchange.clock.history_now() == START + WALL % DAY_MS


def test_klines_give_the_stored_candles_closed_by_now_and_the_forming_one_last(
    tapes: dict[str, SymbolTape],
) -> None:
    btc = tapes["BTCUSDT"].candles
    with serving(tapes, START, wall=lambda: WALL) as ex:
        shift = ex.exchange.clock.shift_ms
        now = START + WALL % DAY_MS  # 13:47:12 on 2024-01-01
        status, _, rows = get(f"{ex.url}/fapi/v1/klines?symbol=BTCUSDT&interval=5m&limit=3")
    assert status == 200 and len(rows) == 3
    forming_open = now - now % 300_000  # 13:45
    assert [r[0] - shift for r in rows] == [forming_open - 600_000, forming_open - 300_000,
                                            forming_open]  # fmt: skip
    i = int(np.searchsorted(btc.open_time_ms, forming_open - 300_000))
    assert rows[1][1:6] == [f"{btc.open[i]:.1f}", f"{btc.high[i]:.1f}", f"{btc.low[i]:.1f}",
                            f"{btc.close[i]:.1f}", f"{btc.volume[i]:.3f}"]  # fmt: skip
    assert rows[1][6] == rows[1][0] + 300_000 - 1
    # The forming candle knows only its open: nothing of the next 2 min 48 s leaks.
    o = f"{btc.open[i + 1]:.1f}"
    assert rows[2][1:6] == [o, o, o, o, "0.000"]


def test_hourly_klines_are_the_five_minute_candles_aggregated_and_never_from_the_future(
    tapes: dict[str, SymbolTape],
) -> None:
    btc = tapes["BTCUSDT"].candles
    hourly = resample(btc, "1h")
    with serving(tapes, START, wall=lambda: WALL) as ex:
        shift = ex.exchange.clock.shift_ms
        _, _, rows = get(f"{ex.url}/fapi/v1/klines?symbol=BTCUSDT&interval=1h&limit=5")
    now = START + WALL % DAY_MS
    closed, forming = rows[:-1], rows[-1]
    for row in closed:
        j = int(np.searchsorted(hourly.open_time_ms, row[0] - shift))
        assert row[2] == f"{hourly.high[j]:.1f}" and row[4] == f"{hourly.close[j]:.1f}"
        assert row[0] - shift + 3_600_000 <= now
    # 13:00-13:47: the nine 5m candles closed by 13:45, and the open of the one in progress.
    begin = now - now % 3_600_000
    a, b = np.searchsorted(btc.open_time_ms, [begin, now - 300_000], "right")
    a -= 1
    known_high = max(float(btc.high[a:b].max()), float(btc.open[b]))
    assert forming[0] - shift == begin and forming[2] == f"{known_high:.1f}"
    assert forming[4] == f"{btc.open[b]:.1f}"


def test_klines_from_a_start_time_are_the_first_ones_after_it(
    tapes: dict[str, SymbolTape],
) -> None:
    with serving(tapes, START, wall=lambda: WALL) as ex:
        shift = ex.exchange.clock.shift_ms
        first = START - 20 * DAY_MS + shift
        _, headers, rows = get(
            f"{ex.url}/fapi/v1/klines?symbol=ETHUSDT&interval=15m&startTime={first}&limit=1000"
        )
        _, _, until = get(
            f"{ex.url}/fapi/v1/klines?symbol=ETHUSDT&interval=15m&endTime={first}&limit=2"
        )
    assert len(rows) == 1000 and rows[0][0] == first
    assert all(b[0] - a[0] == 900_000 for a, b in itertools.pairwise(rows))
    assert headers["X-MBX-USED-WEIGHT-1M"] == "5"  # limit 1000 weighs 5
    assert [r[0] for r in until] == [first - 900_000, first]


@pytest.mark.parametrize(
    ("query", "code", "message"),
    [
        ("symbol=DOGEUSDT&interval=1m", -1121, "Invalid symbol."),
        ("symbol=BTCUSDT", -1102, "Mandatory parameter 'interval' was not sent"),
        ("interval=5m", -1102, "Mandatory parameter 'symbol' was not sent"),
        ("symbol=BTCUSDT&interval=7m", -1120, "Invalid interval."),
        ("symbol=BTCUSDT&interval=1m", -1120, "Invalid interval."),  # finer than the store
        ("symbol=BTCUSDT&interval=5m&limit=1501", -1130, "parameter 'limit' is not valid"),
        ("symbol=BTCUSDT&interval=5m&startTime=12ab", -1100, "Illegal characters"),
        ("symbol=BTCUSDT&symbol=ETHUSDT&interval=5m", -1101, "Duplicate values"),
    ],
)
def test_bad_kline_requests_get_binances_error_and_the_server_keeps_serving(
    tapes: dict[str, SymbolTape], query: str, code: int, message: str
) -> None:
    with serving(tapes, START, wall=lambda: WALL) as ex:
        status, _, body = get(f"{ex.url}/fapi/v1/klines?{query}")
        assert status == 400 and body["code"] == code and message in body["msg"]
        assert set(body) == {"code", "msg"}
        assert get(f"{ex.url}/fapi/v1/ping")[:3:2] == (200, {})


def test_funding_history_holds_only_what_was_settled_by_the_replayed_moment(
    tapes: dict[str, SymbolTape],
) -> None:
    with serving(tapes, START, wall=lambda: WALL) as ex:
        shift = ex.exchange.clock.shift_ms
        _, _, rows = get(f"{ex.url}/fapi/v1/fundingRate?symbol=BTCUSDT&limit=3")
        _, _, index = get(f"{ex.url}/fapi/v1/premiumIndex?symbol=BTCUSDT")
    now = START + WALL % DAY_MS
    assert [r["fundingTime"] - shift for r in rows] == [START - 8 * 3_600_000, START,
                                                        START + 8 * 3_600_000]  # fmt: skip
    assert index["nextFundingTime"] - shift == START + 16 * 3_600_000 > now
    assert index["lastFundingRate"] == rows[-1]["fundingRate"]
    assert index["time"] == WALL


def test_a_signed_request_needs_the_key_the_signature_and_a_fresh_timestamp(
    tapes: dict[str, SymbolTape],
) -> None:
    def signed(query: str, secret: str = ACCOUNT.secret, key: str | None = ACCOUNT.key) -> Any:
        headers = {"X-MBX-APIKEY": key} if key is not None else {}
        url = f"{ex.url}/fapi/v2/balance?{query}&signature={hmac_signature(secret, query)}"
        return get(url, headers)

    with serving(tapes, START, wall=lambda: WALL) as ex:
        status, _, body = signed(f"timestamp={WALL - 100}")
        assert status == 200 and body[0]["asset"] == "USDT"
        assert body[0]["balance"] == "10000.00000000"
        assert signed(f"timestamp={WALL}", secret="x" * 20)[2]["code"] == -1022
        assert signed(f"timestamp={WALL - 6_000}")[2] == {
            "code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."
        }  # fmt: skip
        assert signed(f"timestamp={WALL - 6_000}&recvWindow=10000")[0] == 200
        assert signed(f"timestamp={WALL + 1_000}")[2]["code"] == -1021
        assert signed(f"timestamp={WALL}&recvWindow=60001")[2]["code"] == -1131
        assert signed("recvWindow=5000")[2]["code"] == -1102
        assert signed(f"timestamp={WALL}", key=None)[:3:2] == (401, {
            "code": -2014, "msg": "API-key format invalid."})  # fmt: skip
        assert signed(f"timestamp={WALL}", key="unknownKey123")[2]["code"] == -2015


def test_weight_over_the_limit_gets_429_then_an_ip_that_keeps_going_is_banned(
    tapes: dict[str, SymbolTape],
) -> None:
    with serving(tapes, START, wall=lambda: WALL, limits=RateLimits(weight_limit=10)) as ex:
        for used in range(1, 11):
            assert get(f"{ex.url}/fapi/v1/time")[1]["X-MBX-USED-WEIGHT-1M"] == str(used)
        status, headers, body = get(f"{ex.url}/fapi/v1/time")
        assert status == 429 and body["code"] == -1003
        assert headers["Retry-After"] == str(60 - (WALL // 1000) % 60)
        status, headers, body = get(f"{ex.url}/fapi/v1/time")
        assert status == 418 and "IP banned until" in body["msg"]
        assert headers["Retry-After"] == "120"
        assert get(f"{ex.url}/fapi/v1/ping")[0] == 418


def test_a_symbol_the_store_cannot_replay_is_refused_with_what_it_holds(
    store: ParquetStore,
) -> None:
    with pytest.raises(SltError, match="no futures candles of SOLUSDT"):
        load_tapes(store, ["SOLUSDT"], START, None)
    with pytest.raises(SltError, match="cannot replay BTCUSDT from 2030-01-01"):
        load_tapes(store, ["BTCUSDT"], parse_utc_ms("2030-01-01"), None)


def test_unknown_paths_and_methods_are_refused_without_a_traceback(
    tapes: dict[str, SymbolTape], tmp_path: Path
) -> None:
    with serving(tapes, START, wall=lambda: WALL) as ex:
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{ex.url}/fapi/v1/nothing", timeout=10)
        missing.value.close()
        assert missing.value.code == 404
        request = urllib.request.Request(f"{ex.url}/fapi/v1/time", method="DELETE")
        with pytest.raises(urllib.error.HTTPError) as wrong:
            urllib.request.urlopen(request, timeout=10)
        wrong.value.close()
        assert wrong.value.code == 405


def test_a_hostile_body_gets_an_error_answer_and_the_server_keeps_serving(
    tapes: dict[str, SymbolTape],
) -> None:
    with serving(tapes, START, wall=lambda: WALL) as ex:
        for body in (b"\xff\xfe\x00garbage", b"a=1&a=2", b"=&&=="):
            request = urllib.request.Request(
                f"{ex.url}/fapi/v2/balance", data=body, method="GET",
                headers={"X-MBX-APIKEY": ACCOUNT.key},
            )  # fmt: skip
            try:
                urllib.request.urlopen(request, timeout=10)
            except urllib.error.HTTPError as error:
                with error:
                    answer = json.loads(error.read())
                assert error.code == 400 and answer["code"] in (-1100, -1101), answer
            else:
                raise AssertionError(f"{body!r} was accepted")
        assert get(f"{ex.url}/fapi/v1/time")[0] == 200
