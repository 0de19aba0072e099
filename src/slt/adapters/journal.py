"""The event journal as a file: one JSON object per line, appended before each event is
applied, so a session can be replayed or resumed.

The first line is the header (what the session ran: symbols, rules, configuration, run id);
then events (``{"type": "OrderFilled", ...}``) and, from backtests, step marks (the bars of
each step, to rebuild the report's equity curve). A line is written whole and flushed; a last
line cut short by a crash is set aside on reading and reported, never taken for an event.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from slt.engine.messages import Event, event_from_dict, event_to_dict
from slt.errors import SltError

FORMAT = "slt-journal"
VERSION = 1


class JournalError(SltError):
    """A journal that cannot be read: not a journal, another version, a corrupt line."""


def _encode(value: Any) -> Any:
    """JSON has no NaN: non-finite floats travel as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return float(value)
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


class JsonlJournal:
    """Append events to ``path``; ``fsync`` makes every append durable (live trading), at a
    cost a backtest need not pay."""

    def __init__(self, path: Path, header: dict[str, Any] | None = None, *, fsync: bool = False):
        self.path = Path(path)
        self.fsync = fsync
        self._file: IO[str] | None = None
        if header is not None:
            self._open("w")
            self._write({"format": FORMAT, "version": VERSION, "header": header})

    def _open(self, mode: str) -> IO[str]:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, mode, encoding="utf-8")  # noqa: SIM115
        return self._file

    def _write(self, record: dict[str, Any]) -> None:
        handle = self._open("a")
        handle.write(json.dumps(_encode(record), separators=(",", ":"), allow_nan=False) + "\n")
        handle.flush()
        if self.fsync:
            os.fsync(handle.fileno())

    def append(self, event: Event) -> None:
        self._write(event_to_dict(event))

    def mark_step(self, time_ms: int, bars: list[tuple[int, float, float, float, float]]) -> None:
        """The end of a backtest step: its open time and each bar (symbol, o, h, l, c)."""
        self._write({"type": "Step", "time_ms": time_ms, "bars": bars})

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def __enter__(self) -> JsonlJournal:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- reading ------------------------------------------------------------------------

    def header(self) -> dict[str, Any]:
        for record in self._records(header=True):
            return dict(record["header"])
        raise JournalError(f"{self.path}: empty journal")

    def read(self) -> Iterator[Event]:
        for record in self._records():
            if record.get("type") != "Step":
                yield self._event(record)

    def entries(self) -> Iterator[Event | dict[str, Any]]:
        """Events and step marks (as dicts), in the order they were written."""
        for record in self._records():
            yield record if record.get("type") == "Step" else self._event(record)

    def torn_tail(self) -> bool:
        """Whether the last line was cut short (the writer died mid-line)."""
        with open(self.path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() == 0:
                return False
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) != b"\n"

    def _event(self, record: dict[str, Any]) -> Event:
        try:
            return event_from_dict(record)
        except (KeyError, TypeError) as exc:
            raise JournalError(f"{self.path}: not an engine event: {record} ({exc})") from None

    def _records(self, header: bool = False) -> Iterator[dict[str, Any]]:
        if not self.path.is_file():
            raise JournalError(f"{self.path}: no such journal")
        with open(self.path, encoding="utf-8") as handle:
            lines = handle.read().split("\n")
        if lines and lines[-1] != "":
            lines = lines[:-1]  # torn last line: the event was never applied
        for number, line in enumerate(lines, start=1):
            if not line:
                continue
            try:
                record = _decode(json.loads(line))
            except json.JSONDecodeError as exc:
                raise JournalError(f"{self.path}:{number}: corrupt line ({exc.msg})") from None
            if number == 1:
                if record.get("format") != FORMAT:
                    raise JournalError(f"{self.path}: not an slt journal")
                if record.get("version") != VERSION:
                    raise JournalError(
                        f"{self.path}: journal version {record.get('version')} is not {VERSION}"
                    )
                if header:
                    yield record
                    return
                continue
            yield record
