"""The experience buffer: training examples with their labels and weights."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from slt.adapters.db.feature_schemas import register_with
from slt.adapters.db.rows import rows_of
from slt.adapters.db.tables import experience_buffer
from slt.domain.learning_records import Example, FeatureSchemaRecord, check_example
from slt.domain.records import RecordError

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ExampleBatch:
    """Examples oldest first, as the learner consumes them."""

    time_ms: npt.NDArray[np.int64]
    features: F64
    feature_schema_hash: list[str]
    won: npt.NDArray[np.bool_]
    return_pct: F64
    reward: F64
    weight: F64

    def __len__(self) -> int:
        return len(self.time_ms)


async def write_examples(connection: AsyncConnection, records: Sequence[Example]) -> None:
    rows = rows_of(connection, records)
    if rows:
        await connection.execute(experience_buffer.insert(), rows)


class ExperienceStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def add_many(
        self, records: Sequence[Example], *, schema: FeatureSchemaRecord | None = None
    ) -> None:
        """Insert all or nothing, registering ``schema`` (the examples' feature schema)."""
        width = len(records[0].features) if records else None
        for record in records:
            check_example(record, width)
        if not records:
            return
        async with self.engine.begin() as connection:
            await register_with(connection, schema, {r.feature_schema_hash for r in records})
            await write_examples(connection, records)

    async def count(self) -> int:
        async with self.engine.connect() as connection:
            query = select(func.count()).select_from(experience_buffer)
            return int((await connection.execute(query)).scalar_one())

    async def newest(self, limit: int, feature_schema_hash: str | None = None) -> ExampleBatch:
        """The newest ``limit`` examples (of one feature schema when given), oldest first."""
        t = experience_buffer
        query = select(
            t.c.time_ms, t.c.features, t.c.feature_schema_hash, t.c.won,
            t.c.return_pct, t.c.reward, t.c.weight,
        ).order_by(t.c.time_ms.desc(), t.c.id.desc()).limit(limit)  # fmt: skip
        if feature_schema_hash is not None:
            query = query.where(t.c.feature_schema_hash == feature_schema_hash)
        async with self.engine.connect() as connection:
            rows = list(reversed((await connection.execute(query)).all()))
        widths = {len(r[1]) for r in rows}
        if len(widths) > 1:
            raise RecordError(
                "the newest examples come from several feature schemas; "
                "ask for one with feature_schema_hash"
            )
        width = widths.pop() // 8 if widths else 0
        features = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f8")
        return ExampleBatch(
            time_ms=np.array([r[0] for r in rows], dtype=np.int64),
            features=features.reshape(len(rows), width).astype(np.float64),
            feature_schema_hash=[r[2] for r in rows],
            won=np.array([r[3] for r in rows], dtype=np.bool_),
            return_pct=np.array([r[4] for r in rows], dtype=np.float64),
            reward=np.array([r[5] for r in rows], dtype=np.float64),
            weight=np.array([r[6] for r in rows], dtype=np.float64),
        )
