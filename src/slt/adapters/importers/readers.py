"""Reading rows out of the file formats traders already have, into plain numpy columns.

Readers only parse; deciding what the rows are (interval, kind, quality) is the importer's job.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.parquet as pq

from slt.domain.series import F64, I64, PRICE_COLUMNS
from slt.errors import DataFileError

TIME_COLUMNS = ("date", "open_time", "timestamp", "time")
ARCHIVE_KLINE_COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)


@dataclass(frozen=True)
class RawRows:
    """Rows as found in a file: times in ms (unit normalised), prices as floats, order untouched."""

    times_ms: I64
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64
    header: bool | None = None  # for CSV: whether the file had a header row

    def __len__(self) -> int:
        return len(self.times_ms)

    @classmethod
    def of(cls, times_ms: I64, prices: list[F64], header: bool | None = None) -> RawRows:
        """From a time column and the five price columns in OHLCV order."""
        o, h, low, c, v = prices
        return cls(times_ms, o, h, low, c, v, header)


def times_to_ms(path: Path, values: np.ndarray[Any, Any]) -> I64:
    """Epoch times in s, ms, µs or ns (told apart by magnitude) -> int64 ms."""
    if values.dtype.kind == "M":
        return np.ascontiguousarray(values.astype("datetime64[ms]").astype(np.int64))
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)):
            raise DataFileError(path, "time column holds empty or non-numeric values")
        if not np.all(values == np.round(values)):
            raise DataFileError(path, "time column holds fractional epoch values")
        values = values.astype(np.int64)
    if values.dtype.kind not in "iu":
        raise DataFileError(path, f"time column is not numeric (found {values.dtype})")
    values = values.astype(np.int64)
    if len(values) == 0:
        return values
    top = int(np.abs(values).max())
    for limit, divide, multiply in ((10**11, 1, 1000), (10**14, 1, 1), (10**17, 1000, 1)):
        if top < limit:
            return np.ascontiguousarray(values // divide * multiply)
    return np.ascontiguousarray(values // 1_000_000)


def _float_column(path: Path, values: Any, name: str) -> F64:
    try:
        return np.ascontiguousarray(np.asarray(values, dtype=np.float64))
    except (TypeError, ValueError) as exc:
        raise DataFileError(path, f"column {name!r} holds non-numeric values ({exc})") from exc


def _from_table(path: Path, table: pa.Table) -> RawRows:
    names = [n.lower() for n in table.column_names]
    columns = dict(zip(names, table.columns, strict=True))
    time_name = next((n for n in TIME_COLUMNS if n in columns), None)
    missing = [c for c in PRICE_COLUMNS if c not in columns]
    if time_name is None or missing:
        wanted = ([] if time_name else ["date"]) + missing
        raise DataFileError(
            path, f"missing column(s) {', '.join(wanted)}; found: {', '.join(table.column_names)}"
        )
    time_col = columns[time_name]
    if time_col.null_count:
        raise DataFileError(path, f"{time_col.null_count} rows have no time")
    if pa.types.is_timestamp(time_col.type):
        time_col = time_col.cast(pa.timestamp("ms"), safe=False)
    times = times_to_ms(path, time_col.to_numpy())
    prices = [
        _float_column(path, columns[c].to_numpy(zero_copy_only=False), c) for c in PRICE_COLUMNS
    ]
    return RawRows.of(times, prices)


def read_feather(path: Path) -> RawRows:
    try:
        table = feather.read_table(path, memory_map=False)
    except (OSError, pa.ArrowException) as exc:
        raise DataFileError(path, f"not a readable feather file ({_short(exc)})") from exc
    return _from_table(path, table)


def read_parquet(path: Path) -> RawRows:
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataFileError(path, f"not a readable parquet file ({_short(exc)})") from exc
    return _from_table(path, table)


def read_json(path: Path) -> RawRows:
    """freqtrade's JSON: ``[[time_ms, o, h, l, c, v], ...]`` or a pandas column dict."""
    try:
        raw = path.read_bytes()
        if path.name.lower().endswith(".gz"):
            raw = gzip.decompress(raw)
        data = json.loads(raw)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, ValueError) as exc:
        raise DataFileError(path, f"not a readable JSON file ({_short(exc)})") from exc
    if isinstance(data, list):
        return _from_json_rows(path, data)
    if isinstance(data, dict):
        return _from_json_columns(path, data)
    raise DataFileError(path, "JSON must be a list of candle rows or a dict of columns")


