"""Statement helpers every repository shares: idempotent inserts, upserts, money conversion.

Idempotent writes matter because a commit whose acknowledgement is lost (the connection dies
after COMMIT reached the server) is retried: a unique key turns the second write into a no-op.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import fields
from decimal import Decimal
from numbers import Integral
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from sqlalchemy import Float, Table, type_coerce
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

Row = dict[str, Any]
R = TypeVar("R")


def money_for_dialect(dialect: str) -> Callable[[float], Decimal | float]:
    """PostgreSQL numerics take Decimals (the float's shortest text, exactly); SQLite keeps
    REAL, which round-trips the float itself."""
    if dialect == "postgresql":
        return lambda value: Decimal(repr(float(value)))
    return float


def money_for(connection: AsyncConnection) -> Callable[[float], Decimal | float]:
    return money_for_dialect(connection.dialect.name)


def feature_blob(row: npt.ArrayLike) -> bytes:
    """A feature snapshot as stored: the matrix row in little-endian float64 (NaN kept)."""
    return np.ascontiguousarray(row, dtype="<f8").tobytes()


def _insert(connection: AsyncConnection, table: Table) -> Any:
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def last_per_key(rows: Iterable[Row], keys: Sequence[str]) -> list[Row]:
    """The newest row per key, in first-seen order: one statement may not update a row twice."""
    newest: dict[tuple[Any, ...], Row] = {}
    for row in rows:
        newest[tuple(row[k] for k in keys)] = row
    return list(newest.values())


async def insert_ignoring_duplicates(
    connection: AsyncConnection, table: Table, rows: Sequence[Row], keys: Sequence[str]
) -> None:
    """Insert ``rows``; a row whose unique ``keys`` already exist is left as stored."""
    if rows:
        statement = _insert(connection, table).on_conflict_do_nothing(index_elements=list(keys))
        await connection.execute(statement, list(rows))


async def upsert(
    connection: AsyncConnection, table: Table, rows: Sequence[Row], keys: Sequence[str]
) -> None:
    """Insert ``rows`` or overwrite every other column of the row with the same ``keys``."""
    rows = last_per_key(rows, keys)
    if not rows:
        return
    statement = _insert(connection, table)
    changed = {name: statement.excluded[name] for name in rows[0] if name not in keys}
    await connection.execute(
        statement.on_conflict_do_update(index_elements=list(keys), set_=changed), rows
    )


def as_float(table: Table, names: Iterable[str]) -> list[ColumnElement[Any]]:
    """Money columns read back as floats (what the engine computes with); exports keep the
    exact decimals."""
    return [type_coerce(table.c[name], Float).label(name) for name in names]


def plain(value: Any) -> Any:
    """numpy scalars as the Python numbers the drivers take; feature rows as their blob."""
    if isinstance(value, np.ndarray):
        return feature_blob(value)
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def rows_of(
    connection: AsyncConnection,
    records: Iterable[Any],
    money: Collection[str] = (),
    renamed: Mapping[str, str] | None = None,
) -> list[Row]:
    """Dataclass records as column dicts: ``money`` fields converted for the backend,
    fields named differently from their column ``renamed`` (field -> column)."""
    convert = money_for(connection)
    renamed = renamed or {}
    rows = []
    for record in records:
        row = {}
        for item in fields(record):
            value = getattr(record, item.name)
            if item.name in money and value is not None:
                value = convert(value)
            row[renamed.get(item.name, item.name)] = plain(value)
        rows.append(row)
    return rows


def record_columns(
    table: Table,
    record_type: type,
    money: Collection[str] = (),
    renamed: Mapping[str, str] | None = None,
) -> list[ColumnElement[Any]]:
    """The columns that rebuild ``record_type`` with ``record_type(**row)``: labelled with the
    field names, money read as floats."""
    renamed = renamed or {}
    columns: list[ColumnElement[Any]] = []
    for item in fields(record_type):
        column = table.c[renamed.get(item.name, item.name)]
        value = type_coerce(column, Float) if item.name in money else column
        columns.append(value.label(item.name))
    return columns


async def read_records(connection: AsyncConnection, query: Any, record_type: type[R]) -> list[R]:
    rows = (await connection.execute(query)).mappings().all()
    return [record_type(**row) for row in rows]
