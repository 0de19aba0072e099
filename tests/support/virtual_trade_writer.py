"""A writer process for the concurrency tests, and the rows it writes, derived from their key.

Run as ``python -m tests.support.virtual_trade_writer URL WRITER WRITERS BATCHES SIZE FOLDER``
(WRITERS: every writer's number, comma-separated): it connects, creates
``FOLDER/ready-WRITER``, waits for ``FOLDER/go`` and writes BATCHES batches of SIZE virtual
trades with ``VirtualTradeStore.add_many``; after its first batch it waits until every writer
has committed one. Every field of a row follows from (writer, batch, index), and the key is
recoverable from ``entry_time_ms``, so a checker can recompute any row it reads.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import numpy as np
from sqlalchemy.engine import make_url

from slt.adapters.db.connect import create_engine
from slt.adapters.db.virtual_trades import VirtualTradeStore
from slt.domain.records import VirtualTrade

T0_MS = 1_704_067_200_000
STEP_MS = 60_000
MAX_PER_BATCH = 1_000
MAX_BATCHES = 1_000
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
REASONS = ("take_profit", "stop_loss")
_WAIT_S = 30.0


def serial(writer: int, batch: int, index: int) -> int:
    return (writer * MAX_BATCHES + batch) * MAX_PER_BATCH + index


def key_of(entry_time_ms: int) -> tuple[int, int, int]:
    """(writer, batch, index) of a row, from its entry time."""
    number, rest = divmod(entry_time_ms - T0_MS, STEP_MS)
    assert rest == 0, f"entry_time_ms {entry_time_ms} was not written by a writer process"
    writer_batch, index = divmod(number, MAX_PER_BATCH)
    writer, batch = divmod(writer_batch, MAX_BATCHES)
    return writer, batch, index


def trade_for(writer: int, batch: int, index: int) -> VirtualTrade:
    n = serial(writer, batch, index)
    features = np.array(
        [writer, batch, index, np.sin(n) * 1e3, np.nan if n % 7 == 0 else n / 3, -1e-300],
        dtype=np.float64,
    )
    return VirtualTrade(
        symbol=SYMBOLS[n % len(SYMBOLS)],
        direction=1 if n % 2 else -1,
        entry_time_ms=T0_MS + n * STEP_MS,
        entry_price=1_000.125 + n % 50_000,
        stop_loss_pct=1.5,
        take_profit_pct=3.0,
        exit_time_ms=T0_MS + n * STEP_MS + 3_600_000,
        exit_price=1_010.0625 + n % 50_000,
        exit_reason=REASONS[n % 2],
        return_pct=(n % 200 - 100) / 64,
        reward=(n % 97) / 32,
        won=n % 3 == 0,
        features=features,
        feature_schema_hash=f"{writer:064x}",
        model_version=f"writer-{writer}",
    )


async def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + _WAIT_S
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path.name} never appeared")
        await asyncio.sleep(0.002)  # waiting for the other writer process, not the database


async def _write(
    url: str, writer: int, others: list[int], batches: int, size: int, folder: Path
) -> None:
    engine = create_engine(make_url(url))
    try:
        store = VirtualTradeStore(engine)
        await store.count()  # connected and imported before the start line
        (folder / f"ready-{writer}").touch()
        await _wait_for(folder / "go")
        for batch in range(batches):
            await store.add_many([trade_for(writer, batch, k) for k in range(size)])
            if batch == 0:
                # Neither writer commits its second batch before both committed their first:
                # the two really write at once, however the machine schedules them.
                (folder / f"committed-{writer}").touch()
                for other in others:
                    await _wait_for(folder / f"committed-{other}")
    finally:
        await engine.dispose()


def main(argv: list[str]) -> None:
    url, writer, writers, batches, size, folder = argv
    if int(batches) > MAX_BATCHES or int(size) > MAX_PER_BATCH:
        raise SystemExit(f"at most {MAX_BATCHES} batches of {MAX_PER_BATCH} rows")
    others = [int(w) for w in writers.split(",") if int(w) != int(writer)]
    asyncio.run(_write(url, int(writer), others, int(batches), int(size), Path(folder)))


if __name__ == "__main__":
    main(sys.argv[1:])
