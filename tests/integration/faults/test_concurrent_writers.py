"""Two OS processes writing virtual trades at once: nothing lost, doubled or garbled.

Each writer process (``tests.support.virtual_trade_writer``) waits on a start line, then
commits 40 batches of 250 trades, the second only once both committed their first; the checker
recomputes every row from its key. SQLite serialises the writers (WAL, busy_timeout 10 s);
PostgreSQL runs their COPYs side by side, so there one batch's ids are not even contiguous.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from slt.adapters.db import migrate
from slt.adapters.db.connect import create_engine
from tests.support.virtual_trade_writer import key_of, trade_for

ROOT = Path(__file__).resolve().parents[3]
WRITERS = (1, 2)
BATCHES = 40
SIZE = 250
_SELECT = (
    "SELECT symbol, direction, entry_time_ms, entry_price, stop_loss_pct, take_profit_pct, "
    "exit_time_ms, exit_price, exit_reason, return_pct, reward, won, features, "
    "feature_schema_hash, model_version FROM virtual_trades ORDER BY id"
)


def _normal(row: Sequence[Any]) -> tuple[object, ...]:
    """One row as plain Python values: SQLite and asyncpg return different types."""
    (symbol, direction, entry_ms, entry_price, sl, tp, exit_ms, exit_price, reason, ret, reward,
     won, features, schema, model) = row  # fmt: skip
    return (
        symbol, int(direction), int(entry_ms), float(entry_price), float(sl), float(tp),
        int(exit_ms), float(exit_price), reason, float(ret), float(reward), bool(won),
        bytes(features), schema, model,
    )  # fmt: skip


def _expected(entry_time_ms: int) -> tuple[object, ...]:
    t = trade_for(*key_of(entry_time_ms))
    return (
        t.symbol, t.direction, t.entry_time_ms, t.entry_price, t.stop_loss_pct,
        t.take_profit_pct, t.exit_time_ms, t.exit_price, t.exit_reason, t.return_pct, t.reward,
        t.won, t.features.astype("<f8").tobytes(), t.feature_schema_hash, t.model_version,
    )  # fmt: skip


def _read(url: URL) -> tuple[list[tuple[object, ...]], str]:
    """Every row in insertion order, and SQLite's integrity check ("ok" on PostgreSQL)."""

    async def go() -> tuple[list[tuple[object, ...]], str]:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                rows = (await connection.exec_driver_sql(_SELECT)).all()
                integrity = "ok"
                if url.get_backend_name() == "sqlite":
                    result = await connection.exec_driver_sql("PRAGMA integrity_check")
                    integrity = "\n".join(str(r[0]) for r in result.all())
            return [_normal(r) for r in rows], integrity
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _start_writers(url: URL, folder: Path) -> list[subprocess.Popen[str]]:
    """Both processes, released together once both are connected."""
    folder = folder.resolve()
    raw = url.render_as_string(hide_password=False)
    module = "tests.support.virtual_trade_writer"
    everyone = ",".join(map(str, WRITERS))
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", module, raw, str(w), everyone, str(BATCHES), str(SIZE), folder],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in WRITERS
    ]
    deadline = time.monotonic() + 60
    while not all((folder / f"ready-{w}").exists() for w in WRITERS):
        if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
            break  # the exit codes and stderr below say why
        time.sleep(0.005)  # waiting for the writer processes to start
    (folder / "go").touch()
    return processes


def _runs(writers: list[object]) -> int:
    """How many blocks of consecutive rows from one writer the insertion order has."""
    return 1 + sum(a != b for a, b in pairwise(writers))


def test_two_processes_writing_at_once_lose_double_and_garble_nothing(
    db_url: URL, tmp_path: Path
) -> None:
    asyncio.run(migrate.upgrade(db_url))

    processes = _start_writers(db_url, tmp_path)
    try:
        outcomes = [p.communicate(timeout=120) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:  # only after a timeout: do not leave it writing
                process.kill()
                process.communicate()

    for process, (_, stderr) in zip(processes, outcomes, strict=True):
        assert process.returncode == 0, f"writer failed ({process.returncode}):\n{stderr}"
    rows, integrity = _read(db_url)
    assert integrity == "ok"
    assert len(rows) == len(WRITERS) * BATCHES * SIZE
    keys = {row[2] for row in rows}
    assert len(keys) == len(rows)  # no row twice
    written = {trade_for(w, b, k).entry_time_ms for w in WRITERS for b in range(BATCHES)
               for k in range(SIZE)}  # fmt: skip
    assert keys == written  # none missing, none foreign
    garbled = [row for row in rows if row != _expected(int(str(row[2])))]
    assert garbled == []
    assert _runs([row[14] for row in rows]) > 2  # the two writers' batches interleaved
