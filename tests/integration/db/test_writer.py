"""The record writer on SQLite and real PostgreSQL: batching, acknowledgement, refusals."""

from __future__ import annotations

import asyncio
import dataclasses
import math

import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.integration.db.conftest import on_database
from tests.integration.db.test_ledger import ENTRY, FILL, T0
from tests.integration.db.test_signals_candles_examples import signal

from slt.adapters.db.connect import create_engine
from slt.adapters.db.ledger import TradingLedger
from slt.adapters.db.signals import SignalStore
from slt.adapters.db.writer import RecordWriter, RecordWriterError
from slt.domain.records import RecordError
from slt.domain.trading_records import EquitySnapshot, FillRecord, OrderRecord


def test_an_acknowledged_fill_is_visible_to_another_connection_at_once(db_url: URL) -> None:
    async def body(engine: AsyncEngine) -> list[FillRecord]:
        other = create_engine(db_url)  # a second engine: as a restarted process would see it
        try:
            async with RecordWriter(engine, flush_interval_s=60) as writer:
                writer.submit(ENTRY)
                await writer.record(FILL)  # does not wait for the 60 s flush interval
                return await TradingLedger(other).fills_of("paper-1")
        finally:
            await other.dispose()

    assert on_database(db_url, body) == [FILL]


def test_queued_records_are_committed_within_the_flush_interval_in_one_batch(
    db_url: URL,
) -> None:
    async def body(engine: AsyncEngine) -> tuple[int, int, int]:
        async with RecordWriter(engine, flush_interval_s=0.05) as writer:
            for k in range(200):
                writer.submit(signal(k))
            queued = writer.pending
            await asyncio.sleep(0.5)
            stored = len(await SignalStore(engine).between("ETHUSDT", 0, 2 * T0))
            return queued, stored, writer.pending

    queued, stored, left = on_database(db_url, body)
    assert (queued, stored, left) == (200, 200, 0)


def test_a_bad_record_fails_at_the_caller_and_nothing_is_queued(db_url: URL) -> None:
    async def body(engine: AsyncEngine) -> tuple[str, str, int]:
        async with RecordWriter(engine) as writer:
            with pytest.raises(RecordError) as nan_price:
                writer.submit(dataclasses.replace(FILL, price=math.nan))
            with pytest.raises(RecordWriterError) as unknown:
                writer.submit("a string")
            return str(nan_price.value), str(unknown.value), writer.pending

    nan_price, unknown, pending = on_database(db_url, body)
    assert nan_price == "fill 't-1': price must be a finite number, got nan"
    assert unknown == "cannot store a str"
    assert pending == 0


def test_a_record_the_database_refuses_reaches_its_caller_and_others_are_still_written(
    db_url: URL,
) -> None:
    orphan = dataclasses.replace(FILL, order_id="no-such-order")  # breaks the foreign key

    async def body(engine: AsyncEngine) -> tuple[str, list[EquitySnapshot], int]:
        async with RecordWriter(engine) as writer:
            writer.submit(EquitySnapshot("paper", T0, 10_000.0, 10_000.0, 0.0))
            refused = writer.record_nowait(orphan)
            with pytest.raises(RecordWriterError) as caught:
                await refused
            await writer.flush()
            return (
                str(caught.value),
                await TradingLedger(engine).equity_curve("paper"),
                writer.refused,
            )

    error, curve, refused = on_database(db_url, body)
    assert error.startswith("the database refused 1 fills: ")
    assert [s.equity for s in curve] == [10_000.0]
    assert refused == 1


def test_closing_flushes_everything_queued(db_url: URL) -> None:
    orders = [dataclasses.replace(ENTRY, order_id=f"o-{k}") for k in range(50)]

    async def body(engine: AsyncEngine) -> int:
        writer = RecordWriter(engine, flush_interval_s=60)
        writer.start()
        for order in orders:
            writer.submit(order)
        await writer.close()
        with pytest.raises(RecordWriterError, match="closed"):
            writer.submit(orders[0])
        return len(await TradingLedger(engine).open_orders("paper"))

    assert on_database(db_url, body) == 50


def test_later_states_of_an_order_in_one_batch_leave_the_latest(db_url: URL) -> None:
    states = [
        dataclasses.replace(ENTRY, status=s, updated_ms=T0 + k)
        for k, s in enumerate(("new", "open", "partially_filled"))
    ]

    async def body(engine: AsyncEngine) -> list[OrderRecord]:
        async with RecordWriter(engine, flush_interval_s=60) as writer:
            for state in states:
                writer.submit(state)
        return await TradingLedger(engine).open_orders("paper")

    assert on_database(db_url, body) == [states[-1]]
