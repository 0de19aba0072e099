"""The ordering rules of closed candles per (symbol, timeframe), without any I/O: each candle
once, in open-time order, a hole fetched (or named in a gap), a late final waited for only
within its grace."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slt.adapters.exchange.kline_sequencer import Candle, CandleGap, KlineSequencer, Source

M = 60_000  # 1m candles
T0 = 1_700_000_040_000  # a minute boundary
GRACE = 5_000


def candle(i: int, source: Source = "stream") -> Candle:
    price = 100.0 + i
    return Candle("BTCUSDT", "1m", T0 + i * M, price, price + 2, price - 1, price + 1, 10.0 + i,
                  source)  # fmt: skip


def opens(items: list[Candle | CandleGap]) -> list[int]:
    return [(c.open_time_ms - T0) // M for c in items if isinstance(c, Candle)]


def sequencer(start: int | None = None) -> KlineSequencer:
    return KlineSequencer("BTCUSDT", "1m", late_final_grace_ms=GRACE,
                          start_open_ms=None if start is None else T0 + start * M)  # fmt: skip


def test_finals_in_order_are_emitted_at_once_each_once() -> None:
    seq = sequencer()
    out = [item for i in range(4) for item in seq.on_final(candle(i))]
    assert out == [candle(i) for i in range(4)]
    assert seq.due() is None


def test_a_final_sent_twice_is_dropped_and_counted() -> None:
    seq = sequencer()
    seq.on_final(candle(0))
    seq.on_final(candle(1))
    assert seq.on_final(candle(1)) == [] and seq.on_final(candle(0)) == []
    assert seq.duplicates == 2


def test_a_jump_forward_holds_the_later_final_and_asks_for_exactly_the_missing_candles() -> None:
    seq = sequencer()
    seq.on_final(candle(0))
    assert seq.on_final(candle(4)) == []  # 1, 2, 3 never came
    assert seq.due() == (T0 + 1 * M, T0 + 3 * M)
    seq.begin_fetch(T0 + 1 * M, T0 + 3 * M)
    assert seq.due() is None  # one fetch at a time
    out = seq.settle(T0 + 1 * M, T0 + 3 * M, [candle(i, "backfill") for i in (1, 2, 3)], "-")
    assert out == [candle(1, "backfill"), candle(2, "backfill"), candle(3, "backfill"), candle(4)]
    assert seq.next_open_ms == T0 + 5 * M and seq.fetching is None


def test_a_late_final_within_the_grace_is_waited_for_and_emitted() -> None:
    seq = sequencer()
    seq.on_final(candle(0))
    seq.observe(T0 + 2 * M + 1_000)  # candle 1 closed a second ago: the next one has begun
    assert seq.due() is None
    assert seq.on_final(candle(1)) == [candle(1)]
    assert seq.duplicates == 0


def test_a_final_missing_past_the_grace_is_owed_and_its_late_arrival_is_a_duplicate() -> None:
    seq = sequencer()
    seq.on_final(candle(0))
    seq.observe(T0 + 2 * M + GRACE - 1)
    assert seq.due() is None
    seq.observe(T0 + 2 * M + GRACE)
    assert seq.due() == (T0 + M, T0 + M)
    seq.begin_fetch(T0 + M, T0 + M)
    assert seq.settle(T0 + M, T0 + M, [candle(1, "backfill")], "-") == [candle(1, "backfill")]
    assert seq.on_final(candle(1)) == [] and seq.duplicates == 1


def test_a_given_up_span_is_one_gap_naming_it_exactly_then_the_held_final_follows() -> None:
    seq = sequencer()
    seq.on_final(candle(0))
    seq.on_final(candle(5))
    first, last = seq.due() or (0, 0)
    out = seq.settle(first, last, [], "REST back-fill disabled")
    assert out == [CandleGap("BTCUSDT", "1m", T0 + M, T0 + 4 * M, "REST back-fill disabled"),
                   candle(5)]  # fmt: skip


def test_a_candle_the_exchange_does_not_have_is_a_gap_of_its_own() -> None:
    seq = sequencer()
    seq.on_final(candle(0))
    seq.on_final(candle(5))
    seq.begin_fetch(T0 + M, T0 + 4 * M)
    fetched = [candle(i, "backfill") for i in (1, 3, 4)]
    out = seq.settle(T0 + M, T0 + 4 * M, fetched, "not on the exchange")
    assert out == [candle(1, "backfill"),
                   CandleGap("BTCUSDT", "1m", T0 + 2 * M, T0 + 2 * M, "not on the exchange"),
                   candle(3, "backfill"), candle(4, "backfill"), candle(5)]  # fmt: skip


def test_finals_arriving_during_a_fetch_wait_and_the_fetched_copy_wins_inside_its_span() -> None:
    seq = sequencer()
    seq.on_final(candle(0))
    seq.on_final(candle(3))
    seq.begin_fetch(T0 + M, T0 + 2 * M)
    assert seq.on_final(candle(2)) == []  # inside the span: waits for the fetch
    assert seq.on_final(candle(4)) == []  # after it: waits too, order first
    out = seq.settle(T0 + M, T0 + 2 * M, [candle(1, "backfill"), candle(2, "backfill")], "-")
    assert opens(out) == [1, 2, 3, 4] and out[1] == candle(2, "backfill")
    assert seq.duplicates == 1


def test_a_fetch_settled_page_by_page_stays_in_flight_until_its_last_page() -> None:
    seq = sequencer()
    seq.on_final(candle(0))
    seq.on_final(candle(5))
    seq.begin_fetch(T0 + M, T0 + 4 * M)
    assert opens(seq.settle(T0 + M, T0 + 2 * M, [candle(1), candle(2)], "-")) == [1, 2]
    assert seq.fetching == (T0 + 3 * M, T0 + 4 * M)
    assert opens(seq.settle(T0 + 3 * M, T0 + 4 * M, [candle(3), candle(4)], "-")) == [3, 4, 5]


def test_a_warm_up_start_owes_everything_from_it_up_to_the_last_candle_past_the_grace() -> None:
    seq = sequencer(start=0)
    seq.observe(T0 + 10 * M + 2_000)  # candle 10 in progress; 9 closed 2 s ago
    assert seq.due() == (T0, T0 + 8 * M)  # 9 may still get its final on the stream
    seq.begin_fetch(T0, T0 + 8 * M)
    out = seq.settle(T0, T0 + 8 * M, [candle(i, "warmup") for i in range(9)], "-")
    assert opens(out) == list(range(9)) and not seq.streamed
    assert seq.on_final(candle(9)) == [candle(9)] and seq.streamed


def test_a_warm_up_start_between_boundaries_begins_at_the_next_candle() -> None:
    assert sequencer().next_open_ms is None
    assert KlineSequencer("BTCUSDT", "1m", start_open_ms=T0 + 1).next_open_ms == T0 + M
    assert KlineSequencer("BTCUSDT", "1w", start_open_ms=0).next_open_ms == 4 * 86_400_000


def test_a_fetch_must_start_at_the_next_candle_owed() -> None:
    seq = sequencer()
    seq.on_final(candle(0))
    with pytest.raises(ValueError, match="next candle owed"):
        seq.begin_fetch(T0 + 2 * M, T0 + 3 * M)


# -- any delivery of the stream: each candle once, in order, or in a gap -------------------

N = 30
deliveries = st.lists(
    st.tuples(
        st.sampled_from(["final", "twice", "lost", "late"]), st.booleans(), st.integers(0, M - 1)
    ),
    min_size=N,
    max_size=N,
)


@settings(max_examples=200, deadline=None)
@given(deliveries, st.booleans(), st.sampled_from([None, 0, 3]))
def test_whatever_the_stream_does_every_candle_comes_once_in_order_or_in_a_gap(
    plan: list[tuple[str, bool, int]], fetch_fails: bool, start: int | None
) -> None:
    seq = sequencer(start)
    out: list[Candle | CandleGap] = []
    late: list[Candle] = []

    def fetch() -> None:
        while (span := seq.due()) is not None:
            seq.begin_fetch(*span)
            first, last = span
            got = [] if fetch_fails else [candle(i, "backfill") for i in range(N)
                                          if first <= T0 + i * M <= last]  # fmt: skip
            out.extend(seq.settle(first, last, got, "failed"))

    for i, (how, fetch_now, clock_after_ms) in enumerate(plan):
        out.extend(item for c in late for item in seq.on_final(c))
        late = []
        if how in ("final", "twice"):
            out.extend(seq.on_final(candle(i)))
        if how == "twice":
            out.extend(seq.on_final(candle(i)))
        if how == "late":
            late.append(candle(i))
        seq.observe(T0 + (i + 1) * M + clock_after_ms)
        if fetch_now:
            fetch()
    out.extend(item for c in late for item in seq.on_final(c))
    seq.observe(T0 + N * M + GRACE)
    fetch()

    covered: list[int] = []
    for item in out:
        if isinstance(item, Candle):
            assert item[:-1] == candle((item.open_time_ms - T0) // M)[:-1]
            covered.append(item.open_time_ms)
        else:
            covered += range(item.from_open_ms, item.to_open_ms + 1, M)
    if start is None and not covered:
        assert all(how == "lost" for how, _, _ in plan)
        return
    begin = T0 + start * M if start is not None else covered[0]
    assert covered == list(range(begin, T0 + N * M, M))  # each once, in order, none skipped
    if not fetch_fails:
        assert not any(isinstance(item, CandleGap) for item in out)
