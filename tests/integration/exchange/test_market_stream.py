"""The market-data stream client against the local exchange on 127.0.0.1 (real HTTP and
WebSocket, real Binance futures candles) and its faults: a dropped connection, a silent
stream, late finals, a disabled REST fallback, a warm-up, several connections and the switch
before the 24-hour cut. Every test checks that each candle came once, in order, none skipped,
with the exact values the exchange holds."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from slt.adapters.exchange.binance_rest import BinanceRest
from slt.adapters.exchange.local import answers
from slt.adapters.exchange.local.market import SymbolTape
from slt.adapters.exchange.local.stream_connection import MARKET
from slt.adapters.exchange.local.streams import StreamSettings
from slt.adapters.exchange.local.tapes import load_tapes
from slt.adapters.exchange.market_stream import (
    Candle,
    CandleGap,
    MarketData,
    MarketStream,
    MarkPrice,
)
from slt.domain.clock import parse_utc_ms
from slt.runtime.config import load_settings
from tests.conftest import CATMAN_BTC_5M, CATMAN_ETH_5M
from tests.support.local_exchange import Running, real_store, serving

START = parse_utc_ms("2024-01-01")
M5 = 300_000
SPEED = 600  # a 5m candle every 0.5 s of wall time
# Mark prices every 50 ms: the market clock the late-final rule reads moves in small steps.
FAST = StreamSettings(kline_push_ms=50, mark_price_fast_ms=50)
BTC_5M = ("BTCUSDT", "5m")

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def tapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SymbolTape]:
    store = real_store(tmp_path_factory.mktemp("market-stream-store"),
                       [CATMAN_BTC_5M, CATMAN_ETH_5M])  # fmt: skip
    return load_tapes(store, ["BTCUSDT", "ETHUSDT"], START, None)


async def until(condition: Callable[[], bool], what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def inject(ex: Running, **fault: Any) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{ex.url}/_sim/faults", json=fault) as answer,
    ):
        assert answer.status == 200, await answer.text()


class Client:
    """A ``MarketStream`` running against ``ex``, and everything it handed to ``on_data``."""

    def __init__(self, ex: Running, rest: BinanceRest, keys: list[tuple[str, str]],
                 **options: Any) -> None:  # fmt: skip
        self.items: list[MarketData] = []
        options.setdefault("rng", random.Random(7))
        self.stream = MarketStream(rest, ex.url.replace("http://", "ws://"), keys,
                                   self.items.extend, **options)  # fmt: skip
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.stream.run(self.stop))

    def candles(self, key: tuple[str, str] = BTC_5M, source: str | None = None) -> list[Candle]:
        return [i for i in self.items if isinstance(i, Candle) and (i.symbol, i.timeframe) == key
                and (source is None or i.source == source)]  # fmt: skip

    def gaps(self) -> list[CandleGap]:
        return [i for i in self.items if isinstance(i, CandleGap)]

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 5)


def run(ex: Running, scenario: Callable[[BinanceRest], Any], seconds: float = 30) -> Any:
    async def main() -> Any:
        async with BinanceRest(ex.url) as rest:
            return await scenario(rest)

    return asyncio.run(asyncio.wait_for(main(), seconds))


def assert_each_candle_once_in_order_as_the_exchange_has_it(
    candles: list[Candle], tape: SymbolTape, timeframe: str = "5m"
) -> None:
    """Open times one interval apart from the first to the last (none missing, none twice),
    and OHLCV equal to the exchange's own candles as its REST and streams format them."""
    length = tape.interval_ms(timeframe)
    opens = [c.open_time_ms for c in candles]
    assert len(opens) >= 2
    assert opens == list(range(opens[0], opens[-1] + 1, length))
    rows = tape.closed_klines(timeframe, opens[0], opens[-1] + length)
    want = [(t, float(answers.price(tape, o)), float(answers.price(tape, h)),
             float(answers.price(tape, low)), float(answers.price(tape, c)),
             float(answers.qty(tape, v))) for t, o, h, low, c, v in rows]  # fmt: skip
    assert [tuple(c[2:8]) for c in candles] == want


