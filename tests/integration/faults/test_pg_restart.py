"""A PostgreSQL crash and restart during a run: the record writer holds what it could not
write, reconnects, and no acknowledged fill is lost (on a cluster this test owns)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import structlog
from sqlalchemy.engine import make_url

from slt.adapters.db import migrate
from slt.adapters.db.connect import create_engine
from slt.adapters.db.ledger import TradingLedger
from slt.adapters.db.urls import database_url
from slt.adapters.db.writer import RecordWriter
from tests.integration.db.test_ledger import ENTRY, FILL
from tests.support.pg_cluster import PrivateCluster


def test_fills_written_across_a_postgres_crash_and_restart_are_all_stored(
    private_pg: PrivateCluster, tmp_path: Path
) -> None:
    url = database_url(private_pg.url, tmp_path)
    asyncio.run(migrate.upgrade(url))

    async def run() -> tuple[list[int], bool, int, set[str]]:
        engine = create_engine(url)
        acknowledged: list[int] = []
        stop = asyncio.Event()

        async def trade(writer: RecordWriter) -> None:
            k = 0
            while not stop.is_set():
                order = dataclasses.replace(ENTRY, order_id=f"o-{k}")
                writer.submit(order)
                await writer.record(dataclasses.replace(FILL, fill_id=f"f-{k}", order_id=f"o-{k}"))
                acknowledged.append(k)
                k += 1
                await asyncio.sleep(0.005)

        try:
            async with RecordWriter(
                engine, flush_interval_s=0.02, retry_interval_s=0.05, max_retry_interval_s=0.2
            ) as writer:
                producer = asyncio.create_task(trade(writer))
                await asyncio.sleep(0.3)
                await asyncio.to_thread(private_pg.stop, "immediate")  # a crash, not a shutdown
                acked_at_crash = len(acknowledged)
                await asyncio.sleep(0.6)
                held_while_down = len(acknowledged) <= acked_at_crash + 1 and not writer.database_up
                await asyncio.to_thread(private_pg.start)
                acked_at_restart = len(acknowledged)
                await asyncio.sleep(0.5)
                stop.set()
                await asyncio.wait_for(producer, 30)
        finally:
            await engine.dispose()
        fresh = create_engine(make_url(url))
        try:
            ledger = TradingLedger(fresh)
            stored = set()
            for k in range(len(acknowledged) + 1):
                stored.update(f.fill_id for f in await ledger.fills_of(f"o-{k}"))
        finally:
            await fresh.dispose()
        return acknowledged, held_while_down, acked_at_restart, stored

    with structlog.testing.capture_logs() as logs:
        acknowledged, held_while_down, acked_at_restart, stored = asyncio.run(run())

    assert held_while_down  # nothing was acknowledged while the server was down
    assert len(acknowledged) > acked_at_restart + 10  # writing went on after the restart
    assert [k for k in acknowledged if f"f-{k}" not in stored] == []
    events = [(e["log_level"], e["event"]) for e in logs if e["log_level"] != "debug"]
    assert events == [
        ("warning", "database unreachable; holding records and retrying"),
        ("info", "database reachable again; held records written"),
    ]
