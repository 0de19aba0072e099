"""The kline and mark-price channels over real BTCUSDT 5m futures candles: every final once,
in order, with the stored prices, however the timer's ticks fall; updates only when the
candle changed."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slt.adapters.exchange.local import answers, stream_frames
from slt.adapters.exchange.local.market import SymbolTape
from slt.adapters.exchange.local.stream_channels import (
    KlineChannel,
    MarkPriceChannel,
    open_channel,
)
from slt.domain.clock import parse_utc_ms
from slt.domain.series import Candles, FundingRates, Kind, Market, SeriesKey
from slt.domain.trading.symbol_rules import symbol_rules
from tests.conftest import CATMAN_BTC_5M, real_ohlcv

START = parse_utc_ms("2024-01-01")
DAY_ROWS = 288  # 5m candles in a day


def btc_tape(drop: slice | None = None) -> SymbolTape:
    rows = real_ohlcv(CATMAN_BTC_5M)
    keep = np.ones(len(rows), dtype=bool)
    if drop is not None:
        keep[drop] = False
    candles = Candles.from_arrays(
        SeriesKey("BTCUSDT", Market.FUTURES, "5m"), rows.times_ms[keep], rows.open[keep],
        rows.high[keep], rows.low[keep], rows.close[keep], rows.volume[keep],
    )  # fmt: skip
    return SymbolTape(symbol_rules("BTCUSDT"), candles)


@pytest.fixture(scope="module")
def tape() -> SymbolTape:
    return btc_tape()


def replay(channel: KlineChannel, steps_ms: list[int], push_ms: int = 0) -> list[dict[str, Any]]:
    """Tick the channel at START + the running sums of ``steps_ms`` (wall time moves as
    market time here), the payloads it pushed, parsed."""
    now = START
    out: list[dict[str, Any]] = []
    for step in steps_ms:
        now += step
        out += [json.loads(t) for t in channel.due(now, now, push_ms, 0)]
    return out


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(st.integers(1, 2 * 3_600_000), min_size=1, max_size=30),
    interval=st.sampled_from(["5m", "15m", "1h"]),
)
def test_every_final_arrives_once_in_order_with_the_rest_prices_however_ticks_fall(
    tape: SymbolTape, steps: list[int], interval: str
) -> None:
    channel = KlineChannel.start(tape, interval, START)
    events = replay(channel, steps)
    length = tape.interval_ms(interval)
    closed = [e["k"] for e in events if e["k"]["x"]]
    end = START + sum(steps)
    expected = tape.klines(interval, end, START, end - length, 1_500)
    assert [k["t"] for k in closed] == [row[0] for row in expected]
    fields = ["t", "o", "h", "l", "c", "v", "T", "q", "n", "V", "Q", "B"]
    rows = [answers.kline_row(tape, row, length, 0) for row in expected]
    assert [[k[f] for f in fields] for k in closed] == rows
    for k in closed:  # each candle had an update while it formed, before its final
        first = next(e["k"] for e in events if e["k"]["t"] == k["t"])
        assert not first["x"] and first["o"] == k["o"]
    times = [e["E"] for e in events]
    assert times == sorted(times)


def test_the_forming_candle_is_pushed_only_when_it_changed(tape: SymbolTape) -> None:
    channel = KlineChannel.start(tape, "15m", START)
    first = replay(channel, [1_000])
    assert [e["k"]["x"] for e in first] == [False]
    # Within the same 5m candle nothing new is known: no update.
    assert channel.due(START + 60_000, START + 60_000, 0, 0) == []
    # Its close is: the 15m candle grows by one stored candle.
    grown = [json.loads(t)["k"] for t in channel.due(START + 300_000, START + 300_000, 0, 0)]
    rows = tape.candles
    assert len(grown) == 1 and grown[0]["h"] == answers.price(
        tape, max(float(rows.high[rows.open_time_ms == START][0]), float(grown[0]["o"]))
    )
    assert float(grown[0]["v"]) == pytest.approx(float(rows.volume[rows.open_time_ms == START][0]))


def test_updates_of_a_candle_come_at_most_once_per_push_period(tape: SymbolTape) -> None:
    channel = KlineChannel.start(tape, "1h", START)
    assert channel.due(START, 0, 250, 0)  # a new candle: at once
    # Its next change is known five minutes later, but only 100 ms of wall time passed.
    assert channel.due(START + 300_000, 100, 250, 0) == []
    assert len(channel.due(START + 300_000, 250, 250, 0)) == 1


def test_a_candle_missing_from_the_data_is_skipped_not_invented() -> None:
    first = int(np.searchsorted(real_ohlcv(CATMAN_BTC_5M).times_ms, START))
    holed = btc_tape(slice(first + 2, first + 4))  # 00:10 and 00:15 are missing
    channel = KlineChannel.start(holed, "5m", START)
    closed = [e["k"]["t"] for e in replay(channel, [60_000] * 40) if e["k"]["x"]]
    assert closed == [START + i * 300_000 for i in (0, 1, 4, 5, 6, 7)]


def test_the_mark_price_channel_pushes_every_period_of_wall_time_what_premium_index_says(
    tape: SymbolTape,
) -> None:
    rates = FundingRates.from_arrays(
        SeriesKey("BTCUSDT", Market.FUTURES, "8h", Kind.FUNDING), [START - 8 * 3_600_000],
        [0.0001],
    )  # fmt: skip
    funded = SymbolTape(tape.rules, tape.candles, rates)
    channel = MarkPriceChannel(funded, 3_000)
    pushed = [wall for wall in range(0, 10_000, 250) if channel.due(START, wall, 250, 7)]
    assert pushed == [0, 3_000, 6_000, 9_000]
    event = json.loads(MarkPriceChannel(funded, 1_000).due(START, 0, 250, 7)[0])
    index = answers.premium_index(funded, START, 7)
    assert event == {
        "e": "markPriceUpdate", "E": index["time"], "s": "BTCUSDT", "p": index["markPrice"],
        "i": index["indexPrice"], "P": index["estimatedSettlePrice"],
        "r": index["lastFundingRate"], "T": index["nextFundingTime"],
    }  # fmt: skip
    assert event["r"] == "0.00010000"


def test_only_streams_the_replay_can_give_get_a_channel(tape: SymbolTape) -> None:
    tapes = {"BTCUSDT": tape}

    def channel(name: str) -> object:
        return open_channel(name, tapes, START, 3_000, 1_000)

    assert isinstance(channel("btcusdt@kline_5m"), KlineChannel)
    assert isinstance(channel("btcusdt@kline_1w"), KlineChannel)
    fast = channel("btcusdt@markPrice@1s")
    assert isinstance(fast, MarkPriceChannel) and fast.period_ms == 1_000
    slow = channel("btcusdt@markPrice")
    assert isinstance(slow, MarkPriceChannel) and slow.period_ms == 3_000
    for name in ("btcusdt@kline_1m", "btcusdt@kline_7m", "ethusdt@kline_5m", "BTCUSDT@kline_5m",
                 "btcusdt@aggTrade", "btcusdt@markPrice@3s", "0", ""):  # fmt: skip
        assert channel(name) is None, name


def test_the_fast_kline_json_is_the_kline_event_dumped(tape: SymbolTape) -> None:
    forming = tape.forming(900_000, START + 420_000)
    assert forming is not None
    for row, closed in ((tape.klines("15m", START + 3_600_000, START, None, 2)[0], True),
                        (forming, False)):  # fmt: skip
        for shift in (0, 86_400_000 * 1_000):
            fast = stream_frames.kline_event_json(tape, "15m", 900_000, row, closed, START, shift)
            event = stream_frames.kline_event(tape, "15m", 900_000, row, closed, START, shift)
            assert fast == stream_frames.dump(event)