def spans(client: Client, purpose: str) -> list[int]:
    """The open times the REST requests of ``purpose`` asked for, in order."""
    asked: list[int] = []
    for r in client.stream.requests:
        if r.purpose == purpose:
            tf = M5 if r.timeframe == "5m" else 3 * M5
            assert r.limit == (r.end_ms - r.start_ms) // tf + 1  # limit: exactly the span
            asked += range(r.start_ms, r.end_ms + 1, tf)
    return asked


async def drop_in_mid_candle(ex: Running, client: Client) -> list[int]:
    """Cut the market connections half-way through a candle, after a few stream candles;
    returns the open times streamed before the cut."""
    await until(lambda: len(client.candles(source="stream")) >= 3, "three stream candles")
    await asyncio.sleep(0.25)  # half of a 5m candle at speed 600
    before = [c.open_time_ms for c in client.candles(source="stream")]
    await inject(ex, kind="drop_connections", scope="market")
    await until(lambda: client.stream.drops == 1, "the drop to be noticed")
    return before


Prepare = Callable[[Running, BinanceRest], Awaitable[None]]


def drop_and_stream_again(
    tapes: dict[str, SymbolTape], before_drop: Prepare | None = None, down_s: float = 1.5,
    **options: Any,
) -> tuple[Running, Client, list[int], list[int]]:  # fmt: skip
    """A client of BTCUSDT 5m whose connection is cut in mid-candle and comes back after
    ``down_s`` x 0.5-1 (jittered; at speed 600 a candle closes every 0.5 s), until three more
    candles have streamed; returns the exchange, the client, and the open times of the
    candles streamed before the cut and of the candles the stream missed."""

    async def scenario(rest: BinanceRest) -> tuple[Client, list[int]]:
        if before_drop is not None:
            await before_drop(ex, rest)
        client = Client(ex, rest, [BTC_5M], backoff_s=(down_s, down_s), **options)
        before = await drop_in_mid_candle(ex, client)
        after = len(before)
        await until(lambda: len(client.candles(source="stream")) >= after + 3, "streaming again")
        await client.close()
        return client, before

    with serving(tapes, START, speed=SPEED, control=True, stream_settings=FAST) as ex:
        client, before = run(ex, scenario)
    streamed_after = [c.open_time_ms for c in client.candles(source="stream")][len(before) :]
    missing = list(range(before[-1] + M5, streamed_after[0], M5))
    assert missing  # the connection was down across at least one close
    return ex, client, before, missing


def test_a_drop_mid_candle_loses_and_doubles_nothing_and_backfills_exactly_the_missing(
    tapes: dict[str, SymbolTape],
) -> None:
    _, client, _, missing = drop_and_stream_again(tapes)
    candles = client.candles()
    assert_each_candle_once_in_order_as_the_exchange_has_it(candles, tapes["BTCUSDT"])
    assert [c.open_time_ms for c in client.candles(source="backfill")] == missing
    assert spans(client, "backfill") == missing  # asked for exactly those, each once
    s = client.stream
    assert s.drops == 1 and s.connections == 2 and s.rest_kline_requests_warmup == 0
    assert s.gaps == 0 and not client.gaps()


def named_by_gaps(client: Client) -> list[int]:
    return [t for g in client.gaps() for t in range(g.from_open_ms, g.to_open_ms + 1, M5)]


