"""Database speed targets of issue 5 on SQLite (a file) and the local PostgreSQL server.

    .venv/bin/python benchmarks/bench_db.py [--write]

Inserts 100,000 virtual trades with 88-value feature snapshots (one ``add_many`` call, one
transaction, committed), then reads the newest 50,000 with their features as the learner
does. PostgreSQL runs in a throwaway database created on 127.0.0.1:5432 and dropped after.
Besides the table, it prints where a read spends its time: in the driver (query and transfer)
or decoding columns with numpy.
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import sqlalchemy

from bench_data import cpu_model, publish
from slt.adapters.db import migrate, virtual_trades
from slt.adapters.db.connect import create_engine
from slt.adapters.db.urls import database_url
from slt.adapters.db.virtual_trades import VirtualTradeStore
from slt.domain.records import VirtualTrade

BEGIN, END = "<!-- bench_db:begin -->", "<!-- bench_db:end -->"
N_INSERT, N_READ, WIDTH = 100_000, 50_000, 88
ADMIN = "postgresql://root@127.0.0.1:5432/test"


def trades() -> list[VirtualTrade]:
    rng = np.random.default_rng(5)
    features = rng.normal(size=(N_INSERT, WIDTH))
    t0 = 1_672_531_200_000
    return [
        VirtualTrade(
            "BTCUSDT",
            1 if k % 2 else -1,
            t0 + k * 300_000,
            20_000.0 + k * 0.01,
            1.5,
            3.0,
            t0 + k * 300_000 + 3_600_000,
            20_010.0 + k * 0.01,
            "time_stop",
            float(rng.normal()),
            float(rng.normal()),
            bool(k % 3),
            features[k],
            "h" * 64,
            "none",
        )
        for k in range(N_INSERT)
    ]


@contextmanager
def decoding_timed(spent_s: list[float]) -> Iterator[None]:
    """Add the time each read spends in the fast_read decoders to ``spent_s[-1]``."""
    names = ("binary_copy_columns", "text_copy_columns", "row_columns")
    originals = {name: getattr(virtual_trades, name) for name in names}

    def timed(decode: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return decode(*args, **kwargs)
            finally:
                spent_s[-1] += time.perf_counter() - start

        return run

    for name, decode in originals.items():
        setattr(virtual_trades, name, timed(decode))
    try:
        yield
    finally:
        for name, decode in originals.items():
            setattr(virtual_trades, name, decode)


def ms_range(values_s: list[float]) -> str:
    return f"{min(values_s) * 1000:.0f}-{max(values_s) * 1000:.0f} ms"


async def measure(
    backend: str, url: sqlalchemy.engine.URL, rows: list[VirtualTrade]
) -> tuple[float, float]:
    await migrate.upgrade(url)
    engine = create_engine(url)
    try:
        store = VirtualTradeStore(engine)
        start = time.perf_counter()
        await store.add_many(rows)
        insert_s = time.perf_counter() - start
        reads: list[float] = []
        decoding: list[float] = []
        with decoding_timed(decoding):
            for _ in range(5):
                decoding.append(0.0)
                start = time.perf_counter()
                batch = await store.newest(N_READ)
                reads.append(time.perf_counter() - start)
        assert len(batch) == N_READ and batch.features.shape == (N_READ, WIDTH)
        driver = [read - decode for read, decode in zip(reads, decoding, strict=True)]
        print(
            f"{backend}: read {ms_range(reads)} = driver (query, transfer) {ms_range(driver)} "
            f"+ decoding {ms_range(decoding)}"
        )
        return insert_s, statistics.median(reads)
    finally:
        await engine.dispose()


async def admin(sql: str) -> None:
    connection = await asyncpg.connect(ADMIN)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def main() -> None:
    rows = trades()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        backend = "SQLite (file, WAL)"
        url = database_url(None, Path(tmp))
        results.append((backend, asyncio.run(measure(backend, url, rows))))
    name = f"slt_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        url = database_url(f"postgresql://root@127.0.0.1:5432/{name}", Path())
        backend = "PostgreSQL 127.0.0.1 (asyncpg)"
        results.append((backend, asyncio.run(measure(backend, url, rows))))
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    table = [
        f"| {backend} | {insert_s:.2f} s | {read_s * 1000:.0f} ms |"
        for backend, (insert_s, read_s) in results
    ]
    text = "\n".join(
        [
            BEGIN,
            "## Database (issue 5)",
            "",
            f"Machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"SQLAlchemy {sqlalchemy.__version__}, asyncpg {asyncpg.__version__}. "
            f"{N_INSERT:,} virtual trades with {WIDTH}-value feature snapshots, inserted with one "
            f"`add_many` (one committed transaction); then the newest {N_READ:,} read back with "
            "their features (median of 5). `benchmarks/bench_db.py`.",
            "",
            f"| backend | insert {N_INSERT:,} (target < 5 s) "
            f"| read newest {N_READ:,} (target < 300 ms) |",
            "|---|---|---|",
            *table,
            "",
            "Inserts and reads use each driver's bulk path. Inserts: PostgreSQL COPY, SQLite "
            "executemany. "
            "Reads: PostgreSQL sends numbers and features as one binary COPY stream that one "
            "structured numpy dtype decodes (the strings come as a text COPY in the same "
            "snapshot); SQLite's rows come from aiosqlite in one hop and become columns "
            "through `np.fromiter`.",
            END,
        ]
    )
    publish(text, BEGIN, END)


if __name__ == "__main__":
    main()
