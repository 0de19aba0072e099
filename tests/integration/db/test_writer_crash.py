"""A crash loses no acknowledged record: a writer process is killed (SIGKILL) mid-run and
every fill it had acknowledged is in the database afterwards, on both backends."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.integration.db.conftest import on_database

from slt.adapters.db.ledger import TradingLedger

ROOT = Path(__file__).resolve().parents[3]
ACKS_BEFORE_KILL = 300


def test_every_fill_acknowledged_before_a_kill_is_stored(db_url: URL) -> None:
    async def noop(engine: AsyncEngine) -> None:
        return None

    on_database(db_url, noop)  # migrated before the child starts
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.db.crash_writer",
         db_url.render_as_string(hide_password=False)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout is not None
    acknowledged: list[int] = []
    try:
        for line in child.stdout:
            acknowledged.append(int(line))
            if len(acknowledged) == ACKS_BEFORE_KILL:
                child.send_signal(signal.SIGKILL)
                break
    finally:
        child.kill()
        _, errors = child.communicate(timeout=30)
    assert len(acknowledged) == ACKS_BEFORE_KILL, errors

    async def stored_fills(engine: AsyncEngine) -> set[str]:
        ledger = TradingLedger(engine)
        found = set()
        for k in acknowledged:
            found.update(f.fill_id for f in await ledger.fills_of(f"crash-{k}"))
        return found

    found = on_database(db_url, stored_fills)
    lost = [k for k in acknowledged if f"f-{k}" not in found]
    assert lost == []
