"""The ring between the runtime's processes on real shared memory: its rules in one process,
then real producer and consumer processes (spawn), killed ones included, and the resource
tracker's pitfalls. Every wait is bounded; child processes are killed if a test fails.

Children import this module, so it imports only the ring at the top (``ring_records`` pulls
in the engine and aiohttp: the one child that needs it imports it itself).
"""

from __future__ import annotations

import errno
import os
import resource
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from multiprocessing import resource_tracker
from multiprocessing.process import BaseProcess
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path
from typing import Any

import pytest

from slt.runtime.ring import (
    Record,
    RecordTooLarge,
    Ring,
    RingError,
    RingFull,
    WaitPolicy,
    bell_path,
    spawn_context,
)

SHM = Path("/dev/shm")
pytestmark = pytest.mark.skipif(not SHM.is_dir(), reason="needs POSIX shared memory in /dev/shm")
Spawn = Callable[..., BaseProcess]


def numbered(index: int) -> tuple[int, bytes]:
    """Record ``index`` of a test stream: its kind and length vary with it."""
    return index % 250 + 1, index.to_bytes(8, "little") + bytes(index % 200)


def index_of(record: Record) -> int:
    return int.from_bytes(record.payload[:8], "little")


@pytest.fixture
def ring_name() -> Iterator[str]:
    name = f"slt-test-{uuid.uuid4().hex[:12]}"
    yield name
    Ring.remove(name)


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start a spawned child; whatever is still alive at the end of the test is killed."""
    ctx, started = spawn_context(), []

    def start(target: Callable[..., None], *args: Any) -> BaseProcess:
        process = ctx.Process(target=target, args=args, daemon=True)
        process.start()
        started.append(process)
        return process

    yield start
    for process in started:
        if process.is_alive():
            process.kill()
        process.join(10)


@pytest.fixture
def results() -> Any:
    return spawn_context().Queue()


def wait_until(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


# -- child processes (module-level: spawn imports them by name) ------------------------------


def produce_numbered(name: str, start: int, count: int) -> None:
    ring = Ring.attach(name)
    for index in range(start, start + count):
        ring.put_blocking(*numbered(index), timeout_s=60.0)
    ring.close()


def consume_numbered(name: str, start: int, count: int, results: Any) -> None:
    """Read ``count`` records, checking each is the next one; report how it went."""
    ring = Ring.attach(name)
    for expected in range(start, start + count):
        record = ring.get_blocking(20.0)
        if record is None:
            results.put(("timed out at", expected))
            return
        if record != Record(*numbered(expected)):
            results.put(("expected", expected, "got", index_of(record)))
            return
    results.put(("ok", ring.get() is None))  # and nothing more: no duplicate
    ring.close()


def read_then_sleep(name: str, count: int, results: Any) -> None:
    ring = Ring.attach(name)
    indices = [index_of(ring.get_blocking(20.0) or Record(0, bytes(8))) for _ in range(count)]
    results.put(indices)
    ring.get_blocking(600.0)  # asleep on the doorbell when it is killed


def read_all_then_one_more(name: str, count: int, results: Any) -> None:
    ring = Ring.attach(name)
    indices = [index_of(ring.get_blocking(20.0) or Record(0, bytes(8))) for _ in range(count)]
    results.put((indices, ring.get() is None))
    record = ring.get_blocking(30.0, WaitPolicy(block_slice_s=30.0))  # only the bell wakes it
    results.put((None if record is None else index_of(record), time.monotonic()))


def wait_idle(name: str, seconds: float, results: Any) -> None:
    ring = Ring.attach(name)
    results.put("ready")
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.monotonic()
    got = ring.wait(seconds)
    elapsed_s = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    results.put((got, elapsed_s, cpu_s))


def read_from_a_passed_ring(ring: Ring, count: int, results: Any) -> None:
    results.put([index_of(ring.get_blocking(20.0) or Record(0, bytes(8))) for _ in range(count)])
    ring.close()


# -- one process ------------------------------------------------------------------------------


def test_records_come_out_in_order_with_their_kind_and_bytes_across_many_wraps(
    ring_name: str,
) -> None:
    with Ring.create(ring_name, capacity=8, slot_size=256) as ring:
        got = []
        for index in range(100):
            assert ring.put(*numbered(index))
            if len(ring) >= 7:  # read in bursts, so the ring is seldom empty or full
                got += [ring.get() for _ in range(4)]
        while (record := ring.get()) is not None:
            got.append(record)

    assert got == [Record(*numbered(index)) for index in range(100)]


def test_a_full_ring_refuses_a_put_and_keeps_every_unread_record(ring_name: str) -> None:
    with Ring.create(ring_name, capacity=4) as ring:
        assert all(ring.put(*numbered(index)) for index in range(4))

        refused = ring.put(*numbered(4))

        assert not refused and len(ring) == 4
        assert ring.get_many(10) == [Record(*numbered(index)) for index in range(4)]


def test_put_blocking_on_a_full_ring_raises_ring_full_after_its_timeout(ring_name: str) -> None:
    with Ring.create(ring_name, capacity=2) as ring:
        ring.put(1, b"a")
        ring.put(1, b"b")
        start = time.monotonic()

        with pytest.raises(RingFull, match=r"stayed full for 0\.2 s"):
            ring.put_blocking(1, b"c", timeout_s=0.2)

        assert 0.2 <= time.monotonic() - start < 2.0
        assert [r.payload for r in ring.get_many(3)] == [b"a", b"b"]


def test_put_many_writes_what_fits_in_order_and_get_many_reads_it(ring_name: str) -> None:
    records = [Record(*numbered(index)) for index in range(10)]
    with Ring.create(ring_name, capacity=8) as ring:
        written = ring.put_many(records)

        assert written == 8
        assert ring.get_many(5) == records[:5]
        assert ring.put_many(records[8:]) == 2
        assert ring.get_many(100) == records[5:]


def test_a_record_longer_than_a_slot_raises_naming_its_size_and_writes_nothing(
    ring_name: str,
) -> None:
    with Ring.create(ring_name, capacity=4, slot_size=64) as ring:
        ring.put(1, b"kept")

        with pytest.raises(RecordTooLarge, match=r"kind 7 is 49 bytes, more than the 48"):
            ring.put(7, bytes(49))
        with pytest.raises(RecordTooLarge):
            ring.put_many([Record(1, b"x"), Record(7, bytes(49))])

        assert ring.payload_size == 48
        assert ring.get_many(10) == [Record(1, b"kept")]


@pytest.mark.parametrize("capacity", [0, 3, 1_000])
def test_a_capacity_that_is_not_a_power_of_two_is_refused(ring_name: str, capacity: int) -> None:
    with pytest.raises(RingError, match="not a power of two"):
        Ring.create(ring_name, capacity=capacity)


def test_creating_an_existing_ring_is_refused_unless_replace_is_asked(ring_name: str) -> None:
    old = Ring.create(ring_name, capacity=4)
    old.put(1, b"old")

    with pytest.raises(RingError, match=r"exists .* replace=True"):
        Ring.create(ring_name, capacity=4)
    new = Ring.create(ring_name, capacity=16, replace=True)

    assert (new.capacity, len(new), new.get()) == (16, 0, None)
    old.close()
    new.unlink()


def test_a_dev_shm_too_small_for_a_ring_is_a_clear_error_at_creation_not_a_crash_later(
    ring_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", no_space)

    with pytest.raises(RingError, match=r"needs 2,097,408 bytes .*: No space left on device"):
        Ring.create(ring_name, capacity=8_192, slot_size=256)
    assert not (SHM / ring_name).exists()


def test_attaching_a_ring_that_does_not_exist_names_it(ring_name: str) -> None:
    with pytest.raises(RingError, match=f"ring '{ring_name}' does not exist"):
        Ring.attach(ring_name)


def test_a_block_that_is_not_a_ring_is_refused(ring_name: str) -> None:
    block = SharedMemory(ring_name, create=True, size=4_096)
    os.mkfifo(bell_path(ring_name))
    try:
        with pytest.raises(RingError, match="not a ring of this version"):
            Ring.attach(ring_name)
    finally:
        block.close()


def test_unlink_removes_the_block_and_its_doorbell(ring_name: str) -> None:
    ring = Ring.create(ring_name)
    assert (SHM / ring_name).exists() and bell_path(ring_name).exists()

    ring.unlink()

    assert not (SHM / ring_name).exists() and not bell_path(ring_name).exists()


def test_the_runtime_starts_its_processes_with_spawn() -> None:
    assert spawn_context().get_start_method() == "spawn"


# -- processes --------------------------------------------------------------------------------


def test_two_spawned_processes_exchange_100000_records_in_order_without_loss_or_duplicates(
    ring_name: str, spawn: Spawn, results: Any
) -> None:
    ring = Ring.create(ring_name, capacity=1_024)
    consumer = spawn(consume_numbered, ring_name, 0, 100_000, results)
    producer = spawn(produce_numbered, ring_name, 0, 100_000)

    outcome = results.get(timeout=60)

    producer.join(10)
    consumer.join(10)
    assert outcome == ("ok", True)
    assert producer.exitcode == 0 and consumer.exitcode == 0
    ring.unlink()


def test_a_consumer_attached_after_a_killed_one_continues_from_the_tail(
    ring_name: str, spawn: Spawn, results: Any
) -> None:
    ring = Ring.create(ring_name, capacity=2_048)
    ring.put_many([Record(*numbered(index)) for index in range(300)])
    first = spawn(read_then_sleep, ring_name, 300, results)
    assert results.get(timeout=30) == list(range(300))
    time.sleep(0.2)  # it sleeps on the doorbell now: its "sleeping" mark stays behind

    assert first.pid is not None
    os.kill(first.pid, signal.SIGKILL)
    first.join(10)
    ring.put_many([Record(*numbered(index)) for index in range(300, 1_000)])
    spawn(read_all_then_one_more, ring_name, 700, results)
    indices, then_empty = results.get(timeout=30)
    time.sleep(0.3)  # the new consumer sleeps on the doorbell, with a 30 s slice
    put_at = time.monotonic()
    ring.put(*numbered(1_000))
    last, got_at = results.get(timeout=30)

    assert indices == list(range(300, 1_000)) and then_empty
    assert last == 1_000 and got_at - put_at < 5.0  # woken by the bell, not by a timeout
    ring.unlink()


def test_a_killed_producer_leaves_every_record_it_published_readable(
    ring_name: str, spawn: Spawn
) -> None:
    ring = Ring.create(ring_name, capacity=256)
    producer = spawn(produce_numbered, ring_name, 0, 10_000)
    wait_until(lambda: len(ring) == 256)  # full: the producer waits in put_blocking

    assert producer.pid is not None
    os.kill(producer.pid, signal.SIGKILL)
    producer.join(10)
    left = ring.get_many(1_000)
    with Ring.attach(ring_name) as successor:
        successor.put(*numbered(256))
    after = ring.get_many(10)

    assert left == [Record(*numbered(index)) for index in range(256)]
    assert after == [Record(*numbered(256))]
    ring.unlink()


def test_a_consumer_waiting_on_an_empty_ring_uses_under_5_pct_of_a_core(
    ring_name: str, spawn: Spawn, results: Any
) -> None:
    ring = Ring.create(ring_name, capacity=64)
    spawn(wait_idle, ring_name, 2.0, results)
    assert results.get(timeout=30) == "ready"

    got, elapsed_s, cpu_s = results.get(timeout=30)

    assert not got and elapsed_s >= 2.0
    assert cpu_s / elapsed_s < 0.05, f"{cpu_s / elapsed_s:.1%} of a core"
    ring.unlink()


def test_a_ring_passed_to_a_spawned_process_attaches_there_and_outlives_it(
    ring_name: str, spawn: Spawn, results: Any
) -> None:
    ring = Ring.create(ring_name, capacity=16)
    ring.put_many([Record(*numbered(index)) for index in range(5)])
    child = spawn(read_from_a_passed_ring, ring, 5, results)

    indices = results.get(timeout=30)
    child.join(10)

    assert indices == list(range(5)) and child.exitcode == 0
    with Ring.attach(ring_name) as again:  # the child's exit unlinked nothing
        assert again.capacity == 16
    ring.unlink()


ATTACH_AND_EXIT = """
import sys
from slt.runtime.ring import Ring
with Ring.attach(sys.argv[1]) as ring:
    print(ring.get())
