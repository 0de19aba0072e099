"""What travels the rings between the runtime's processes: the engine's messages and the
market stream's data as msgpack records (msgspec), the brain's two lanes, and the feed's
conflation of forming candles (issue 15 item 3; docs/trading.md "The ring between processes").

A message is a NamedTuple; its record is ``Record(kind, msgpack of its fields as an array)``.
Kind codes are part of the ring's format: a code is never reused for another type.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, NamedTuple

import msgspec

from slt.adapters.exchange.kline_sequencer import Candle, CandleGap
from slt.adapters.exchange.market_stream import MarkPrice
from slt.engine.messages import (
    AccountUpdated,
    CancelOrder,
    CandleClosed,
    CloseRequested,
    Command,
    Event,
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
from slt.runtime.ring import (
    CONTROL_BYTES,
    Record,
    RecordTooLarge,
    Ring,
    RingError,
    WaitPolicy,
    doorbell_poller,
    wait_for_any,
)

__all__ = [
    "DEFAULT_RINGS",
    "KINDS",
    "CandleUpdate",
    "ConflatingWriter",
    "Hello",
    "Lanes",
    "LastLook",
    "LookDone",
    "Message",
    "RingSpec",
    "conflation_key",
    "decode",
    "encode",
    "get_message",
    "put_message",
]


class CandleUpdate(NamedTuple):
    """A forming (not yet closed) candle as a kline frame shows it: only the latest per
    (symbol, timeframe) matters, so a lagging feed keeps only that one (``conflation_key``)."""

    symbol: str
    timeframe: str
    open_time_ms: int
    time_ms: int  # the frame's event time
    open: float
    high: float
    low: float
    close: float
    volume: float


class Hello(NamedTuple):
    """Brain -> executor: the brain (re)started and rebuilt its books from its journal; the
    executor answers with the exchange as it is now (``Reconciled``)."""

    run_id: str


class LastLook(NamedTuple):
    """Brain -> executor, when stopping: round 1 withdraws the entries; every round settles
    the market orders, reads the missed fills and answers ``Reconciled`` then ``LookDone``."""

    round: int


class LookDone(NamedTuple):
    """Executor -> brain: the round's events have all been sent."""

    round: int


class RingSpec(NamedTuple):
    """One ring of the runtime and its size; ``shm_bytes`` is what it takes of /dev/shm."""

    name: str
    capacity: int
    slot_size: int

    @property
    def shm_bytes(self) -> int:
        return CONTROL_BYTES + self.capacity * self.slot_size


# The live runtime's rings (DESIGN.md): 10.5 MiB of /dev/shm in all, allocated when they are
# created (a container's default is 64 MiB). Commands carry Persist (a Trade with its exits):
# 512-byte slots; events carry Reconciled (every position and open order at start-up, some 90
# bytes an order, so about 60 orders and 50 positions): 8 KiB slots.
DEFAULT_RINGS = (
    RingSpec("market", capacity=8_192, slot_size=256),  # feed -> brain
    RingSpec("commands", capacity=1_024, slot_size=512),  # brain -> executor
    RingSpec("events", capacity=1_024, slot_size=8_192),  # executor -> brain
)


Control = Hello | LastLook | LookDone
Message = Candle | CandleGap | MarkPrice | CandleUpdate | Event | Command | Control

# Kind codes: 1-19 market data, 20-49 events, 50-69 commands; 0 is never a message.
KINDS: dict[type, int] = {
    Candle: 1,
    CandleGap: 2,
    MarkPrice: 3,
    CandleUpdate: 4,
    CandleClosed: 20,
    OrderSubmitted: 21,
    OrderAccepted: 22,
    OrderFilled: 23,
    OrderCanceled: 24,
    OrderCancelRejected: 25,
    OrderExpired: 26,
    OrderRejected: 27,
    PositionLiquidated: 28,
    FundingPaid: 29,
    AccountUpdated: 30,
    ModelChanged: 31,
    CloseRequested: 32,
    Reconciled: 33,
    PlaceOrder: 50,
    CancelOrder: 51,
    OpenVirtualPosition: 52,
    Persist: 53,
    Notify: 54,
    Hello: 70,
    LastLook: 71,
    LookDone: 72,
}
_ENCODER = msgspec.msgpack.Encoder()  # stateless; one schema-checked decoder per kind
_DECODERS: dict[int, msgspec.msgpack.Decoder[Any]] = {
    kind: msgspec.msgpack.Decoder(cls) for cls, kind in KINDS.items()
}
_NAMES = {kind: cls.__name__ for cls, kind in KINDS.items()}
_new_record = tuple.__new__  # Record(...) is a Python frame: a third of an encode


