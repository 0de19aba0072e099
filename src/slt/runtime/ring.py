"""Single-producer, single-consumer rings in shared memory, the transport between the runtime's
processes (issue 15 item 3; docs/trading.md "The ring between processes").

One ``multiprocessing.shared_memory`` block per ring, laid out as (integers little-endian)::

      0  magic, layout version, capacity, slot size   written once by the creator, magic last
     64  head: records written (u64)                  only the producer writes it
    128  tail: records read (u64)                     only the consumer writes it
    192  sleeping: the consumer's sleep generation    only the consumer writes it
    256  capacity x slot: kind u32, length u32, sequence u64, payload (slot size - 16 bytes)

A record is published by storing head after its slot is complete, and consumed by storing tail
after it is copied out: nothing is ever overwritten before it is read (``put`` says False on a
full ring), no side sees a half-written slot, and a process killed anywhere leaves the ring
consistent (a new producer continues from head, a new consumer from tail). The cursors count
records and never wrap; the sequence in each slot is its record's index, checked on read.

Waiting does not burn a core: the consumer re-reads head for ``spin_s``, then gives the CPU away
with ``os.sched_yield`` for ``yield_s``, then sleeps on the ring's doorbell, a FIFO beside the
block. Before it sleeps it stores an odd "sleeping" generation and looks at head once more; a
producer that sees an odd generation after publishing writes one byte to the FIFO, once per
generation. A full fence (a lock's atomic instructions) on both sides keeps a store from
passing the other side's load on x86-64; the sleep is cut into ``block_slice_s`` slices, so
even a lost wake-up would cost one slice, never a hang. A producer facing a full ring backs
off with short sleeps (``put_blocking``).
"""

from __future__ import annotations

import asyncio
import contextlib
import mmap
import multiprocessing
import os
import re
import select
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from multiprocessing.context import SpawnContext
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path
from typing import NamedTuple, Protocol

from slt.errors import SltError

__all__ = [
    "Record",
    "RecordTooLarge",
    "Ring",
    "RingError",
    "RingFull",
    "WaitPolicy",
    "doorbell_poller",
    "spawn_context",
    "wait_async",
    "wait_for_any",
]

MAGIC = int.from_bytes(b"SLTRING1", "little")
LAYOUT_VERSION = 1
CONTROL_BYTES = 256
SLOT_HEADER = struct.Struct("<IIQ")  # kind, payload length, sequence (the record's index)
_HEADER_BYTES = SLOT_HEADER.size
_unpack_header = SLOT_HEADER.unpack_from
_MAGIC, _VERSION, _CAPACITY, _SLOT = 0, 1, 2, 3  # u64 words of the control block
_HEAD = 8  # byte 64: a cache line of its own, the producer's
_TAIL = 16  # byte 128: the consumer's, written at every read
_SLEEPING = 24  # byte 192: apart from tail, as the producer reads it at every write
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,100}")


class RingError(SltError):
    """A ring that cannot be created or attached as asked (exists, missing, another layout)."""


class RingFull(RingError):
    """``put_blocking`` found no free slot before its timeout: the consumer is not reading."""


class RecordTooLarge(RingError):
    """A record longer than a slot's payload; raised before anything is written."""

    def __init__(self, what: str, size: int, limit: int, ring: str = "") -> None:
        self.size, self.limit = size, limit
        where = f"a slot of ring {ring!r}" if ring else "a slot"
        super().__init__(f"{what} is {size:,} bytes, more than the {limit:,} {where} holds")


class Record(NamedTuple):
    """What a slot carries: a kind code (``ring_records`` numbers the message types) and bytes."""

    kind: int
    payload: bytes


_new_record = tuple.__new__  # Record's own __new__ is a Python frame: a third of a get


class WaitPolicy(NamedTuple):
    """How a consumer waits: spin, then yield the CPU, then sleep on the doorbell in slices."""

    spin_s: float = 20e-6
    yield_s: float = 100e-6
    block_slice_s: float = 0.1


def spawn_context() -> SpawnContext:
    """The start method the runtime uses, asked for by name: fork would copy the parent's
    threads and locks (an event loop, a DB pool), and Python 3.14 changes the default."""
    return multiprocessing.get_context("spawn")


