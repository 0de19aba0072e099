"""The feature schema registry: per hash, the description of what its values mean.

Whatever stores data under a feature schema hash (virtual trades, experience rows, models)
registers that schema in the same transaction; registering again is a no-op. The learner reads
the descriptions to say why it sets aside examples recorded under another schema.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from slt.adapters.db.rows import insert_ignoring_duplicates, read_records, record_columns, rows_of
from slt.adapters.db.tables import feature_schemas
from slt.domain.learning_records import FeatureSchemaRecord, check_feature_schema
from slt.domain.records import RecordError

_COLUMNS = record_columns(feature_schemas, FeatureSchemaRecord)


async def write_feature_schemas(
    connection: AsyncConnection, records: Sequence[FeatureSchemaRecord]
) -> None:
    """Register checked schemas in an open transaction; a hash already stored is kept."""
    rows = rows_of(connection, records)
    await insert_ignoring_duplicates(connection, feature_schemas, rows, ["feature_schema_hash"])


async def register_with(
    connection: AsyncConnection, schema: FeatureSchemaRecord | None, hashes: Collection[str]
) -> None:
    """Register ``schema`` beside records of ``hashes`` about to be written in the same
    transaction; refuses a record of another hash, which the description would not explain."""
    if schema is None:
        return
    check_feature_schema(schema)
    others = sorted(set(hashes) - {schema.feature_schema_hash})
    if others:
        raise RecordError(
            f"records of feature schema {others[0]} came with the description of "
            f"{schema.feature_schema_hash}"
        )
    await write_feature_schemas(connection, [schema])


class FeatureSchemaStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def register(self, record: FeatureSchemaRecord) -> None:
        check_feature_schema(record)
        async with self.engine.begin() as connection:
            await write_feature_schemas(connection, [record])

    async def get(self, hashes: Collection[str]) -> dict[str, FeatureSchemaRecord]:
        """The stored descriptions of ``hashes``, by hash; unknown hashes are left out."""
        if not hashes:
            return {}
        query = select(*_COLUMNS).where(feature_schemas.c.feature_schema_hash.in_(list(hashes)))
        async with self.engine.connect() as connection:
            found = await read_records(connection, query, FeatureSchemaRecord)
        return {r.feature_schema_hash: r for r in found}
