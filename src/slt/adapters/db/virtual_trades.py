"""The virtual-trade repository: what the learner trains on. No SQL outside this package.

``add_many`` checks every record first and writes them all in one transaction: when it
returns, they are committed (durable); when it raises, nothing was written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from slt.adapters.db.tables import virtual_trades
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
_NEWEST_SQL = (
    "SELECT id, symbol, direction, entry_time_ms, exit_time_ms, return_pct, reward, won, "
    "features, feature_schema_hash FROM virtual_trades "
    "ORDER BY exit_time_ms DESC, id DESC LIMIT ?"
)
_SQLITE_INSERT = (
    f"INSERT INTO virtual_trades ({', '.join(_INSERT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _INSERT_COLUMNS)})"
)


def _money(value: float) -> Decimal:
    return Decimal(repr(float(value)))


class VirtualTradeStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._postgres = engine.dialect.name == "postgresql"

    async def add_many(self, trades: Sequence[VirtualTrade]) -> int:
        """Insert all or nothing; returns how many were written.

        The rows go through each driver's bulk path (PostgreSQL COPY, SQLite executemany)
        inside one transaction: SQLAlchemy's per-row processing would take most of the time.
        """
        features = check_virtual_trades(trades)
        if not trades:
            return 0
        postgres = self._postgres
        money = _money if postgres else float
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
            if postgres:
                raw = (await connection.get_raw_connection()).driver_connection
                assert raw is not None
                await raw.copy_records_to_table(
                    virtual_trades.name, records=rows, columns=list(_INSERT_COLUMNS)
                )
            else:
                await connection.exec_driver_sql(_SQLITE_INSERT, rows)
        return len(rows)

    async def count(self) -> int:
        async with self.engine.connect() as connection:
            result = await connection.execute(select(func.count()).select_from(virtual_trades))
            return int(result.scalar_one())

    async def newest(self, limit: int) -> TrainingBatch:
        """The ``limit`` most recently closed virtual trades, newest first (raw driver rows:
        SQLAlchemy's per-row result processing would take most of the time)."""
        sql = _NEWEST_SQL.replace("?", "$1") if self._postgres else _NEWEST_SQL
        async with self.engine.connect() as connection:
            if self._postgres:
                raw = (await connection.get_raw_connection()).driver_connection
                assert raw is not None
                rows: Sequence[Sequence[object]] = await raw.fetch(sql, limit)
            else:
                rows = (await connection.exec_driver_sql(sql, (limit,))).all()
        columns: list[tuple[object, ...]] = (
            list(zip(*rows, strict=True)) if rows else [() for _ in range(10)]
        )
        blobs = [b for b in columns[8] if isinstance(b, bytes)]
        width = len(blobs[0]) // 8 if blobs else 0
        features = np.frombuffer(b"".join(blobs), dtype="<f8").reshape(len(blobs), width)
        return TrainingBatch(
            id=np.array(columns[0], dtype=np.int64),
            symbol=[str(x) for x in columns[1]],
            direction=np.array(columns[2], dtype=np.int8),
            entry_time_ms=np.array(columns[3], dtype=np.int64),
            exit_time_ms=np.array(columns[4], dtype=np.int64),
            return_pct=np.array(columns[5], dtype=np.float64),
            reward=np.array(columns[6], dtype=np.float64),
            won=np.array(columns[7], dtype=np.bool_),
            features=features.astype(np.float64),
            feature_schema_hash=[str(x) for x in columns[9]],
        )