"""


def test_an_unrelated_process_that_attaches_and_exits_leaves_the_block(ring_name: str) -> None:
    ring = Ring.create(ring_name, capacity=4)
    ring.put(9, b"hello")

    run = subprocess.run([sys.executable, "-c", ATTACH_AND_EXIT, ring_name],
                         capture_output=True, text=True, timeout=60)  # fmt: skip

    assert run.returncode == 0, run.stderr
    assert "Record(kind=9, payload=b'hello')" in run.stdout
    assert "leaked" not in run.stderr and (SHM / ring_name).exists()
    ring.unlink()


@pytest.mark.skipif(sys.version_info >= (3, 13), reason="3.13 attaches with track=False")
def test_a_plain_shared_memory_attach_before_3_13_unlinks_the_block_when_it_exits(
    ring_name: str,
) -> None:
    """Why ``Ring.attach`` does not use ``SharedMemory(name)`` (the pitfall it avoids)."""
    ring = Ring.create(ring_name, capacity=4)
    code = "import sys; from multiprocessing.shared_memory import SharedMemory as S; "
    code += "S(sys.argv[1]).close()"

    subprocess.run([sys.executable, "-c", code, ring_name], capture_output=True, timeout=60)

    wait_until(lambda: not (SHM / ring_name).exists())  # its resource tracker unlinked it
    ring.close()
    resource_tracker.unregister("/" + ring_name, "shared_memory")  # ours has nothing to do


CREATE_AND_HANG = """
import sys, time
from slt.runtime.ring import Ring
ring = Ring.create(sys.argv[1], capacity=8)
for index in range(5):
    ring.put(1, bytes([index]))
