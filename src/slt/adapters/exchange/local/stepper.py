"""Market time moving through the accounts: every finest candle of every symbol opens and
closes at the venue of every account, in time order, exactly once.

``advance_to`` is called before every request (so an answer always reflects the replayed
moment) and by the server's background loop (so fills and funding happen while clients are
quiet). It is cheap when nothing is due: one comparison against the next boundary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from slt.adapters.exchange.local.account import Account
from slt.adapters.exchange.local.market import SymbolTape

Publish = Callable[[str, dict[str, Any]], None]


@dataclass
class _Cursor:
    tape: SymbolTape
    next_index: int  # the next candle to open
    open_index: int = -1  # the candle open now (-1: between candles)
    ended: bool = False

    def next_boundary(self) -> int | None:
        """The next history moment this symbol has something to do."""
        c = self.tape.candles
        if self.open_index >= 0:
            return int(c.open_time_ms[self.open_index]) + c.key.timeframe_ms
        if self.next_index < len(c.open_time_ms):
            return int(c.open_time_ms[self.next_index])
        return None if self.ended else self.tape.end_ms


@dataclass
class Stepper:
    """Steps ``accounts`` through the tapes from ``start_ms`` (history time)."""

    tapes: dict[str, SymbolTape]
    start_ms: int
    accounts: list[Account] = field(default_factory=list)
    _cursors: dict[str, _Cursor] = field(default_factory=dict)
    _due_ms: int | None = None
    now_ms: int = 0

    def __post_init__(self) -> None:
        for symbol, tape in self.tapes.items():
            times = tape.candles.open_time_ms
            # The candle in progress at the start opens at once: its open is the price then.
            first = int(np.searchsorted(times, self.start_ms, "right")) - 1
            tf = tape.candles.key.timeframe_ms
            if first < 0 or times[first] + tf <= self.start_ms:
                first += 1
            self._cursors[symbol] = _Cursor(tape, first)
        self.now_ms = self.start_ms
        self._due_ms = self._next_due()

    def positions(self) -> dict[str, list[int]]:
        """Where every symbol's replay stands (for ``--state``)."""
        return {
            symbol: [c.next_index, c.open_index, int(c.ended)]
            for symbol, c in self._cursors.items()
        }

    def restore(self, saved: dict[str, list[int]]) -> None:
        for symbol, (next_index, open_index, ended) in saved.items():
            cursor = self._cursors[symbol]
            cursor.next_index, cursor.open_index = int(next_index), int(open_index)
            cursor.ended = bool(ended)
        self._due_ms = self._next_due()

    def next_due_ms(self) -> int | None:
        return self._due_ms

    def advance_to(self, now_ms: int, publish: Publish | None = None) -> int:
        """Process every boundary up to ``now_ms``; returns the user events published."""
        sent = 0
        self.now_ms = max(self.now_ms, now_ms)
        while self._due_ms is not None and self._due_ms <= now_ms:
            moment = self._due_ms
            for symbol, cursor in self._cursors.items():
                if cursor.next_boundary() == moment:
                    sent += self._step(symbol, cursor, moment, publish)
            self._due_ms = self._next_due()
        return sent

    def _step(self, symbol: str, cursor: _Cursor, moment: int, publish: Publish | None) -> int:
        times = cursor.tape.candles.open_time_ms
        sent = 0
        if cursor.open_index >= 0:
            i = cursor.open_index
            sent += _send(publish, ((a, a.close_candle(symbol, i, moment)) for a in self.accounts))
            cursor.open_index = -1
            cursor.next_index = i + 1
        if cursor.next_index >= len(times):
            if not cursor.ended:  # the data ends: the market stays open at the last close
                cursor.ended = True
                sent += _send(publish, ((a, a.end_of_data(symbol, moment)) for a in self.accounts))
            return sent
        if int(times[cursor.next_index]) <= moment:
            cursor.open_index = cursor.next_index
            events = ((a, a.open_candle(symbol, cursor.open_index, moment)) for a in self.accounts)
            sent += _send(publish, events)
        return sent

    def _next_due(self) -> int | None:
        due = [b for b in (c.next_boundary() for c in self._cursors.values()) if b is not None]
        return min(due) if due else None


def _send(publish: Publish | None, batches: Iterable[tuple[Account, list[dict[str, Any]]]]) -> int:
    sent = 0
    for account, events in batches:
        if publish is not None:
            for event in events:
                publish(account.api_key, event)
        sent += len(events)
    return sent
