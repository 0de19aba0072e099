"""The portfolio state: one value that can be snapshotted, restored and compared.

Everything the reducer knows lives here: the kernels' ``Book`` (wallet, positions, marks,
orders, recent trade ids, exit logs, win history, order and position sequences), plus the
run id, the symbols and the names of the model versions the book refers to by number.
"""

from __future__ import annotations

import functools
import io
import json
import zipfile
from dataclasses import dataclass, field

import numpy as np

from slt.engine.book import Book, books_equal, copy_book, new_book
from slt.errors import SltError

SNAPSHOT_FORMAT = 1


@functools.lru_cache(maxsize=64)
def _indexes(symbols: tuple[str, ...]) -> dict[str, int]:
    return {symbol: index for index, symbol in enumerate(symbols)}


class SnapshotError(SltError):
    """A snapshot that cannot be read back (corrupt, truncated, another format)."""


@dataclass(eq=False)
class PortfolioState:
    run_id: str
    symbols: tuple[str, ...]
    book: Book
    model_versions: list[str] = field(default_factory=lambda: ["none"])

    @classmethod
    def new(
        cls, run_id: str, symbols: tuple[str, ...], initial_equity: float, win_rate_lookback: int
    ) -> PortfolioState:
        return cls(run_id, symbols, new_book(len(symbols), initial_equity, win_rate_lookback))

    def copy(self) -> PortfolioState:
        return PortfolioState(
            self.run_id, self.symbols, copy_book(self.book), list(self.model_versions)
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PortfolioState):
            return NotImplemented
        return (
            self.run_id == other.run_id
            and self.symbols == other.symbols
            and self.model_versions == other.model_versions
            and books_equal(self.book, other.book)
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def model_version(self) -> str:
        return self.model_versions[int(self.book.account[0]["model_version"])]

    @property
    def wallet(self) -> float:
        return float(self.book.account[0]["wallet"])

    def symbol_index(self, symbol: str) -> int:
        index = _indexes(self.symbols).get(symbol)
        if index is None:
            raise SltError(f"{symbol} is not one of this portfolio's symbols")
        return index

    def snapshot(self) -> bytes:
        """Every array, byte for byte, and the metadata, in one ``.npz`` document."""
        meta = {
            "format": SNAPSHOT_FORMAT,
            "run_id": self.run_id,
            "symbols": list(self.symbols),
            "model_versions": self.model_versions,
        }
        buffer = io.BytesIO()
        arrays = dict(zip(Book._fields, self.book, strict=True))
        arrays["meta"] = np.array(json.dumps(meta))
        np.savez(buffer, **arrays)  # type: ignore[arg-type]
        return buffer.getvalue()

    @classmethod
    def restore(cls, data: bytes) -> PortfolioState:
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                meta = json.loads(str(archive["meta"]))
                book = Book._make(np.array(archive[name]) for name in Book._fields)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise SnapshotError(f"unreadable portfolio snapshot: {exc}") from None
        if meta.get("format") != SNAPSHOT_FORMAT:
            raise SnapshotError(f"portfolio snapshot format {meta.get('format')!r} is not known")
        return cls(meta["run_id"], tuple(meta["symbols"]), book, list(meta["model_versions"]))