print("ready", flush=True)
time.sleep(600)
"""


def test_a_crashed_creators_ring_is_attached_or_replaced_by_name(ring_name: str) -> None:
    command = [sys.executable, "-c", CREATE_AND_HANG, ring_name]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                          start_new_session=True) as creator:  # fmt: skip
        try:
            assert creator.stdout is not None
            assert select.select([creator.stdout], [], [], 60)[0], "the creator did not start"
            assert creator.stdout.readline() == "ready\n"
        finally:  # the whole group at once, its resource tracker too: nothing cleans up
            os.killpg(creator.pid, signal.SIGKILL)
            creator.wait(30)
    time.sleep(0.2)

    assert (SHM / ring_name).exists()
    with pytest.raises(RingError, match="exists"):
        Ring.create(ring_name)
    with Ring.attach(ring_name) as left:
        assert [r.payload for r in left.get_many(10)] == [bytes([i]) for i in range(5)]
    fresh = Ring.create(ring_name, capacity=8, replace=True)
    assert len(fresh) == 0 and fresh.get() is None
    fresh.unlink()


def test_lanes_give_a_slow_consumer_order_events_ahead_of_waiting_market_data(
    ring_name: str, spawn: Spawn, results: Any
) -> None:
    market = Ring.create(ring_name, capacity=256)
    priority = Ring.create(ring_name + "-p", capacity=16)
    try:
        market.put_many([Record(1, index.to_bytes(8, "little")) for index in range(200)])
        spawn(read_lanes_slowly, priority.name, market.name, 203, results)
        wait_until(lambda: len(market) <= 180)

        priority.put_many([Record(30, index.to_bytes(8, "little")) for index in range(3)])
        order = results.get(timeout=60)

        first_event = order.index((30, 0))
        assert order[first_event : first_event + 3] == [(30, 0), (30, 1), (30, 2)]
        assert sum(kind == 1 for kind, _ in order[first_event:]) > 50  # overtaken
        assert [i for kind, i in order if kind == 1] == list(range(200))
    finally:
        priority.unlink()
        market.unlink()


def read_lanes_slowly(priority: str, market: str, count: int, results: Any) -> None:
    from slt.runtime.ring_records import Lanes

    lanes = Lanes(Ring.attach(priority), Ring.attach(market))
    order = []
    for _ in range(count):
        record = lanes.get_blocking(20.0)
        assert record is not None
        order.append((record.kind, index_of(record)))
        time.sleep(0.002)  # the slow consumer
    results.put(order)


def test_a_sleeping_lanes_consumer_is_woken_by_either_ring(
    ring_name: str, spawn: Spawn, results: Any
) -> None:
    market = Ring.create(ring_name, capacity=16)
    priority = Ring.create(ring_name + "-p", capacity=16)
    try:
        spawn(wait_on_lanes, priority.name, market.name, results)
        assert results.get(timeout=30) == "ready"
        for ring in (market, priority):
            time.sleep(0.3)  # asleep on both doorbells, with a 30 s slice
            put_at = time.monotonic()
            ring.put(5, b"wake")
            got_at = results.get(timeout=30)
            assert got_at - put_at < 5.0
    finally:
        priority.unlink()
        market.unlink()


def wait_on_lanes(priority: str, market: str, results: Any) -> None:
    from slt.runtime.ring_records import Lanes

    lanes = Lanes(Ring.attach(priority), Ring.attach(market), WaitPolicy(block_slice_s=30.0))
    results.put("ready")
    for _ in range(2):
        assert lanes.get_blocking(30.0) is not None
        results.put(time.monotonic())


def test_a_slow_consumer_gets_every_closed_candle_and_the_latest_forming_one(
    ring_name: str, spawn: Spawn, results: Any
) -> None:
    from slt.adapters.exchange.kline_sequencer import Candle
    from slt.runtime.ring_records import CandleUpdate

    ring = Ring.create(ring_name, capacity=64)
    consumer = spawn(read_market_slowly, ring_name, results)
    assert results.get(timeout=30) == ("ready", None)  # reading (slowly) before anything comes
    spawn(publish_candles, ring_name, results)

    reports = dict(results.get(timeout=60) for _ in range(2))
    consumer.join(10)

    (sent_updates, conflated), received = reports["published"], reports["received"]
    closed = [(m.symbol, m.open_time_ms) for m in received if isinstance(m, Candle)]
    updates = [m for m in received if isinstance(m, CandleUpdate)]
    for symbol in ("BTCUSDT", "ETHUSDT"):
        assert [t for s, t in closed if s == symbol] == [i * 60_000 for i in range(40)]
        mine = [(u.open_time_ms, u.time_ms) for u in updates if u.symbol == symbol]
        assert mine == sorted(mine) and mine[-1] == (40 * 60_000, 40 * 60_000 + 49)
    assert conflated > 0 and len(updates) < sent_updates
    seen_closed: set[tuple[str, int]] = set()
    for message in received:  # an update never overtakes an older closed candle
        if isinstance(message, Candle):
            seen_closed.add((message.symbol, message.open_time_ms))
        elif isinstance(message, CandleUpdate):
            older = {(message.symbol, t * 60_000) for t in range(message.open_time_ms // 60_000)}
            assert older <= seen_closed
    ring.unlink()


def publish_candles(name: str, results: Any) -> None:
    from slt.adapters.exchange.kline_sequencer import Candle
    from slt.runtime.ring_records import CandleUpdate, ConflatingWriter

    writer = ConflatingWriter(Ring.attach(name), lag_fill=0.5)
    updates = 0
    for minute in range(41):
        open_ms = minute * 60_000
        for tick in range(50):
            for symbol in ("BTCUSDT", "ETHUSDT"):
                writer.put_message(CandleUpdate(symbol, "1m", open_ms, open_ms + tick,
                                                1.0, 2.0, 0.5, 1.5, float(tick)))  # fmt: skip
                updates += 1
        if minute < 40:
            for symbol in ("BTCUSDT", "ETHUSDT"):
                writer.put_message(Candle(symbol, "1m", open_ms, 1.0, 2.0, 0.5, 1.5, 9.0, "stream"))
    writer.put(Record(0, b"end"))
    deadline = time.monotonic() + 30
    while writer.pending and time.monotonic() < deadline:
        writer.flush()
        time.sleep(0.001)
    results.put(("published", (updates, writer.conflated)))


def read_market_slowly(name: str, results: Any) -> None:
    from slt.runtime.ring_records import decode

    ring = Ring.attach(name)
    results.put(("ready", None))
    received = []
    while (record := ring.get_blocking(30.0)) is not None and record.kind != 0:
        received.append(decode(record))
        time.sleep(0.0005)  # the slow consumer
    results.put(("received", received))