def bell_path(name: str) -> Path:
    """The doorbell FIFO of ring ``name``: beside the block in /dev/shm where there is one."""
    folder = Path("/dev/shm")
    return (folder if folder.is_dir() else Path(tempfile.gettempdir())) / f"{name}.bell"


def _reserve(name: str, size: int) -> None:
    """Allocate the block's pages now, where the OS allows: a /dev/shm too small for it is an
    error here, not a SIGBUS at the first write to a page that cannot be had."""
    path = Path("/dev/shm") / name
    if hasattr(os, "posix_fallocate") and path.exists():
        fd = os.open(path, os.O_RDWR)
        try:
            os.posix_fallocate(fd, 0, size)
        finally:
            os.close(fd)


class _Block(Protocol):
    @property
    def buf(self) -> memoryview | None: ...

    def close(self) -> None: ...


class _UntrackedBlock:
    """An existing block mapped without the resource tracker (Python 3.11 and 3.12)."""

    def __init__(self, name: str) -> None:
        import _posixshmem  # what SharedMemory itself calls on POSIX

        fd = _posixshmem.shm_open("/" + name, os.O_RDWR, mode=0o600)
        try:
            self._mmap = mmap.mmap(fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)  # the mapping outlives the descriptor
        self.buf: memoryview | None = memoryview(self._mmap)

    def close(self) -> None:
        if self.buf is not None:
            self.buf.release()
            self.buf = None
            self._mmap.close()


def _attach_block(name: str) -> _Block:
    """Map an existing block without handing it to this process's resource tracker.

    Before 3.13 every ``SharedMemory(name)`` registers the block, and the tracker unlinks it
    when the attaching process exits, under the creator's feet. Unregistering after attaching
    is not enough: a spawned child shares its parent's tracker, whose set of names would lose
    the creator's own registration (its unlink then prints a KeyError from the tracker)."""
    if sys.version_info >= (3, 13):
        return SharedMemory(name=name, track=False)
    return _UntrackedBlock(name)


