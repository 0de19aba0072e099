"""The virtual-trade repository: what the learner trains on. No SQL outside this package.

``add_many`` checks every record first and writes them all in one transaction: when it
returns, they are committed (durable); when it raises, nothing was written.
"""

from __future__ import annotations

import operator
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from slt.adapters.db.fast_read import (
    Columns,
    Number,
    binary_copy_columns,
    row_columns,
    text_copy_columns,
)
from slt.adapters.db.feature_schemas import register_with
from slt.adapters.db.rows import money_for_dialect, rows_of
from slt.adapters.db.tables import virtual_trades
from slt.domain.learning_records import FeatureSchemaRecord
from slt.domain.records import VirtualTrade, check_virtual_trades

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class TrainingBatch:
    """Columns of the newest virtual trades (newest first) and their feature matrix."""

    id: I64
    symbol: list[str]
    direction: npt.NDArray[np.int8]
    entry_time_ms: I64
    exit_time_ms: I64
    return_pct: F64
    reward: F64
    won: npt.NDArray[np.bool_]
    features: F64  # (rows, features); NaN where a feature had no value
    feature_schema_hash: list[str]

    def __len__(self) -> int:
        return len(self.id)


_INSERT_COLUMNS = (
    "symbol", "direction", "entry_time_ms", "entry_price", "stop_loss_pct", "take_profit_pct",
    "exit_time_ms", "exit_price", "exit_reason", "return_pct", "reward", "won", "features",
    "feature_schema_hash", "model_version",
)  # fmt: skip
# What ``newest`` reads: number columns with their PostgreSQL binary-COPY wire types (bigint,
# smallint, double precision, boolean) and TrainingBatch's types; then features; then texts.
_NUMBERS: tuple[Number, ...] = (
    ("id", ">i8", np.int64),
    ("direction", ">i2", np.int8),
    ("entry_time_ms", ">i8", np.int64),
    ("exit_time_ms", ">i8", np.int64),
    ("return_pct", ">f8", np.float64),
    ("reward", ">f8", np.float64),
    ("won", "?", np.bool_),
)
_TEXTS = "symbol, feature_schema_hash"
_NUMBERS_AND_FEATURES = ", ".join(name for name, _, _ in _NUMBERS) + ", features"
_NEWEST = "FROM virtual_trades ORDER BY exit_time_ms DESC, id DESC LIMIT {limit}"
_SQLITE_INSERT = (
    f"INSERT INTO virtual_trades ({', '.join(_INSERT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _INSERT_COLUMNS)})"
)


class VirtualTradeStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._postgres = engine.dialect.name == "postgresql"

    async def add_many(
        self, trades: Sequence[VirtualTrade], *, schema: FeatureSchemaRecord | None = None
    ) -> int:
        """Insert all or nothing, registering ``schema`` (the trades' feature schema) with
        them; returns how many were written.

        The rows go through each driver's bulk path (PostgreSQL COPY, SQLite executemany)
        inside one transaction: SQLAlchemy's per-row processing would take most of the time.
        """
        features = check_virtual_trades(trades)
        if not trades:
            return 0
        postgres = self._postgres
        money = money_for_dialect(self.engine.dialect.name)
        blobs = np.ascontiguousarray(features, dtype="<f8")
        rows = [
            (
                t.symbol,
                t.direction,
                t.entry_time_ms,
                money(t.entry_price),
                float(t.stop_loss_pct),
                float(t.take_profit_pct),
                t.exit_time_ms,
                money(t.exit_price),
                t.exit_reason,
                float(t.return_pct),
                float(t.reward),
                bool(t.won),
                blobs[k].tobytes(),
                t.feature_schema_hash,
                t.model_version,
            )
            for k, t in enumerate(trades)
        ]
        async with self.engine.begin() as connection:
            await register_with(connection, schema, {t.feature_schema_hash for t in trades})
            if postgres:
                raw = (await connection.get_raw_connection()).driver_connection
                assert raw is not None
                await raw.copy_records_to_table(
                    virtual_trades.name, records=rows, columns=list(_INSERT_COLUMNS)
                )
            else:
                await connection.exec_driver_sql(_SQLITE_INSERT, rows)
        return len(rows)

    async def latest_exit_ms(self, symbol: str) -> int | None:
        """The newest stored exit time of ``symbol``: where an incremental store resumes."""
        query = select(func.max(virtual_trades.c.exit_time_ms)).where(
            virtual_trades.c.symbol == symbol
        )
        async with self.engine.connect() as connection:
            found = (await connection.execute(query)).scalar_one_or_none()
        return None if found is None else int(found)

    async def count(self) -> int:
        async with self.engine.connect() as connection:
            result = await connection.execute(select(func.count()).select_from(virtual_trades))
            return int(result.scalar_one())

    async def newest(self, limit: int) -> TrainingBatch:
        """The ``limit`` most recently closed virtual trades, newest first. Raises RecordError
        when their feature snapshots differ in width (several feature schemas)."""
        limit = operator.index(limit)
        if limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        # The raw drivers' bulk paths: SQLAlchemy's and the drivers' per-value Python
        # objects would take most of the time (see fast_read).
        async with self.engine.connect() as connection:
            raw = (await connection.get_raw_connection()).driver_connection
            read = _read_postgres if self._postgres else _read_sqlite
            numbers, features, (symbol, feature_schema_hash) = await read(raw, limit)
        return TrainingBatch(
            id=numbers["id"],
            symbol=symbol,
            direction=numbers["direction"],
            entry_time_ms=numbers["entry_time_ms"],
            exit_time_ms=numbers["exit_time_ms"],
            return_pct=numbers["return_pct"],
            reward=numbers["reward"],
            won=numbers["won"],
            features=features,
            feature_schema_hash=feature_schema_hash,
        )


Read = tuple[Columns, F64, list[list[str]]]


async def _read_sqlite(aiosqlite_connection: Any, limit: int) -> Read:
    """One query; aiosqlite fetches all rows in one hop to its thread."""
    sql = f"SELECT {_NUMBERS_AND_FEATURES}, {_TEXTS} {_NEWEST.format(limit=limit)}"
    rows = await aiosqlite_connection.execute_fetchall(sql)
    return row_columns(rows, _NUMBERS, n_texts=2)


async def _read_postgres(connection: Any, limit: int) -> Read:
    """On an asyncpg connection: numbers and features as one binary COPY stream, texts as a
    text COPY stream, both in one snapshot so that they see the same newest trades."""
    window = _NEWEST.format(limit=limit)
    binary: list[bytes] = []
    text: list[bytes] = []
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        await connection.copy_from_query(
            f"SELECT {_NUMBERS_AND_FEATURES} {window}", output=_sink(binary), format="binary"
        )
        await connection.copy_from_query(f"SELECT {_TEXTS} {window}", output=_sink(text))
        texts = text_copy_columns(b"".join(text), 2)
        if texts is None:  # escapes in the text stream: let the driver decode the strings
            rows = await connection.fetch(f"SELECT {_TEXTS} {window}")
            texts = [[row[0] for row in rows], [row[1] for row in rows]]
    numbers, features = binary_copy_columns(b"".join(binary), _NUMBERS)
    if len(texts[0]) != len(features):
        raise AssertionError("the two statements of one snapshot saw different rows")
    return numbers, features, texts


def _sink(chunks: list[bytes]) -> Callable[[bytes], Awaitable[None]]:
    async def collect(chunk: bytes) -> None:
        chunks.append(chunk)

    return collect


async def write_virtual_trades(connection: AsyncConnection, trades: Sequence[VirtualTrade]) -> None:
    """Add checked trades to an open transaction (the record writer's small batches; bulk
    loads go through ``VirtualTradeStore.add_many``)."""
    rows = rows_of(connection, trades, money=("entry_price", "exit_price"))
    if rows:
        await connection.execute(virtual_trades.insert(), rows)