def test_with_rest_fallback_disabled_a_drop_is_a_gap_naming_exactly_the_missing_span(
    tapes: dict[str, SymbolTape],
) -> None:
    settings = load_settings(None, {"DISABLE_REST_FALLBACK": "true"})
    _, client, before, missing = drop_and_stream_again(
        tapes, disable_rest_fallback=settings.disable_rest_fallback)  # fmt: skip
    assert all(c.source == "stream" for c in client.candles())
    gaps = client.gaps()
    assert gaps and all(g.reason == "REST back-fill disabled" for g in gaps)
    # The gap (split at most where its last candle's grace ran out) covers the hole exactly,
    # and comes between the candles on either side of it.
    assert named_by_gaps(client) == missing
    candles_around = [i for i in client.items if not isinstance(i, MarkPrice)]
    at = candles_around.index(gaps[0])
    assert candles_around[at - 1] == client.candles()[len(before) - 1]
    assert candles_around[at + len(gaps)] == client.candles()[len(before)]
    assert client.stream.rest_kline_requests == 0 and client.stream.rest_kline_weight == 0
    tape = tapes["BTCUSDT"]
    assert_each_candle_once_in_order_as_the_exchange_has_it(client.candles()[: len(before)], tape)
    assert_each_candle_once_in_order_as_the_exchange_has_it(client.candles()[len(before) :], tape)


def test_a_hole_longer_than_the_backfill_bound_is_a_gap_for_its_oldest_part_only(
    tapes: dict[str, SymbolTape],
) -> None:
    _, client, _, missing = drop_and_stream_again(tapes, down_s=2.5, max_backfill_candles=1)
    assert len(missing) >= 3
    fetched = [c.open_time_ms for c in client.candles(source="backfill")]
    gap_reasons = {g.reason for g in client.gaps()}
    assert len(fetched) <= 2 and fetched[-1] == missing[-1]  # the newest one(s), fetched
    assert sorted(named_by_gaps(client) + fetched) == missing
    assert named_by_gaps(client) and gap_reasons == {
        "more than max_backfill_candles (1) missing"}  # fmt: skip
    assert spans(client, "backfill") == fetched and client.stream.backfill_skipped >= 1


def test_a_spent_rest_budget_makes_a_gap_rather_than_a_wait(
    tapes: dict[str, SymbolTape],
) -> None:
    async def banned(ex: Running, rest: BinanceRest) -> None:  # another caller got a 418
        rest.governor.observe(418, {"Retry-After": "120"}, rest.wall_ms())

    _, client, _, missing = drop_and_stream_again(tapes, banned)
    assert named_by_gaps(client) == missing
    assert {g.reason for g in client.gaps()} == {"over the REST weight budget"}
    assert client.stream.rest_kline_requests == 0 and client.stream.backfill_skipped >= 1


def test_a_failing_rest_backfill_makes_a_gap_and_streaming_goes_on(
    tapes: dict[str, SymbolTape],
) -> None:
    async def refuse(ex: Running, rest: BinanceRest) -> None:  # every REST call: a 429
        await inject(ex, kind="rate_limit", status=429, count=100)

    _, client, before, missing = drop_and_stream_again(tapes, refuse)
    assert named_by_gaps(client) == missing
    reasons = [g.reason for g in client.gaps()]
    assert reasons[0].startswith("REST klines failed: ") and "-1003" in reasons[0]
    assert set(reasons[1:]) <= {"over the REST weight budget"}  # the 429's hold, if split
    assert client.stream.backfill_failures >= 1 and not client.candles(source="backfill")
    assert len(client.candles()) >= len(before) + 3


def test_a_silent_connection_is_detected_and_replaced_and_no_candle_is_lost(
    tapes: dict[str, SymbolTape],
) -> None:
    async def scenario(rest: BinanceRest) -> Client:
        client = Client(ex, rest, [BTC_5M], silence_s=1.5, backoff_s=(0.2, 0.2))
        await until(lambda: len(client.candles()) >= 2, "two candles")
        await inject(ex, kind="silent_streams", seconds=3.0)  # six candles close unseen
        await until(lambda: client.stream.silent_reconnects >= 1, "the silence noticed", 5)
        streamed = len(client.candles(source="stream"))
        await until(lambda: len(client.candles(source="stream")) >= streamed + 3, "candles again")
        await client.close()
        return client

    with serving(tapes, START, speed=SPEED, control=True, stream_settings=FAST) as ex:
        client = run(ex, scenario)
    assert_each_candle_once_in_order_as_the_exchange_has_it(client.candles(), tapes["BTCUSDT"])
    s = client.stream
    assert s.silent_reconnects >= 1 and s.connections >= 2 and s.drops == 0
    assert len(client.candles(source="backfill")) >= 4  # the ones closed during the silence
    assert not client.gaps()