class Ring:
    """One SPSC ring. The producer calls ``put``/``put_many``/``put_blocking``, the consumer
    ``get``/``get_many``/``get_blocking``/``wait``; each process opens its own ``Ring`` by
    name (``create`` in the one that owns the ring and unlinks it, ``attach`` elsewhere).
    Passed to a spawned process, a ``Ring`` re-attaches there by name."""

    def __init__(self, name: str, block: _Block, *, owner: SharedMemory | None = None) -> None:
        buf = block.buf
        assert buf is not None
        ctrl = buf[:CONTROL_BYTES].cast("Q")
        capacity, slot_size = ctrl[_CAPACITY], ctrl[_SLOT]
        if (
            ctrl[_MAGIC] != MAGIC
            or ctrl[_VERSION] != LAYOUT_VERSION
            or (len(buf) < CONTROL_BYTES + capacity * slot_size)
        ):
            ctrl.release()
            block.close()
            raise RingError(f"ring {name!r}: the block is not a ring of this version")
        try:
            self._bell = os.open(bell_path(name), os.O_RDWR | os.O_NONBLOCK)
        except OSError as exc:
            ctrl.release()
            block.close()
            raise RingError(f"ring {name!r}: no doorbell at {bell_path(name)} ({exc})") from exc
        self.name, self.capacity, self.slot_size = name, capacity, slot_size
        self.payload_size = slot_size - SLOT_HEADER.size
        self._mask = capacity - 1
        mapped = buf.obj  # the mmap itself: slicing and struct calls on it are twice as quick
        assert isinstance(mapped, mmap.mmap)
        self._block, self._owner, self._mm, self._ctrl = block, owner, mapped, ctrl
        self._packers: dict[int, struct.Struct] = {}  # slot header and payload, by length
        self._head = self._head_seen = ctrl[_HEAD]  # producer: next index; consumer's view
        self._tail = self._tail_seen = ctrl[_TAIL]  # consumer: next index; producer's view
        self._sleeps = ctrl[_SLEEPING] | 1  # the last generation used (odd: asleep)
        self._rung = 0  # the sleeping generation this producer last rang for
        self._fence_lock = threading.Lock()
        self._poller: select.poll | None = None

    # -- opening and closing --------------------------------------------------------------

    @classmethod
    def create(
        cls, name: str, capacity: int = 4_096, slot_size: int = 256, *, replace: bool = False
    ) -> Ring:
        """A new ring; ``replace`` first removes a block of the same name (a crashed run's)."""
        if not _NAME.fullmatch(name):
            raise RingError(f"ring name {name!r}: letters, digits, '_', '.', '-' only")
        if capacity < 2 or capacity & (capacity - 1):
            raise RingError(f"ring {name!r}: capacity {capacity} is not a power of two")
        if slot_size < 32 or slot_size % 8:
            raise RingError(f"ring {name!r}: slot size {slot_size} is not a multiple of 8 >= 32")
        if replace:
            cls.remove(name)
        size = CONTROL_BYTES + capacity * slot_size
        try:
            shm = SharedMemory(name, create=True, size=size)
        except FileExistsError:
            raise RingError(
                f"ring {name!r} exists (a crashed run's?): attach it, or create it with "
                "replace=True"
            ) from None
        try:
            _reserve(name, size)
        except OSError as exc:
            shm.close()
            shm.unlink()
            raise RingError(
                f"ring {name!r} needs {size:,} bytes of shared memory: {exc.strerror} "
                "(/dev/shm too small? a container's default is 64 MiB: --shm-size)"
            ) from exc
        bell = bell_path(name)
        with contextlib.suppress(FileNotFoundError):
            bell.unlink()
        os.mkfifo(bell, 0o600)
        assert shm.buf is not None
        ctrl = shm.buf[:CONTROL_BYTES].cast("Q")
        ctrl[_VERSION], ctrl[_CAPACITY], ctrl[_SLOT] = LAYOUT_VERSION, capacity, slot_size
        ctrl[_MAGIC] = MAGIC  # last: an attacher sees a complete header or none
        ctrl.release()
        return cls(name, shm, owner=shm)

    @classmethod
    def attach(cls, name: str) -> Ring:
        """The ring another process created (its block stays when this process exits)."""
        if not _NAME.fullmatch(name):
            raise RingError(f"ring name {name!r}: letters, digits, '_', '.', '-' only")
        try:
            block = _attach_block(name)
        except FileNotFoundError:
            raise RingError(f"ring {name!r} does not exist") from None
        return cls(name, block)

    @staticmethod
    def remove(name: str) -> bool:
        """Unlink ring ``name``'s block and doorbell if they exist; whether anything did."""
        found = False
        with contextlib.suppress(FileNotFoundError):
            shm = SharedMemory(name)  # registered and unregistered again: the tracker balances
            shm.close()
            shm.unlink()
            found = True
        with contextlib.suppress(FileNotFoundError):
            bell_path(name).unlink()
            found = True
        return found

    def close(self) -> None:
        """Detach this process (the ring and its records stay); idempotent."""
        if self._bell < 0:
            return
        self._ctrl.release()
        self._block.close()
        os.close(self._bell)
        self._bell = -1

    def unlink(self) -> None:
        """Close and destroy the ring: the creator does this once every process is done."""
        self.close()
        if self._owner is not None:
            self._owner.unlink()
        else:
            self.remove(self.name)
        with contextlib.suppress(FileNotFoundError):
            bell_path(self.name).unlink()

    def __enter__(self) -> Ring:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return Ring.attach, (self.name,)

    def __repr__(self) -> str:
        return f"Ring({self.name!r}, capacity={self.capacity}, slot_size={self.slot_size})"

    # -- both sides -----------------------------------------------------------------------

    def __len__(self) -> int:
        """Records written and not yet read, as the block says now."""
        tail = self._ctrl[_TAIL]  # first: head only grows, so head - tail >= 0
        return min(self._ctrl[_HEAD] - tail, self.capacity)

    def _fence(self) -> None:
        # A locked instruction (x86-64): our last store is visible before our next load.
        self._fence_lock.acquire()
        self._fence_lock.release()

    # -- producer -------------------------------------------------------------------------

    def put(self, kind: int, payload: bytes) -> bool:
        """Write one record; False when the ring is full (nothing is overwritten)."""
        size = len(payload)
        if size > self.payload_size:
            raise RecordTooLarge(f"a record of kind {kind}", size, self.payload_size, self.name)
        head = self._head
        if head - self._tail_seen >= self.capacity:
            self._tail_seen = self._ctrl[_TAIL]
            if head - self._tail_seen >= self.capacity:
                return False
        packer = self._packers.get(size) or self._packer(size)
        packer.pack_into(self._mm, CONTROL_BYTES + (head & self._mask) * self.slot_size,
                         kind, size, head, payload)  # fmt: skip
        self._publish(head + 1)
        return True

    def _packer(self, size: int) -> struct.Struct:
        packer = self._packers[size] = struct.Struct(f"<IIQ{size}s")
        return packer

    def put_many(self, records: Sequence[Record]) -> int:
        """Write as many of ``records`` as there is room for, in order; how many."""
        for kind, payload in records:
            if len(payload) > self.payload_size:
                what = f"a record of kind {kind}"
                raise RecordTooLarge(what, len(payload), self.payload_size, self.name)
        head = self._head
        if head - self._tail_seen + len(records) > self.capacity:
            self._tail_seen = self._ctrl[_TAIL]
        count = min(len(records), self.capacity - (head - self._tail_seen))
        mm, mask, slot, packers = self._mm, self._mask, self.slot_size, self._packers
        for index in range(count):
            kind, payload = records[index]
            size = len(payload)
            packer = packers.get(size) or self._packer(size)
            packer.pack_into(mm, CONTROL_BYTES + ((head + index) & mask) * slot,
                             kind, size, head + index, payload)  # fmt: skip
        if count:
            self._publish(head + count)
        return count

    def put_blocking(
        self, kind: int, payload: bytes, timeout_s: float, policy: WaitPolicy = WaitPolicy()
    ) -> None:
        """``put``, waiting up to ``timeout_s`` for room (spinning, then yielding, then
        sleeping 10 µs to 1 ms at a time); ``RingFull`` after that."""
        if self.put(kind, payload):
            return
        now = time.monotonic()
        deadline, spin_until = now + timeout_s, now + policy.spin_s
        yield_until, pause_s = spin_until + policy.yield_s, 10e-6
        while not self.put(kind, payload):
            now = time.monotonic()
            if now >= deadline:
                raise RingFull(f"ring {self.name!r} stayed full for {timeout_s:g} s")
            if now >= yield_until:
                time.sleep(pause_s)
                pause_s = min(pause_s * 2, 1e-3)
            elif now >= spin_until:
                os.sched_yield()

    def _publish(self, head: int) -> None:
        self._head = head
        ctrl = self._ctrl
        ctrl[_HEAD] = head
        self._fence_lock.acquire()  # a full fence: see _fence
        self._fence_lock.release()
        sleeping = ctrl[_SLEEPING]
        if sleeping & 1 and sleeping != self._rung:
            self._rung = sleeping
            try:  # noqa: SIM105 - cheaper than contextlib.suppress on the hot path
                os.write(self._bell, b"\x01")
            except BlockingIOError:  # a full FIFO wakes the consumer all the same
                pass

    # -- consumer -------------------------------------------------------------------------

    def _has_data(self) -> bool:
        if self._tail < self._head_seen:
            return True
        self._head_seen = self._ctrl[_HEAD]
        return self._tail < self._head_seen

    def get(self) -> Record | None:
        """The oldest unread record, or None when there is none (never waits)."""
        tail = self._tail
        if tail >= self._head_seen:
            self._head_seen = self._ctrl[_HEAD]
            if tail >= self._head_seen:
                return None
        mm = self._mm
        offset = CONTROL_BYTES + (tail & self._mask) * self.slot_size
        kind, size, sequence = _unpack_header(mm, offset)
        if sequence != tail or size > self.payload_size:
            self._corrupt(tail, sequence)
        offset += _HEADER_BYTES
        record = _new_record(Record, (kind, mm[offset : offset + size]))
        self._tail = tail + 1
        self._ctrl[_TAIL] = tail + 1
        return record

    def get_many(self, limit: int) -> list[Record]:
        """Up to ``limit`` unread records, oldest first (never waits)."""
        tail = self._tail
        if self._head_seen - tail < limit:
            self._head_seen = self._ctrl[_HEAD]
        count = max(0, min(limit, self._head_seen - tail))
        records = [self._read(tail + index) for index in range(count)]
        if count:
            self._tail = tail + count
            self._ctrl[_TAIL] = tail + count
        return records

    def _read(self, index: int) -> Record:
        offset = CONTROL_BYTES + (index & self._mask) * self.slot_size
        kind, size, sequence = _unpack_header(self._mm, offset)
        if sequence != index or size > self.payload_size:
            self._corrupt(index, sequence)
        offset += _HEADER_BYTES
        return _new_record(Record, (kind, self._mm[offset : offset + size]))

    def _corrupt(self, index: int, sequence: int) -> None:
        # A second producer, say: the slot holds another record than the one expected.
        raise RingError(f"ring {self.name!r} is corrupt: slot {index} holds {sequence}")

    def get_blocking(self, timeout_s: float, policy: WaitPolicy = WaitPolicy()) -> Record | None:
        """The oldest unread record, waiting up to ``timeout_s`` for one (None: none came)."""
        record = self.get()
        if record is None and self.wait(timeout_s, policy):
            record = self.get()
        return record

    def wait(self, timeout_s: float, policy: WaitPolicy = WaitPolicy()) -> bool:
        """Whether a record is there to read within ``timeout_s`` (see the module docstring)."""
        if self._poller is None:
            self._poller = doorbell_poller((self,))
        return wait_for_any((self,), timeout_s, policy, self._poller)

    def _sleep(self) -> None:
        # Bytes of earlier generations are drained now, not on waking: waking is the hot path.
        with contextlib.suppress(BlockingIOError):
            os.read(self._bell, 4_096)  # one byte per generation at most: one read empties it
        self._sleeps += 2
        self._ctrl[_SLEEPING] = self._sleeps
        self._fence()

    def _awake(self) -> None:
        self._ctrl[_SLEEPING] = self._sleeps + 1


