"""Any table to a Parquet file, for notebooks: exact decimals stay exact, features are lists."""

from __future__ import annotations

import json
import os
import uuid
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import JSON, Boolean, Float, Integer, LargeBinary, Numeric, SmallInteger, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.schema import Column

from slt.adapters.db.tables import metadata
from slt.errors import SltError


class ExportError(SltError):
    """An export that cannot be done (unknown table, unwritable file)."""


def _arrow_type(column: Column[object]) -> pa.DataType:
    kind = column.type
    if isinstance(kind, Numeric) and not isinstance(kind, Float):
        return pa.decimal128(kind.precision or 38, kind.scale or 18)
    if isinstance(kind, Boolean):
        return pa.bool_()
    if isinstance(kind, Float):
        return pa.float64()
    if isinstance(kind, SmallInteger | Integer):
        return pa.int64()
    if isinstance(kind, LargeBinary):
        return pa.list_(pa.float64()) if column.name == "features" else pa.binary()
    return pa.string()


def _values(column: Column[object], values: list[object], exact: bool) -> pa.Array:
    """``exact``: the backend stores decimals (PostgreSQL); SQLite stores them as float64, so
    their shortest float text is the value that was written."""
    arrow = _arrow_type(column)
    if column.name == "features" and pa.types.is_list(arrow):
        values = [
            np.frombuffer(v, dtype="<f8").tolist() if isinstance(v, bytes) else None for v in values
        ]
    elif isinstance(column.type, JSON):
        values = [None if v is None else json.dumps(v) for v in values]
    elif pa.types.is_decimal(arrow):
        values = [
            None if v is None else Decimal(str(v)) if exact else Decimal(repr(float(str(v))))
            for v in values
        ]
    return pa.array(values, type=arrow)


async def export_table(engine: AsyncEngine, table_name: str, out: Path) -> int:
    """Write every row of ``table_name`` to ``out`` atomically; returns the row count."""
    table = metadata.tables.get(table_name)
    if table is None:
        known = ", ".join(sorted(metadata.tables))
        raise ExportError(f"unknown table {table_name!r}; tables: {known}")
    async with engine.connect() as connection:
        rows = (await connection.execute(select(table))).all()
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in table.columns]
    exact = engine.dialect.name != "sqlite"
    arrays = [_values(c, list(v), exact) for c, v in zip(table.columns, columns, strict=True)]
    data = pa.table(arrays, names=[c.name for c in table.columns])
    out = Path(out)
    temp = out.with_name(f".{out.name}.{uuid.uuid4().hex}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(data, temp)
        os.replace(temp, out)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise ExportError(f"{out}: cannot write ({exc.strerror or exc})") from None
    return len(rows)
