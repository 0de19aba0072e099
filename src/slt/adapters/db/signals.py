"""Candidate signals, traded or not, with the features each one saw."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from slt.adapters.db.rows import insert_ignoring_duplicates, rows_of
from slt.adapters.db.tables import signals
from slt.domain.learning_records import SignalRecord, check_signal

_KEY = ("symbol", "time_ms", "timeframe", "strategy")


async def write_signals(connection: AsyncConnection, records: Sequence[SignalRecord]) -> None:
    rows = rows_of(connection, records)
    await insert_ignoring_duplicates(connection, signals, rows, _KEY)


class SignalStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def add_many(self, records: Sequence[SignalRecord]) -> None:
        """All or nothing; a signal already stored (same candle and strategy) is kept as is."""
        for record in records:
            check_signal(record)
        async with self.engine.begin() as connection:
            await write_signals(connection, records)

    async def between(
        self, symbol: str, start_ms: int, end_ms: int, strategy: str | None = None
    ) -> list[SignalRecord]:
        """Signals of ``symbol`` with ``start_ms <= time_ms < end_ms``, oldest first."""
        query = (
            select(signals)
            .where(
                signals.c.symbol == symbol,
                signals.c.time_ms >= start_ms,
                signals.c.time_ms < end_ms,
            )
            .order_by(signals.c.time_ms, signals.c.id)
        )
        if strategy is not None:
            query = query.where(signals.c.strategy == strategy)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).mappings().all()
        return [
            SignalRecord(
                time_ms=int(r["time_ms"]),
                symbol=r["symbol"],
                timeframe=r["timeframe"],
                direction=int(r["direction"]),
                raw_score=float(r["raw_score"]),
                confidence=float(r["confidence"]),
                features=np.frombuffer(r["features"], dtype="<f8").astype(np.float64),
                feature_schema_hash=r["feature_schema_hash"],
                strategy=r["strategy"],
                model_version=r["model_version"],
            )
            for r in rows
        ]