def encode(message: Message, max_size: int | None = None) -> Record:
    """The record of ``message``; ``RecordTooLarge`` naming its type and size when it is
    longer than ``max_size``."""
    kind = KINDS.get(type(message))
    if kind is None:
        raise RingError(f"{type(message).__name__} has no kind code for the rings")
    payload = _ENCODER.encode(message)
    if max_size is not None and len(payload) > max_size:
        raise RecordTooLarge(type(message).__name__, len(payload), max_size)
    return _new_record(Record, (kind, payload))


def decode(record: Record) -> Message:
    """The message a record carries (a RingError for an unknown kind or a bad payload)."""
    decoder = _DECODERS.get(record.kind)
    if decoder is None:
        raise RingError(f"record kind {record.kind} is no message type")
    try:
        message: Message = decoder.decode(record.payload)
    except msgspec.DecodeError as exc:
        raise RingError(f"a {_NAMES[record.kind]} record does not decode: {exc}") from exc
    return message


def put_message(ring: Ring, message: Message) -> bool:
    """Write ``message`` to ``ring``; False when the ring is full. A message too long for a
    slot raises ``RecordTooLarge`` naming its type and size, and nothing is written."""
    kind, payload = _checked(ring, message)
    return ring.put(kind, payload)


def get_message(ring: Ring) -> Message | None:
    record = ring.get()
    return None if record is None else decode(record)


def _checked(ring: Ring, message: Message) -> Record:
    try:
        return encode(message, ring.payload_size)
    except RecordTooLarge as exc:
        raise RecordTooLarge(type(message).__name__, exc.size, exc.limit, ring.name) from None


def conflation_key(message: Message) -> Hashable | None:
    """What a newer message replaces an older one by under lag; None: never replaced.
    Forming candles per (symbol, timeframe) and mark prices per symbol are snapshots."""
    if type(message) is CandleUpdate:
        return (KINDS[CandleUpdate], message.symbol, message.timeframe)
    if type(message) is MarkPrice:
        return (KINDS[MarkPrice], message.symbol)
    return None


_KEEP = object()  # the pending-key tag of records a ConflatingWriter never replaces


class ConflatingWriter:
    """The feed's side of the market ring. While the ring holds fewer than ``lag_fill`` of its
    capacity, records go straight in; above that (the brain lags) they wait here in order,
    and one with a conflation key replaces the waiting one of the same key, moving to the
    end (so it still comes after everything older). Records without a key (closed candles,
    gaps) are never dropped. ``flush`` when idle moves waiting records on."""

    def __init__(self, ring: Ring, *, lag_fill: float = 0.5) -> None:
        self.ring = ring
        self.lag_records = max(1, int(ring.capacity * lag_fill))
        self._pending: OrderedDict[Hashable, Record] = OrderedDict()
        self._kept = 0
        self.conflated = 0  # records replaced by a newer one of their key, in all

    @property
    def pending(self) -> int:
        return len(self._pending)

    def put_message(self, message: Message) -> None:
        self.put(_checked(self.ring, message), conflation_key(message))

    def put(self, record: Record, key: Hashable | None = None) -> None:
        """Send ``record`` now or keep it (never refused); ``key``: what it replaces."""
        if len(record.payload) > self.ring.payload_size:
            what = f"a record of kind {record.kind}"
            raise RecordTooLarge(what, len(record.payload), self.ring.payload_size, self.ring.name)
        lagging = bool(self._pending) or len(self.ring) >= self.lag_records
        if not lagging and self.ring.put(record.kind, record.payload):
            return
        if key is None:
            self._kept += 1
            key = (_KEEP, self._kept)
        elif self._pending.pop(key, None) is not None:
            self.conflated += 1
        self._pending[key] = record
        self.flush()

    def flush(self) -> int:
        """Move waiting records into the ring while it is below the lag mark; how many."""
        moved = 0
        while self._pending and len(self.ring) < self.lag_records:
            key, record = next(iter(self._pending.items()))
            if not self.ring.put(record.kind, record.payload):
                break
            del self._pending[key]
            moved += 1
        return moved


class Lanes:
    """The brain's inbox: two rings read as one, ``priority`` (order and account events from
    the executor) always ahead of ``market`` (market data from the feed)."""

    def __init__(self, priority: Ring, market: Ring, policy: WaitPolicy = WaitPolicy()) -> None:
        self.priority, self.market, self.policy = priority, market, policy
        self._poller = doorbell_poller((priority, market))

    def get(self) -> Record | None:
        record = self.priority.get()
        return self.market.get() if record is None else record

    def get_many(self, limit: int) -> list[Record]:
        """Up to ``limit`` records, every waiting priority record first."""
        records = self.priority.get_many(limit)
        if len(records) < limit:
            records += self.market.get_many(limit - len(records))
        return records

    def wait(self, timeout_s: float) -> bool:
        """Whether either ring has a record within ``timeout_s`` (one sleep on both bells)."""
        return wait_for_any((self.priority, self.market), timeout_s, self.policy, self._poller)

    def get_blocking(self, timeout_s: float) -> Record | None:
        record = self.get()
        if record is None and self.wait(timeout_s):
            record = self.get()
        return record
