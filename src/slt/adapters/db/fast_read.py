"""Bulk reads decoded at array speed, without a Python object per number on the way.

PostgreSQL sends fixed-width columns as a binary COPY stream in which every row has the same
layout, so one structured numpy dtype reads them all; SQLite hands over row tuples, which
``np.fromiter`` turns into columns in C. A row ends with its feature snapshot: little-endian
float64 bytes, one width for every row of a read (else ``RecordError``).
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from slt.domain.records import RecordError

F64 = npt.NDArray[np.float64]
# A number column: its name, its PostgreSQL binary-COPY wire type as a numpy type (big-endian),
# and the numpy type the caller wants.
Number = tuple[str, str, type[np.generic]]
Columns = dict[str, npt.NDArray[Any]]

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_HEADER = len(_SIGNATURE) + 8  # then flags (int32) and header-extension length (int32)
_TRAILER = b"\xff\xff"  # a field count of -1


def binary_copy_columns(data: bytes, numbers: Sequence[Number]) -> tuple[Columns, F64]:
    """Decode ``COPY (SELECT <numbers>, <features>) TO STDOUT (FORMAT binary)``: the number
    columns (none NULL) and the (rows, width) feature matrix, both owned and writable."""
    if not data.startswith(_SIGNATURE) or not data.endswith(_TRAILER):
        raise ValueError("not a PostgreSQL binary COPY stream")
    start = _HEADER + int.from_bytes(data[_HEADER - 4 : _HEADER], "big")
    body = memoryview(data)[start : len(data) - len(_TRAILER)]
    # Bytes of a row before its feature snapshot: field count, then length + value per number.
    before = 2 + sum(4 + np.dtype(wire).itemsize for _, wire, _ in numbers)
    blob = int.from_bytes(body[before : before + 4], "big", signed=True) if len(body) else 0
    if blob < 0:
        raise ValueError("a NULL feature snapshot")
    row = np.dtype(
        [
            ("n_fields", ">i2"),
            *[field for name, wire, _ in numbers for field in ((f"{name}_n", ">i4"), (name, wire))],
            ("features_n", ">i4"),
            ("features", "<f8", (blob // 8,)),
        ]
    )
    if blob % 8 or len(body) % row.itemsize:
        raise _uneven(_snapshot_sizes(body, before))
    rows = np.frombuffer(body, dtype=row)
    expected = [("n_fields", len(numbers) + 1), ("features_n", blob)] + [
        (f"{name}_n", np.dtype(wire).itemsize) for name, wire, _ in numbers
    ]
    if any((rows[field] != size).any() for field, size in expected):
        raise _uneven(_snapshot_sizes(body, before))
    columns = {name: rows[name].astype(ours) for name, _, ours in numbers}
    return columns, rows["features"].astype(np.float64, order="C")


def text_copy_columns(data: bytes, n_columns: int) -> list[list[str]] | None:
    """Split ``COPY ... TO STDOUT`` text output into columns of strings; ``None`` when it holds
    a backslash (an escaped tab, newline, backslash or a NULL), which this fast path leaves to
    the driver."""
    if b"\\" in data:
        return None
    # Unescaped tabs and newlines only ever separate fields and rows.
    fields = data.decode().replace("\t", "\n").split("\n")
    fields.pop()  # after the last row's newline
    if len(fields) % n_columns:
        raise ValueError("a text COPY row with the wrong number of fields")
    return [fields[k::n_columns] for k in range(n_columns)]


def row_columns(
    rows: Sequence[Sequence[Any]], numbers: Sequence[Number], n_texts: int
) -> tuple[Columns, F64, list[list[str]]]:
    """Columns of driver rows laid out as ``(*numbers, features, *texts)``: the number
    columns, the (rows, width) feature matrix and the text columns as lists."""
    count = len(rows)
    picked = np.fromiter(
        map(itemgetter(slice(0, len(numbers))), rows),
        dtype=np.dtype([(name, ours) for name, _, ours in numbers]),
        count=count,
    )
    columns = {name: np.ascontiguousarray(picked[name]) for name, _, _ in numbers}
    blobs = list(map(itemgetter(len(numbers)), rows))
    sizes = np.fromiter(map(len, blobs), dtype=np.int64, count=count)
    if count and ((sizes != sizes[0]).any() or sizes[0] % 8):
        raise _uneven({int(size) for size in np.unique(sizes)})
    # A bytearray, so that the matrix is writable without one more copy.
    flat = np.frombuffer(bytearray().join(blobs), dtype="<f8").astype(np.float64, copy=False)
    features = flat.reshape(count, int(sizes[0]) // 8 if count else 0)
    texts = [list(map(itemgetter(len(numbers) + 1 + k), rows)) for k in range(n_texts)]
    return columns, features, texts


def _snapshot_sizes(body: memoryview, before: int) -> set[int]:
    """Every feature-snapshot size in bytes, walking the rows one by one (the error path)."""
    sizes: set[int] = set()
    at = 0
    while at < len(body):
        size = int.from_bytes(body[at + before : at + before + 4], "big", signed=True)
        sizes.add(size)
        at += before + 4 + max(size, 0)
    return sizes


def _uneven(sizes: set[int]) -> Exception:
    """The error for rows whose feature snapshots are not one matrix."""
    if len(sizes) > 1:
        widths = " and ".join(f"{size / 8:g}" for size in sorted(sizes))
        return RecordError(f"feature snapshots of several widths in one read: {widths} values")
    size = sizes.pop() if sizes else 0
    if size % 8:
        return RecordError(f"a feature snapshot of {size} bytes is not float64 values")
    return ValueError("a binary COPY row of an unexpected layout")
