"""Market data on disk: one Parquet file per symbol / market / timeframe / kind.

Writes are staged into temporary files next to their targets and renamed into place only when
every file of a command has been written, so a failed command leaves the store as it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from slt.domain.series import Candles, FundingRates, Kind, Market, Series, SeriesKey
from slt.domain.timeframes import timeframe_ms
from slt.errors import StoreError, UnknownSeriesError

FORMAT_VERSION = "1"
_META_PREFIX = b"slt."


@dataclass(frozen=True)
class MergeResult:
    """What a merge did: rows in the incoming series, rows added, rows whose values changed."""

    key: SeriesKey
    incoming: int
    added: int
    changed: int
    total: int


def _schema(kind: Kind) -> pa.Schema:
    if kind is Kind.FUNDING:
        return pa.schema([("time_ms", pa.int64()), ("rate", pa.float64())])
    return pa.schema(
        [("open_time_ms", pa.int64())]
        + [(c, pa.float64()) for c in ("open", "high", "low", "close", "volume")]
    )


def _to_table(series: Series) -> pa.Table:
    key = series.key
    meta = {
        b"slt.format": FORMAT_VERSION.encode(),
        b"slt.symbol": key.symbol.encode(),
        b"slt.market": str(key.market).encode(),
        b"slt.timeframe": key.timeframe.encode(),
        b"slt.kind": str(key.kind).encode(),
    }
    schema = _schema(key.kind).with_metadata(meta)
    return pa.Table.from_pydict(dict(series.columns()), schema=schema)


def _from_table(key: SeriesKey, table: pa.Table) -> Series:
    cols = {name: table.column(name).to_numpy() for name in table.column_names}
    if key.kind is Kind.FUNDING:
        return FundingRates(key, np.ascontiguousarray(cols["time_ms"]), cols["rate"])
    return Candles(key, **{k: np.ascontiguousarray(v) for k, v in cols.items()})


def merge_series(existing: Series | None, incoming: Series) -> tuple[Series, MergeResult]:
    """Union of two series of one key; where both hold a time, the incoming row wins."""
    new_cols = incoming.columns()
    time_name = next(iter(new_cols))
    if existing is None or len(existing) == 0:
        merged = incoming
        added, changed = len(incoming), 0
    else:
        old_cols = existing.columns()
        old_t, new_t = old_cols[time_name], new_cols[time_name]
        pos = np.searchsorted(old_t, new_t)
        pos_clipped = np.minimum(pos, len(old_t) - 1)
        overlap = old_t[pos_clipped] == new_t
        changed_mask = np.zeros(len(new_t), dtype=np.bool_)
        for name in list(new_cols)[1:]:
            a, b = old_cols[name][pos_clipped], new_cols[name]
            same = (a == b) | (np.isnan(a) & np.isnan(b))
            changed_mask |= overlap & ~same
        keep_old = np.ones(len(old_t), dtype=np.bool_)
        keep_old[pos_clipped[overlap]] = False
        times = np.concatenate([old_t[keep_old], new_t])
        order = np.argsort(times, kind="stable")
        cols = {
            name: np.ascontiguousarray(np.concatenate([old_cols[name][keep_old], col])[order])
            for name, col in new_cols.items()
        }
        merged = (
            FundingRates(incoming.key, **cols)
            if isinstance(incoming, FundingRates)
            else Candles(incoming.key, **cols)
        )
        added = int(len(new_t) - overlap.sum())
        changed = int(changed_mask.sum())
    result = MergeResult(incoming.key, len(incoming), added, changed, len(merged))
    return merged, result


class ParquetStore:
    """The market-data store rooted at ``<data dir>/market``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, key: SeriesKey) -> Path:
        return self.root / str(key.market) / str(key.kind) / f"{key.symbol}-{key.timeframe}.parquet"

    def series_keys(self) -> list[SeriesKey]:
        """Every stored series, sorted by symbol, market, timeframe length and kind."""
        found: list[SeriesKey] = []
        if not self.root.is_dir():
            return found
        for market in Market:
            for kind in Kind:
                folder = self.root / str(market) / str(kind)
                if not folder.is_dir():
                    continue
                for path in folder.glob("*.parquet"):
                    symbol, _, timeframe = path.stem.rpartition("-")
                    if symbol and not path.name.startswith("."):
                        found.append(SeriesKey(symbol, market, timeframe, kind))
        return sorted(found, key=lambda k: (k.symbol, k.market, timeframe_ms(k.timeframe), k.kind))

    def futures_keys(self, symbol: str, kind: Kind) -> list[SeriesKey]:
        """The symbol's stored futures series of ``kind``, shortest timeframe first (funding
        intervals and candle timeframes vary by symbol and by what was imported)."""
        return [
            k
            for k in self.series_keys()
            if k.symbol == symbol and k.market is Market.FUTURES and k.kind is kind
        ]

    def has(self, key: SeriesKey) -> bool:
        return self.path_for(key).is_file()

    def load(
        self, key: SeriesKey, start_ms: int | None = None, end_ms: int | None = None
    ) -> Series:
        """The stored series, optionally limited to times in ``[start_ms, end_ms)``."""
        path = self.path_for(key)
        if not path.is_file():
            raise UnknownSeriesError(self._missing_message(key))
        try:
            table = pq.read_table(path, memory_map=True)
        except (OSError, pa.ArrowException) as exc:
            raise StoreError(f"{path}: cannot read store file ({exc})") from exc
        if table.schema.remove_metadata() != _schema(key.kind):
            raise StoreError(f"{path}: store file has unexpected columns {table.column_names}")
        series = _from_table(key, table)
        if start_ms is None and end_ms is None:
            return series
        return series.between(start_ms, end_ms)

    def load_candles(
        self, key: SeriesKey, start_ms: int | None = None, end_ms: int | None = None
    ) -> Candles:
        series = self.load(key, start_ms, end_ms)
        if not isinstance(series, Candles):
            raise UnknownSeriesError(f"{key} holds funding rates, not candles")
        return series

    def _missing_message(self, key: SeriesKey) -> str:
        same_symbol = [k for k in self.series_keys() if k.symbol == key.symbol]
        if not same_symbol:
            symbols = sorted({k.symbol for k in self.series_keys()})
            held = ", ".join(symbols) if symbols else "nothing yet (run `slt data import`)"
            return f"no data for symbol {key.symbol} in the store; it holds: {held}"
        held = ", ".join(f"{k.market} {k.timeframe} {k.kind}" for k in same_symbol)
        return f"no {key.market} {key.timeframe} {key.kind} data for {key.symbol}; it has: {held}"

    @contextlib.contextmanager
    def transaction(self) -> Iterator[StoreTransaction]:
        """Stage merges, then publish them all at once; on any error nothing is published."""
        lock = self._lock()
        tx = StoreTransaction(self)
        try:
            yield tx
            tx.commit()
        finally:
            tx.discard()
            lock.close()

    def merge(self, series: Series) -> MergeResult:
        """Merge one series into the store atomically."""
        with self.transaction() as tx:
            return tx.stage(series)

    def _lock(self) -> IO[bytes]:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            handle = open(self.root / ".lock", "a+b")  # noqa: SIM115 - closed by the transaction
        except OSError as exc:
            raise StoreError(
                f"{self.root}: data directory is not writable ({exc.strerror})"
            ) from exc
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        return handle