def _from_json_rows(path: Path, data: list[Any]) -> RawRows:
    bad = next((i for i, row in enumerate(data) if not isinstance(row, list) or len(row) < 6), None)
    if bad is not None:
        raise DataFileError(
            path, f"row {bad} is {data[bad]!r:.60}; expected [time, open, high, low, close, volume]"
        )
    if not data:
        return RawRows.of(np.empty(0, dtype=np.int64), [np.empty(0) for _ in PRICE_COLUMNS])
    try:
        times = np.asarray([row[0] for row in data])
    except (TypeError, ValueError) as exc:
        raise DataFileError(path, f"time values are not numbers ({exc})") from exc
    prices = [
        _float_column(path, [row[i] for row in data], name)
        for i, name in enumerate(PRICE_COLUMNS, start=1)
    ]
    return RawRows.of(times_to_ms(path, times), prices)


def _from_json_columns(path: Path, data: dict[str, Any]) -> RawRows:
    lowered = {k.lower(): v for k, v in data.items()}
    time_name = next((n for n in TIME_COLUMNS if n in lowered), None)
    missing = [c for c in PRICE_COLUMNS if c not in lowered]
    if time_name is None or missing:
        raise DataFileError(path, f"JSON columns {sorted(data)} lack a time or {missing}")

    def values(name: str) -> list[Any]:
        column = lowered[name]
        if isinstance(column, dict):  # pandas orient="columns": {"0": v, "1": v, ...}
            order = sorted(column, key=lambda k: int(k) if str(k).isdigit() else str(k))
            return [column[k] for k in order]
        if isinstance(column, list):
            return column
        raise DataFileError(path, f"JSON column {name!r} is neither a list nor a dict")

    times = np.asarray(values(time_name))
    prices = [_float_column(path, values(c), c) for c in PRICE_COLUMNS]
    if any(len(p) != len(times) for p in prices):
        raise DataFileError(path, "JSON columns have different lengths")
    return RawRows.of(times_to_ms(path, times), prices)


def read_archive_csv(path: Path) -> RawRows:
    """A Binance public-archive kline CSV (futures: header row; spot: none), zipped or not."""
    text = _archive_bytes(path)
    first = text.split(b"\n", 1)[0].strip()
    if not first:
        raise DataFileError(path, "file is empty")
    header = not first[:1].isdigit()
    if header and first.lower().startswith(b"calc_time"):
        return _read_archive_funding(path, text)
    options = pacsv.ReadOptions(
        column_names=None if header else list(ARCHIVE_KLINE_COLUMNS)[: first.count(b",") + 1],
        autogenerate_column_names=False,
    )
    try:
        table = pacsv.read_csv(io.BytesIO(text), read_options=options)
    except pa.ArrowException as exc:
        raise DataFileError(path, f"not a readable Binance kline CSV ({_short(exc)})") from exc
    rows = _from_table(path, table)
    return RawRows(rows.times_ms, rows.open, rows.high, rows.low, rows.close, rows.volume, header)


def _read_archive_funding(path: Path, text: bytes) -> RawRows:
    try:
        table = pacsv.read_csv(io.BytesIO(text))
        times = times_to_ms(path, table.column("calc_time").to_numpy())
        rate = _float_column(path, table.column("last_funding_rate").to_numpy(), "rate")
    except (pa.ArrowException, KeyError) as exc:
        raise DataFileError(path, f"not a readable Binance funding CSV ({_short(exc)})") from exc
    zeros = np.zeros(len(rate))
    return RawRows.of(times, [rate, zeros, zeros.copy(), zeros.copy(), zeros.copy()], True)


def _archive_bytes(path: Path) -> bytes:
    try:
        if not path.name.lower().endswith(".zip"):
            return path.read_bytes()
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.namelist() if m.lower().endswith(".csv")]
            if len(members) != 1:
                raise DataFileError(path, f"zip should hold one CSV file, holds {len(members)}")
            return archive.read(members[0])
    except (OSError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise DataFileError(path, f"not a readable zip/CSV file ({_short(exc)})") from exc


def _short(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__


READERS = {
    "feather": read_feather,
    "parquet": read_parquet,
    "json": read_json,
    "json.gz": read_json,
    "csv": read_archive_csv,
    "zip": read_archive_csv,
}