def doorbell_poller(rings: Sequence[Ring]) -> select.poll:
    poller = select.poll()
    for ring in rings:
        poller.register(ring._bell, select.POLLIN)
    return poller


def wait_for_any(
    rings: Sequence[Ring], timeout_s: float, policy: WaitPolicy, poller: select.poll
) -> bool:
    """Whether one of ``rings`` (all read by this process) has a record within ``timeout_s``;
    ``poller`` watches their doorbells."""
    now = time.monotonic()
    deadline = now + timeout_s
    spin_until, yield_until = now + policy.spin_s, now + policy.spin_s + policy.yield_s
    while True:
        if _any_data(rings):
            return True
        now = time.monotonic()
        if now >= deadline or now >= yield_until:
            break
        if now >= spin_until:
            os.sched_yield()
    while True:
        for ring in rings:
            ring._sleep()
        try:
            if _any_data(rings):
                return True
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                return False
            poller.poll(max(1, round(min(remaining_s, policy.block_slice_s) * 1_000)))
            if _any_data(rings):  # the shortest path after a wake-up: caches are cold
                return True
        finally:
            for ring in rings:
                ring._awake()


async def wait_async(rings: Sequence[Ring], timeout_s: float, slice_s: float = 0.1) -> bool:
    """``wait_for_any`` for a process with an event loop (streams, REST, a database): the
    doorbells are watched by the loop's selector, so the process sleeps in one place and its
    other tasks run meanwhile. No spinning (it would stall them); a slice bounds a lost wake-up."""
    if _any_data(rings):
        return True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        woke: asyncio.Future[None] = loop.create_future()

        def ring(future: asyncio.Future[None] = woke) -> None:
            if not future.done():
                future.set_result(None)

        for r in rings:
            r._sleep()
            loop.add_reader(r._bell, ring)
        try:
            if _any_data(rings):
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woke, min(remaining, slice_s))
            if _any_data(rings):
                return True
        finally:
            for r in rings:
                loop.remove_reader(r._bell)
                r._awake()


def _any_data(rings: Sequence[Ring]) -> bool:
    for ring in rings:  # noqa: SIM110 - a generator costs microseconds on a cold cache
        if ring._has_data():
            return True
    return False
