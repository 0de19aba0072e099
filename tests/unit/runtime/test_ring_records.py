"""Messages as ring records (msgspec), the brain's lanes and the feed's conflation, in one
process on real shared memory (the processes themselves: tests/integration/runtime)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slt.adapters.exchange.kline_sequencer import Candle, CandleGap
from slt.adapters.exchange.market_stream import MarkPrice
from slt.domain.results import ExitFill, Trade
from slt.engine.messages import (
    AccountUpdated,
    CancelOrder,
    CandleClosed,
    CloseRequested,
    ExchangeOrder,
    ExchangePosition,
    FundingPaid,
    ModelChanged,
    Notify,
    OpenVirtualPosition,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    Persist,
    PlaceOrder,
    PositionLiquidated,
    Reconciled,
)
from slt.runtime.ring import Record, RecordTooLarge, Ring, RingError
from slt.runtime.ring_records import (
    DEFAULT_RINGS,
    KINDS,
    CandleUpdate,
    ConflatingWriter,
    Hello,
    Lanes,
    LastLook,
    LookDone,
    Message,
    decode,
    encode,
    get_message,
    put_message,
)

pytestmark = pytest.mark.skipif(
    not Path("/dev/shm").is_dir(), reason="needs POSIX shared memory in /dev/shm"
)
SYMBOL = "1000SHIBUSDT"
COID = "slt-7f3c9e1d-000042-partial_take_profit-2"  # a long client order id
T0 = 1_717_200_000_000
EXIT = ExitFill(T0 + 60_000, 0.0245678, 41_152_263.0, "partial_take_profit", 1.2345)
TRADE = Trade(123_456, SYMBOL, "long", T0, 0.0234567, T0 + 9_000_000, 0.0245678, 123_456_789.0,
              10.0, 2_895.5, 137.2, 4.7389, 3.4567, -0.4321, "take_profit", T0 - 300_000,
              (EXIT, EXIT, EXIT))  # fmt: skip
POSITION = ExchangePosition(SYMBOL, 1, 123_456_789.0, 0.0234567, 10.0)
ORDER = ExchangeOrder(COID, SYMBOL, "stop_market", -1, 123_456_789.0, 0.0245678, True)
EXAMPLES: list[Message] = [
    Candle(SYMBOL, "1m", T0, 1.0, 2.0, 0.5, 1.5, 1e9, "stream"),
    CandleGap(SYMBOL, "1m", T0, T0 + 120_000, "backfill failed"),
    MarkPrice(SYMBOL, T0, 0.0234, 0.0233, -0.000125, T0 + 28_800_000),
    CandleUpdate(SYMBOL, "5m", T0, T0 + 1_234, 1.0, 2.0, 0.5, 1.5, 77.0),
    CandleClosed(SYMBOL, T0, T0 + 300_000, 1.0, 2.0, 0.5, 1.5, -1, 0.73, math.nan, False),
    OrderSubmitted(COID, SYMBOL),
    OrderAccepted(COID, SYMBOL),
    OrderFilled(COID, SYMBOL, 2**62, T0, 0.0234567, 41_152_263.0, 0.12, "partially_filled"),
    OrderCanceled(COID, SYMBOL),
    OrderCancelRejected(COID, SYMBOL, "Unknown order sent."),
    OrderExpired(COID, SYMBOL, "GTX would take"),
    OrderRejected(COID, SYMBOL, "-2019 Margin is insufficient."),
    PositionLiquidated(SYMBOL, 99, T0, 0.02, 123_456_789.0),
    FundingPaid(SYMBOL, T0, 0.0001, 0.0234, -1.25),
    AccountUpdated(T0, 12_345.67),
    ModelChanged("smc-2024-06-01T00:00:00-abcdef"),
    CloseRequested(SYMBOL, "emergency_close"),
    Reconciled(T0, 12_345.67, (POSITION,) * 50, (ORDER,) * 60),
    PlaceOrder(
        COID,
        SYMBOL,
        "stop_market",
        "partial_take_profit",
        -1,
        123_456_789.0,
        0.0245678,
        True,
        False,
        "partial_take_profit",
        20.0,
    ),
    CancelOrder(COID, SYMBOL),
    OpenVirtualPosition(SYMBOL, T0, T0 + 300_000, 1, 0.734, 0.0123, 0.0246, "model-7"),
    Persist(TRADE),
    Notify("stop could not be placed; position closed" * 5, "warning", SYMBOL),
    Hello("r1733616000000"),
    LastLook(4),
    LookDone(4),
]
RING_OF = {"market": (Candle, CandleGap, MarkPrice, CandleUpdate),
           "commands": (PlaceOrder, CancelOrder, OpenVirtualPosition, Persist, Notify, Hello,
                        LastLook)}  # fmt: skip


NewRing = Callable[..., Ring]


@pytest.fixture
def new_ring() -> Iterator[NewRing]:
    """A fresh ring with a unique name: ``new_ring(capacity=64, slot_size=256)``."""
    rings: list[Ring] = []

    def create(capacity: int = 64, slot_size: int = 256) -> Ring:
        rings.append(Ring.create(f"slt-test-{uuid.uuid4().hex[:12]}", capacity, slot_size))
        return rings[-1]

    yield create
    for ring in rings:
        ring.unlink()


def update(symbol: str, minute: int, tick: int) -> CandleUpdate:
    return CandleUpdate(symbol, "1m", minute * 60_000, minute * 60_000 + tick,
                        1.0, 2.0, 0.5, 1.5, float(tick))  # fmt: skip


def closed(symbol: str, minute: int) -> Candle:
    return Candle(symbol, "1m", minute * 60_000, 1.0, 2.0, 0.5, 1.5, 9.0, "stream")


def drain(ring: Ring) -> list[Message]:
    return [decode(record) for record in ring.get_many(10_000)]


# -- the records ------------------------------------------------------------------------------


def test_the_examples_cover_every_message_type_with_a_kind() -> None:
    assert {type(m) for m in EXAMPLES} == set(KINDS)


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).__name__)
def test_every_message_type_comes_back_equal_and_of_its_type_from_its_record(
    message: Message,
) -> None:
    record = encode(message)

    back = decode(Record(record.kind, bytes(record.payload)))

    assert type(back) is type(message) and back == message


def test_kind_codes_are_unique_and_never_renumbered() -> None:
    codes = {cls.__name__: kind for cls, kind in KINDS.items()}

    assert len(set(codes.values())) == len(codes) and 0 not in codes.values()
    assert codes == {
        "Candle": 1, "CandleGap": 2, "MarkPrice": 3, "CandleUpdate": 4,
        "CandleClosed": 20, "OrderSubmitted": 21, "OrderAccepted": 22, "OrderFilled": 23,
        "OrderCanceled": 24, "OrderCancelRejected": 25, "OrderExpired": 26,
        "OrderRejected": 27, "PositionLiquidated": 28, "FundingPaid": 29,
        "AccountUpdated": 30, "ModelChanged": 31, "CloseRequested": 32, "Reconciled": 33,
        "PlaceOrder": 50, "CancelOrder": 51, "OpenVirtualPosition": 52, "Persist": 53,
        "Notify": 54, "Hello": 70, "LastLook": 71, "LookDone": 72,
    }  # fmt: skip


@given(
    coid=st.text(max_size=36),
    trade_id=st.integers(-(2**63), 2**63 - 1),
    price=st.floats(allow_nan=True, allow_infinity=True),
    quantity=st.floats(allow_nan=True, allow_infinity=True),
    status=st.sampled_from(["partially_filled", "filled"]),
)
def test_any_fill_comes_back_equal(
    coid: str, trade_id: int, price: float, quantity: float, status: str
) -> None:
    fill = OrderFilled(coid, "BTCUSDT", trade_id, T0, price, quantity, 0.0, status)  # type: ignore[arg-type]

    assert decode(encode(fill)) == fill


def test_the_default_rings_fit_the_largest_messages_they_carry() -> None:
    slots = {spec.name: spec.slot_size - 16 for spec in DEFAULT_RINGS}

    for message in EXAMPLES:  # Reconciled with 50 positions and 60 long-named orders
        ring = next((n for n, types in RING_OF.items() if isinstance(message, types)), "events")
        assert len(encode(message).payload) <= slots[ring], type(message).__name__


def test_the_default_rings_take_a_sixth_of_a_containers_dev_shm() -> None:
    assert sum(spec.shm_bytes for spec in DEFAULT_RINGS) < 64 * 2**20 / 6


def test_a_message_too_long_for_a_slot_raises_naming_its_type_and_size_and_writes_nothing(
    new_ring: NewRing,
) -> None:
    ring = new_ring(capacity=4, slot_size=256)
    put_message(ring, AccountUpdated(T0, 1.0))
    huge = Notify("x" * 300)

    with pytest.raises(RecordTooLarge, match=r"^Notify is 310 bytes, more than the 240 a slot"):
        put_message(ring, huge)
    with pytest.raises(RecordTooLarge, match=r"^Notify is 310 bytes"):
        encode(huge, max_size=240)

    assert drain(ring) == [AccountUpdated(T0, 1.0)]


def test_a_record_of_no_message_kind_or_a_bad_payload_is_refused_by_name() -> None:
    with pytest.raises(RingError, match="record kind 999 is no message type"):
        decode(Record(999, b"\x90"))
    with pytest.raises(RingError, match="a PlaceOrder record does not decode"):
        decode(Record(KINDS[PlaceOrder], encode(CancelOrder(COID, SYMBOL)).payload))
    with pytest.raises(RingError, match="ExitFill has no kind code"):
        encode(EXIT)  # type: ignore[arg-type]


def test_put_and_get_message_carry_a_message_through_a_ring(new_ring: NewRing) -> None:
    ring = new_ring()
    sent = EXAMPLES[4]

    assert put_message(ring, sent)

    assert get_message(ring) == sent and get_message(ring) is None


# -- lanes ------------------------------------------------------------------------------------


def test_lanes_return_every_waiting_order_event_before_market_data(
    new_ring: NewRing,
) -> None:
    market, priority = new_ring(), new_ring()
    for minute in range(5):
        put_message(market, closed("BTCUSDT", minute))
    lanes = Lanes(priority, market)
    first = decode(lanes.get() or Record(0, b""))
    put_message(priority, OrderAccepted(COID, SYMBOL))
    put_message(priority, OrderFilled(COID, SYMBOL, 1, T0, 1.0, 1.0, 0.0))

    order = [type(decode(record)).__name__ for record in iter(lanes.get, None)]

    assert first == closed("BTCUSDT", 0)
    assert order == ["OrderAccepted", "OrderFilled", "Candle", "Candle", "Candle", "Candle"]


def test_lanes_get_many_fills_up_with_market_data_after_the_order_events(
    new_ring: NewRing,
) -> None:
    market, priority = new_ring(), new_ring()
    for minute in range(5):
        put_message(market, closed("BTCUSDT", minute))
    put_message(priority, AccountUpdated(T0, 1.0))
    lanes = Lanes(priority, market)

    batch = [decode(record) for record in lanes.get_many(3)]

    assert batch == [AccountUpdated(T0, 1.0), closed("BTCUSDT", 0), closed("BTCUSDT", 1)]
    assert lanes.wait(0.0) and len(market) == 3 and len(priority) == 0


# -- conflation -------------------------------------------------------------------------------


def test_below_the_lag_mark_every_forming_candle_goes_straight_through(
    new_ring: NewRing,
) -> None:
    ring = new_ring(capacity=64)
    writer = ConflatingWriter(ring, lag_fill=0.5)

    for tick in range(10):
        writer.put_message(update("BTCUSDT", 0, tick))

    assert writer.pending == 0 and writer.conflated == 0
    assert drain(ring) == [update("BTCUSDT", 0, tick) for tick in range(10)]


def test_under_lag_only_the_latest_forming_candle_per_symbol_and_timeframe_is_kept(
    new_ring: NewRing,
) -> None:
    ring = new_ring(capacity=8)
    writer = ConflatingWriter(ring, lag_fill=0.5)
    for tick in range(4):  # the lag mark: 4 of 8
        writer.put_message(update("BTCUSDT", 0, tick))

    for tick in range(4, 100):
        writer.put_message(update("BTCUSDT", 0, tick))
        writer.put_message(update("ETHUSDT", 0, tick))
    writer.put_message(MarkPrice("BTCUSDT", T0, 1.0, 1.0, 0.0, T0))
    writer.put_message(MarkPrice("BTCUSDT", T0 + 1_000, 2.0, 2.0, 0.0, T0))
    first = drain(ring)
    writer.flush()

    assert first == [update("BTCUSDT", 0, tick) for tick in range(4)]
    assert drain(ring) == [
        update("BTCUSDT", 0, 99),
        update("ETHUSDT", 0, 99),
        MarkPrice("BTCUSDT", T0 + 1_000, 2.0, 2.0, 0.0, T0),
    ]
    assert writer.conflated == 2 * 96 - 2 + 1 and writer.pending == 0


def test_under_lag_closed_candles_are_never_dropped_and_keep_their_order(
    new_ring: NewRing,
) -> None:
    ring = new_ring(capacity=8)
    writer = ConflatingWriter(ring, lag_fill=0.5)
    for tick in range(4):
        writer.put_message(update("BTCUSDT", 0, tick))

    for minute in range(30):  # the consumer reads nothing meanwhile
        for tick in range(10):
            writer.put_message(update("BTCUSDT", minute, tick))
        writer.put_message(closed("BTCUSDT", minute))
    writer.put_message(update("BTCUSDT", 30, 0))
    received = drain(ring)
    while writer.pending:
        writer.flush()
        received += drain(ring)

    candles = [m for m in received if isinstance(m, Candle)]
    assert candles == [closed("BTCUSDT", minute) for minute in range(30)]
    assert received[-2:] == [closed("BTCUSDT", 29), update("BTCUSDT", 30, 0)]
    assert len(received) == 4 + 30 + 1  # every forming candle under lag replaced by the next


def test_flush_moves_waiting_records_once_the_consumer_has_caught_up(
    new_ring: NewRing,
) -> None:
    ring = new_ring(capacity=8)
    writer = ConflatingWriter(ring, lag_fill=0.5)
    for minute in range(10):
        writer.put_message(closed("BTCUSDT", minute))
    assert (len(ring), writer.pending) == (4, 6)

    ring.get_many(4)
    moved = writer.flush()

    assert moved == 4 and writer.pending == 2
    assert drain(ring) == [closed("BTCUSDT", minute) for minute in range(4, 8)]


def test_the_conflating_writer_refuses_a_message_too_long_for_a_slot(
    new_ring: NewRing,
) -> None:
    writer = ConflatingWriter(new_ring(slot_size=64))

    with pytest.raises(RecordTooLarge, match=r"^CandleGap is"):
        writer.put_message(CandleGap(SYMBOL, "1m", T0, T0, "x" * 40))

    assert writer.pending == 0
