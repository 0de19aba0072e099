"""Every trained model with its status: one champion trades, challengers wait, the rest retire.

``promote`` and ``rollback`` change statuses in one transaction, so there is never a moment
with two champions or none (after the first promotion).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from slt.adapters.db.feature_schemas import register_with
from slt.adapters.db.rows import read_records, record_columns, rows_of
from slt.adapters.db.tables import ml_models
from slt.domain.learning_records import FeatureSchemaRecord, ModelRecord, check_model
from slt.domain.records import RecordError
from slt.errors import SltError


class ModelStoreError(SltError):
    """A model operation that cannot be done (unknown version, nothing to roll back to)."""


@dataclass(frozen=True)
class ModelSummary:
    """A stored model without its bytes, for listings."""

    version: str
    created_ms: int
    train_start_ms: int
    train_end_ms: int
    feature_schema_hash: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    status: str
    promoted_ms: int | None
    size_bytes: int


_RECORD_COLUMNS = record_columns(ml_models, ModelRecord)
_SUMMARY_COLUMNS = [
    *(c for c in _RECORD_COLUMNS if c.name != "model"),
    func.length(ml_models.c.model).label("size_bytes"),  # bytes on both backends
]


class ModelStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def add(self, record: ModelRecord, *, schema: FeatureSchemaRecord | None = None) -> None:
        """Store a new model, registering ``schema`` (its feature schema) with it; a champion
        added this way replaces the current one."""
        check_model(record)
        if record.status == "champion" and record.promoted_ms is None:
            record = replace(record, promoted_ms=record.created_ms)
        try:
            async with self.engine.begin() as connection:
                await register_with(connection, schema, {record.feature_schema_hash})
                if record.status == "champion":
                    await _retire_champion(connection)
                await connection.execute(ml_models.insert(), rows_of(connection, [record]))
        except IntegrityError:
            raise RecordError(f"model {record.version!r} is already stored") from None

    async def list(self) -> list[ModelSummary]:
        """Every model, oldest first."""
        query = select(*_SUMMARY_COLUMNS).order_by(ml_models.c.created_ms, ml_models.c.version)
        async with self.engine.connect() as connection:
            return await read_records(connection, query, ModelSummary)

    async def get(self, version: str) -> ModelRecord | None:
        return await self._one(ml_models.c.version == version)

    async def champion(self) -> ModelRecord | None:
        return await self._one(ml_models.c.status == "champion")

    async def _one(self, condition: Any) -> ModelRecord | None:
        async with self.engine.connect() as connection:
            query = select(*_RECORD_COLUMNS).where(condition)
            found = await read_records(connection, query, ModelRecord)
        return found[0] if found else None

    async def promote(self, version: str, now_ms: int) -> None:
        """Make ``version`` the champion; the current champion retires."""
        async with self.engine.begin() as connection:
            found = await _status_of(connection, version)
            if found == "champion":
                return
            await _retire_champion(connection)
            await connection.execute(
                update(ml_models)
                .where(ml_models.c.version == version)
                .values(status="champion", promoted_ms=now_ms)
            )

    async def rollback(self, now_ms: int) -> str:
        """Bring back the champion before the current one; returns its version.

        Like ``cd -``: a second rollback returns to where the first started. To go further
        back, promote a version by name."""
        async with self.engine.begin() as connection:
            current = (
                await connection.execute(
                    select(ml_models.c.version, ml_models.c.promoted_ms).where(
                        ml_models.c.status == "champion"
                    )
                )
            ).first()
            if current is None:
                raise ModelStoreError("there is no champion to roll back from")
            previous = (
                await connection.execute(
                    select(ml_models.c.version)
                    .where(
                        ml_models.c.version != current.version,
                        ml_models.c.promoted_ms.is_not(None),
                        ml_models.c.promoted_ms <= (current.promoted_ms or 0),
                    )
                    .order_by(ml_models.c.promoted_ms.desc(), ml_models.c.version.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            if previous is None:
                raise ModelStoreError(
                    f"{current.version} is the only model that was ever champion: "
                    "nothing to roll back to"
                )
            await _retire_champion(connection)
            await connection.execute(
                update(ml_models)
                .where(ml_models.c.version == previous)
                .values(status="champion", promoted_ms=now_ms)
            )
            return str(previous)


async def _status_of(connection: AsyncConnection, version: str) -> str:
    query = select(ml_models.c.status).where(ml_models.c.version == version)
    status = (await connection.execute(query)).scalar_one_or_none()
    if status is None:
        raise ModelStoreError(f"no model {version!r}; `slt model list` shows the stored ones")
    return str(status)


async def _retire_champion(connection: AsyncConnection) -> None:
    await connection.execute(
        update(ml_models).where(ml_models.c.status == "champion").values(status="retired")
    )
