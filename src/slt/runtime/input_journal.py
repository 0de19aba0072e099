"""The brain's journal: every input it applied (closed candles, gaps, the executor's events),
as the ring records they came in, in the order applied. The reducer is deterministic, so a
restarted brain that reads them through the same code has the same books, signal pipelines
and pending steps as the one that died.

A record is ``<u32 length><u16 kind><payload>``; each batch is written and flushed before its
records are applied (the kernel keeps it when the process is killed; a machine crash may lose
the last batch, and the exchange's reconciliation then brings the books in line). A torn last
record (the process died mid-write) is ignored and cut off at the next open.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

from slt.runtime.ring import Record

_HEADER = struct.Struct("<IH")


class InputJournal:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.records_read = 0
        good = self._good_length()
        with open(path, "ab") as f:  # cut a torn tail before appending after it
            f.truncate(good)
        self._file = open(path, "ab")  # noqa: SIM115 - held open for the process's life

    def _good_length(self) -> int:
        if not self.path.exists():
            return 0
        data = self.path.read_bytes()
        at = 0
        while at + _HEADER.size <= len(data):
            length, _kind = _HEADER.unpack_from(data, at)
            if at + _HEADER.size + length > len(data):
                break
            at += _HEADER.size + length
        return at

    def replay(self) -> Iterator[Record]:
        """The records of earlier runs of this brain, in order."""
        data = self.path.read_bytes() if self.path.exists() else b""
        at = 0
        while at + _HEADER.size <= len(data):
            length, kind = _HEADER.unpack_from(data, at)
            start = at + _HEADER.size
            if start + length > len(data):
                return
            self.records_read += 1
            yield Record(kind, bytes(data[start : start + length]))
            at = start + length

    def append(self, records: Sequence[Record]) -> None:
        if not records:
            return
        self._file.write(b"".join(_HEADER.pack(len(r.payload), r.kind) + r.payload
                                  for r in records))  # fmt: skip
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def size(self) -> int:
        return os.path.getsize(self.path) if self.path.exists() else 0