class StoreTransaction:
    """Staged files waiting to be renamed over their targets."""

    def __init__(self, store: ParquetStore) -> None:
        self.store = store
        self._staged: dict[SeriesKey, tuple[Series, Path]] = {}
        self.results: list[MergeResult] = []

    def stage(self, series: Series) -> MergeResult:
        key = series.key
        previous = self._staged.get(key)
        existing = (
            previous[0] if previous else (self.store.load(key) if self.store.has(key) else None)
        )
        merged, result = merge_series(existing, series)
        target = self.store.path_for(key)
        temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(_to_table(merged), temp, compression="zstd", compression_level=1)
            with open(temp, "rb") as handle:
                os.fsync(handle.fileno())
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise StoreError(f"{target.parent}: cannot write store file ({exc.strerror})") from exc
        if previous:
            previous[1].unlink(missing_ok=True)
        self._staged[key] = (merged, temp)
        self.results.append(result)
        return result

    def commit(self) -> None:
        for key, (_, temp) in self._staged.items():
            target = self.store.path_for(key)
            os.replace(temp, target)
            _fsync_dir(target.parent)
        self._staged.clear()

    def discard(self) -> None:
        for _, temp in self._staged.values():
            temp.unlink(missing_ok=True)
        self._staged.clear()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
