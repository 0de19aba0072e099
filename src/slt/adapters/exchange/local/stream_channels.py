"""The market streams the local exchange pushes, one channel per stream name, shared by every
connection subscribed to it (reference §6).

``<symbol>@kline_<interval>``: while a candle forms, an update whenever it changed (at most
one per push period, the first of each candle at once); then its final (``"x": true``) exactly
once, in order, none skipped: a late timer sends every final that closed since, oldest first,
each preceded by the candle as it looked at its open if it never had an update.
``<symbol>@markPrice`` and ``@markPrice@1s``: every 3 s / 1 s of wall time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from slt.adapters.exchange.local import stream_frames
from slt.adapters.exchange.local.market import Row, SymbolTape
from slt.domain.timeframes import bucket_offset_ms
from slt.errors import ExchangeRejected

_KLINE = re.compile(r"^([a-z0-9]+)@kline_([0-9]+[smhdwM])$")
_MARK_PRICE = re.compile(r"^([a-z0-9]+)@markPrice(@1s)?$")


@dataclass
class KlineChannel:
    """One symbol's candles of one interval; ``due`` returns the payloads (JSON) to push."""

    tape: SymbolTape
    interval: str
    length_ms: int
    next_final_open_ms: int  # the open time of the next candle whose final is owed
    fine_ms: int  # the length of the finest stored candles
    announced_open_ms: int = -1  # the candle that last had an update
    last_forming: Row | None = None
    last_forming_wall_ms: int = 0
    snapshot: str | None = None  # the latest update, for connections that just subscribed
    # Where the market stood when the forming candle was last looked at: (its open, finest
    # candles begun, the latest of them closed). The candle cannot change while this does not.
    _looked_at: tuple[int, int, bool] | None = field(default=None, repr=False)

    @classmethod
    def start(cls, tape: SymbolTape, interval: str, now_ms: int) -> KlineChannel:
        """Finals are owed from the candle in progress at ``now_ms`` on."""
        length = tape.interval_ms(interval)
        fine_ms = tape.candles.key.timeframe_ms
        return cls(tape, interval, length, _candle_open(now_ms, length), fine_ms)

    @property
    def next_close_ms(self) -> int:
        """When the next final is due (history time)."""
        return self.next_final_open_ms + self.length_ms

    def due(self, now_ms: int, wall_ms: int, push_ms: int, shift_ms: int) -> list[str]:
        """``finals`` then ``update``."""
        return self.finals(now_ms, shift_ms) + self.update(now_ms, wall_ms, push_ms, shift_ms)

    def finals(self, now_ms: int, shift_ms: int) -> list[str]:
        """The finals of the candles closed by ``now_ms`` and not sent yet, oldest first."""
        if self.next_final_open_ms + self.length_ms > now_ms:
            return []
        out: list[str] = []
        for row in self.tape.closed_klines(self.interval, self.next_final_open_ms, now_ms):
            t = row[0]
            if self.announced_open_ms != t:
                opening = self.tape.forming(self.length_ms, t)
                if opening is not None:
                    out.append(self._event(opening, False, t, shift_ms))
            out.append(self._event(row, True, t + self.length_ms, shift_ms))
            self.announced_open_ms = t
            self.next_final_open_ms = t + self.length_ms
        # Every candle before the one in progress has had its final, or never existed (a hole
        # in the data): the next final owed is the current candle's.
        self.next_final_open_ms = max(self.next_final_open_ms, _candle_open(now_ms, self.length_ms))
        return out

    def update(self, now_ms: int, wall_ms: int, push_ms: int, shift_ms: int) -> list[str]:
        """The candle in progress, if it changed (after ``finals`` of the same moment)."""
        out: list[str] = []
        begin = _candle_open(now_ms, self.length_ms)
        fine = self.tape.candles
        begun = int(fine.open_time_ms.searchsorted(now_ms, "right"))
        settled = begun > 0 and int(fine.open_time_ms[begun - 1]) + self.fine_ms <= now_ms
        looked_at = (begin, begun, settled)
        if looked_at == self._looked_at:
            return out
        forming = self.tape.forming(self.length_ms, now_ms)
        if forming is None or forming == self.last_forming:
            self._looked_at = looked_at
        elif forming[0] != self.announced_open_ms or (
            wall_ms - self.last_forming_wall_ms >= push_ms
        ):
            self.snapshot = self._event(forming, False, now_ms, shift_ms)
            out.append(self.snapshot)
            self.last_forming = forming
            self.announced_open_ms = forming[0]
            self.last_forming_wall_ms = wall_ms
            self._looked_at = looked_at
        # else: changed within the push period; it goes out at a later tick
        return out

    def _event(self, row: Row, closed: bool, event_ms: int, shift_ms: int) -> str:
        return stream_frames.kline_event_json(
            self.tape, self.interval, self.length_ms, row, closed, event_ms, shift_ms
        )


@dataclass
class MarkPriceChannel:
    """One symbol's mark price every ``period_ms`` of wall time, the first at once."""

    tape: SymbolTape
    period_ms: int
    next_due_wall_ms: int = 0
    snapshot: str | None = field(default=None, init=False)  # never replayed to newcomers

    def due(self, now_ms: int, wall_ms: int, push_ms: int, shift_ms: int) -> list[str]:
        return self.update(now_ms, wall_ms, push_ms, shift_ms)

    def finals(self, now_ms: int, shift_ms: int) -> list[str]:
        return []

    def update(self, now_ms: int, wall_ms: int, push_ms: int, shift_ms: int) -> list[str]:
        if wall_ms < self.next_due_wall_ms:
            return []
        self.next_due_wall_ms += self.period_ms
        if self.next_due_wall_ms <= wall_ms:  # a period or more behind: start afresh
            self.next_due_wall_ms = wall_ms + self.period_ms
        return [stream_frames.dump(stream_frames.mark_price_event(self.tape, now_ms, shift_ms))]


Channel = KlineChannel | MarkPriceChannel


def _candle_open(now_ms: int, length_ms: int) -> int:
    return now_ms - (now_ms - bucket_offset_ms(length_ms)) % length_ms


def open_channel(
    name: str, tapes: dict[str, SymbolTape], now_ms: int, mark_price_ms: int,
    mark_price_fast_ms: int,
) -> Channel | None:  # fmt: skip
    """The channel of stream ``name``; None for a name the exchange does not push (an unknown
    symbol or stream type, an interval finer than the stored candles)."""
    kline = _KLINE.match(name)
    if kline:
        tape = tapes.get(kline.group(1).upper())
        if tape is None:
            return None
        try:
            return KlineChannel.start(tape, kline.group(2), now_ms)
        except ExchangeRejected:  # -1120: an interval this tape cannot give
            return None
    mark = _MARK_PRICE.match(name)
    if mark:
        tape = tapes.get(mark.group(1).upper())
        if tape is None:
            return None
        return MarkPriceChannel(tape, mark_price_fast_ms if mark.group(2) else mark_price_ms)
    return None