def test_late_finals_within_the_grace_are_each_emitted_once_in_order_without_rest(
    tapes: dict[str, SymbolTape],
) -> None:
    async def scenario(rest: BinanceRest) -> Client:
        # Grace 10 market minutes = 1 s of wall time at speed 600; finals come 0.2 s late,
        # after the next candle's first update.
        client = Client(ex, rest, [BTC_5M], late_final_grace_ms=600_000)
        await until(lambda: len(client.candles()) >= 2, "two candles")
        await inject(ex, kind="late_final", ms=200, count=4)
        await until(lambda: ex.exchange.faults.late_final_left == 0, "the late finals")
        streamed = len(client.candles())
        await until(lambda: len(client.candles()) >= streamed + 3, "the late ones and more")
        await client.close()
        return client

    with serving(tapes, START, speed=SPEED, control=True, stream_settings=FAST) as ex:
        client = run(ex, scenario)
    assert_each_candle_once_in_order_as_the_exchange_has_it(client.candles(), tapes["BTCUSDT"])
    assert all(c.source == "stream" for c in client.candles())
    assert client.stream.rest_kline_requests == 0 and client.stream.duplicates == 0


def test_finals_later_than_the_grace_are_backfilled_once_and_their_late_copy_dropped(
    tapes: dict[str, SymbolTape],
) -> None:
    async def scenario(rest: BinanceRest) -> Client:
        client = Client(ex, rest, [BTC_5M])  # grace 5 market seconds = 8 ms at speed 600
        await until(lambda: len(client.candles()) >= 2, "two candles")
        await inject(ex, kind="late_final", ms=300, count=3)
        await until(lambda: client.stream.duplicates == 3, "the three late finals")
        streamed = len(client.candles())
        await until(lambda: len(client.candles()) >= streamed + 2, "more candles")
        await client.close()
        return client

    with serving(tapes, START, speed=SPEED, control=True, stream_settings=FAST) as ex:
        client = run(ex, scenario)
    assert_each_candle_once_in_order_as_the_exchange_has_it(client.candles(), tapes["BTCUSDT"])
    backfilled = [c.open_time_ms for c in client.candles(source="backfill")]
    assert len(backfilled) == 3 and spans(client, "backfill") == backfilled
    assert client.stream.rest_kline_requests_backfill == 3 and not client.gaps()


def test_warm_up_comes_once_in_order_before_the_stream_and_then_no_rest_while_connected(
    tapes: dict[str, SymbolTape],
) -> None:
    btc_15m = ("BTCUSDT", "15m")
    warmup_from = {BTC_5M: START - 24 * M5, btc_15m: START - 8 * 3 * M5}
    requests_at_first_stream: dict[tuple[str, str], int] = {}

    async def scenario(rest: BinanceRest) -> Client:
        client = Client(ex, rest, [BTC_5M, btc_15m], warmup_from=warmup_from)

        def note_first_stream(items: list[MarketData]) -> None:
            client.items.extend(items)
            for i in items:
                if isinstance(i, Candle) and i.source == "stream":
                    key = (i.symbol, i.timeframe)
                    requests_at_first_stream.setdefault(key, client.stream.rest_kline_requests)

        client.stream.on_data = note_first_stream
        await until(lambda: len(client.candles(btc_15m, "stream")) >= 2, "15m stream candles")
        await until(lambda: len(client.candles(BTC_5M, "stream")) >= 8, "5m stream candles")
        await client.close()
        return client

    with serving(tapes, START, speed=SPEED, control=True, stream_settings=FAST) as ex:
        client = run(ex, scenario)
    tape = tapes["BTCUSDT"]
    for key in (BTC_5M, btc_15m):
        candles = client.candles(key)
        assert candles[0].open_time_ms == warmup_from[key]
        assert_each_candle_once_in_order_as_the_exchange_has_it(candles, tape, key[1])
        sources = [c.source for c in candles]
        warm = sources.count("warmup")
        assert warm >= 8 and sources == ["warmup"] * warm + ["stream"] * (len(sources) - warm)
    asked = spans(client, "warmup")
    warm_opens = [c.open_time_ms for c in client.candles(BTC_5M, "warmup")] + [
        c.open_time_ms for c in client.candles(btc_15m, "warmup")]  # fmt: skip
    assert sorted(asked) == sorted(warm_opens)  # each warm-up candle asked for once
    s = client.stream
    assert s.rest_kline_requests_backfill == 0 and s.rest_kline_requests_warmup >= 2
    # After each key's first stream candle: not one more REST kline request.
    assert set(requests_at_first_stream.values()) == {s.rest_kline_requests}


