"""The ordering rules of closed candles, one ``KlineSequencer`` per (symbol, timeframe), with no
I/O (issue 14 item 1; docs/exchange.md "Market data by streams").

Every candle leaves the sequencer exactly once, in open-time order, or is named in a
``CandleGap``; nothing is skipped silently and nothing comes twice.

- A candle from the stream counts only on its final frame (``k.x`` true).
- The market clock is the newest event time ``E`` the exchange stamped on this symbol's frames
  (kline and mark-price streams). A candle whose final has not come when that clock has passed
  its close by ``late_final_grace_ms`` is owed: ``due`` names the span to fetch by REST.
- A final that comes after its candle was fetched (or given up) is a duplicate and dropped; so
  is a final seen twice (a reconnect's overlap, Binance sending ``x`` true again).
- Finals that come while older candles are still owed wait, so the order holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, NamedTuple

from slt.domain.timeframes import bucket_offset_ms, timeframe_ms

Source = Literal["stream", "warmup", "backfill"]


class Candle(NamedTuple):
    """A closed candle; ``source`` says how it came: its final frame, the warm-up or a back-fill."""

    symbol: str
    timeframe: str
    open_time_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    source: Source


class CandleGap(NamedTuple):
    """The candles opening ``from_open_ms`` to ``to_open_ms`` (both included) are missing and
    will not come."""

    symbol: str
    timeframe: str
    from_open_ms: int
    to_open_ms: int
    reason: str


class KlineSequencer:
    """One key's candles in order. ``start_open_ms``: the first candle wanted (a warm-up);
    None: the first final seen starts the series."""

    def __init__(
        self, symbol: str, timeframe: str, *, late_final_grace_ms: int = 5_000,
        start_open_ms: int | None = None,
    ) -> None:  # fmt: skip
        self.symbol, self.timeframe = symbol, timeframe
        self.tf_ms = timeframe_ms(timeframe)
        self.grace_ms = late_final_grace_ms
        self.next_open_ms = None if start_open_ms is None else self._align_up(start_open_ms)
        self.market_ms: int | None = None  # the newest event time seen (the exchange's clock)
        self.fetching: tuple[int, int] | None = None  # the span asked for by REST, if any
        self.streamed = False  # a candle from the stream has been emitted
        self.duplicates = 0
        self._held: dict[int, Candle] = {}  # finals waiting for older candles

    def observe(self, market_ms: int) -> None:
        """The exchange's clock has reached ``market_ms`` (a frame's ``E``)."""
        if self.market_ms is None or market_ms > self.market_ms:
            self.market_ms = market_ms

    def on_final(self, candle: Candle) -> list[Candle | CandleGap]:
        """A final frame's candle; what can be emitted now (it, and any it released)."""
        opened = candle.open_time_ms
        self.observe(opened + self.tf_ms)
        if self.next_open_ms is None:
            self.next_open_ms = opened
        if opened < self.next_open_ms or opened in self._held:
            self.duplicates += 1
            return []
        self._held[opened] = candle
        return self._release()

    def due(self) -> tuple[int, int] | None:
        """Open times (first, last) of the owed candles to fetch now: from the oldest not yet
        emitted to the newest whose final is past the grace, stopping before a held final.
        None while a fetch runs or nothing is owed."""
        if self.next_open_ms is None or self.fetching is not None or self.market_ms is None:
            return None
        last = self._align_down(self.market_ms - self.grace_ms - self.tf_ms)
        if self._held:
            last = min(last, min(self._held) - self.tf_ms)
        return (self.next_open_ms, last) if last >= self.next_open_ms else None

    def begin_fetch(self, first_ms: int, last_ms: int) -> None:
        """A fetch of ``due``'s span starts: finals of it that come meanwhile wait for it."""
        if first_ms != self.next_open_ms or last_ms < first_ms:
            raise ValueError(f"{self.symbol} {self.timeframe}: a fetch must start at the next "
                             f"candle owed ({self.next_open_ms}), not {first_ms}")  # fmt: skip
        self.fetching = (first_ms, last_ms)

    def settle(
        self, first_ms: int, last_ms: int, fetched: Iterable[Candle], missing_reason: str
    ) -> list[Candle | CandleGap]:
        """The candles opening ``first_ms``..``last_ms`` (the next owed, a part of the fetch or
        all of it) are answered by ``fetched`` (empty: given up). A candle neither fetched nor
        held from the stream is named in a gap with ``missing_reason``. Returns what to emit."""
        if first_ms != self.next_open_ms or last_ms < first_ms:
            raise ValueError(f"{self.symbol} {self.timeframe}: settle from the next candle "
                             f"owed ({self.next_open_ms}), not {first_ms}")  # fmt: skip
        chosen = {c.open_time_ms: c for c in fetched if first_ms <= c.open_time_ms <= last_ms}
        for opened in [t for t in self._held if first_ms <= t <= last_ms]:
            streamed = self._held.pop(opened)
            if opened in chosen:
                self.duplicates += 1  # fetched and streamed: the fetched copy goes out
            else:
                chosen[opened] = streamed
        out: list[Candle | CandleGap] = []
        cursor = first_ms
        for opened in sorted(chosen):
            if opened > cursor:
                out.append(self._gap(cursor, opened - self.tf_ms, missing_reason))
            out.append(chosen[opened])
            cursor = opened + self.tf_ms
        if cursor <= last_ms:
            out.append(self._gap(cursor, last_ms, missing_reason))
        self.next_open_ms = last_ms + self.tf_ms
        if self.fetching is not None:
            self.fetching = None if self.fetching[1] <= last_ms else (
                self.next_open_ms, self.fetching[1])  # fmt: skip
        self._note_streamed(out)
        return out + self._release()

    @property
    def held(self) -> int:
        return len(self._held)

    def _release(self) -> list[Candle | CandleGap]:
        out: list[Candle | CandleGap] = []
        if self.fetching is not None or self.next_open_ms is None:
            return out
        while (candle := self._held.pop(self.next_open_ms, None)) is not None:
            out.append(candle)
            self.next_open_ms += self.tf_ms
        self._note_streamed(out)
        return out

    def _note_streamed(self, items: list[Candle | CandleGap]) -> None:
        if not self.streamed:
            self.streamed = any(isinstance(i, Candle) and i.source == "stream" for i in items)

    def _gap(self, first_ms: int, last_ms: int, reason: str) -> CandleGap:
        return CandleGap(self.symbol, self.timeframe, first_ms, last_ms, reason)

    def _align_down(self, time_ms: int) -> int:
        return time_ms - (time_ms - bucket_offset_ms(self.tf_ms)) % self.tf_ms

    def _align_up(self, time_ms: int) -> int:
        down = self._align_down(time_ms)
        return down if down == time_ms else down + self.tf_ms