async def market_connections(ex: Running) -> list[int]:
    """The stream count of each market connection the exchange holds (read in its loop)."""

    async def read() -> list[int]:
        hub = ex.exchange.hub
        return sorted(len(c.streams) for c in hub._connections if c.route == MARKET)

    assert ex.loop is not None
    return asyncio.run_coroutine_threadsafe(read(), ex.loop).result(5)


def test_streams_are_spread_over_several_connections_when_the_cap_is_small(
    tapes: dict[str, SymbolTape],
) -> None:
    keys = [BTC_5M, ("BTCUSDT", "15m"), ("ETHUSDT", "5m")]  # 5 streams with the mark prices
    # The exchange pings every 0.3 s and cuts a client that has not answered within 1 s.
    pinging = StreamSettings(kline_push_ms=50, mark_price_fast_ms=50, ping_interval_ms=300,
                             pong_timeout_ms=1_000)  # fmt: skip

    async def scenario(rest: BinanceRest) -> tuple[Client, list[int]]:
        client = Client(ex, rest, keys, max_streams_per_connection=2)
        await until(lambda: client.stream.live, "every connection up")
        await until(lambda: len(client.candles(("BTCUSDT", "15m"))) >= 2, "15m candles")
        held = await market_connections(ex)
        await client.close()
        return client, held

    with serving(tapes, START, speed=SPEED, control=True, stream_settings=pinging) as ex:
        client, held = run(ex, scenario)
    assert held == [1, 2, 2]
    s = client.stream
    assert s.connections == 3 and s.drops == 0 and s.rest_kline_requests == 0
    for key in keys:
        assert_each_candle_once_in_order_as_the_exchange_has_it(
            client.candles(key), tapes[key[0]], key[1])  # fmt: skip
    for symbol in ("BTCUSDT", "ETHUSDT"):
        marks = [i.time_ms for i in client.items if isinstance(i, MarkPrice) and i.symbol == symbol]
        assert len(marks) >= 10 and marks == sorted(set(marks))


def test_a_proactive_reconnect_before_the_age_limit_loses_and_doubles_nothing(
    tapes: dict[str, SymbolTape],
) -> None:
    async def scenario(rest: BinanceRest) -> tuple[Client, list[int]]:
        client = Client(ex, rest, [BTC_5M], max_connection_age_s=1.0)
        await until(lambda: client.stream.proactive_reconnects >= 3, "three switch-overs")
        await until(lambda: len(client.candles()) >= 8, "eight candles")
        switched = client.stream.proactive_reconnects
        await until(lambda: client.stream.proactive_reconnects > switched, "one more")
        await asyncio.sleep(0.3)  # between two switch-overs
        held = await market_connections(ex)
        await client.close()
        return client, held

    with serving(tapes, START, speed=SPEED, control=True, stream_settings=FAST) as ex:
        client, held = run(ex, scenario)
    assert_each_candle_once_in_order_as_the_exchange_has_it(client.candles(), tapes["BTCUSDT"])
    s = client.stream
    assert s.connections == s.proactive_reconnects + 1 and s.drops == 0
    assert s.rest_kline_requests == 0 and all(c.source == "stream" for c in client.candles())
    assert held == [2]  # the old connections were closed once the new ones spoke
