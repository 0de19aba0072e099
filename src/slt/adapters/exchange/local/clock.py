"""The local exchange's two clocks (issue 13): transport time is the wall clock; market time
is the replayed history.

At speed 1 the history is shifted by whole days so that market time equals the wall clock:
the replay starts on the chosen day at the present time of day, candles keep their prices and
their times move to the present (whole days keep 1d candles and 8-hourly funding on their
boundaries). At speed N market time runs N times as fast from the chosen start, and times on
the wire are the history's own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from slt.domain.timeframes import DAY_MS
from slt.errors import ConfigError


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class ReplayClock:
    """``history_now()`` is the replayed moment; ``to_wire`` / ``from_wire`` convert history
    times to what clients see and back."""

    start_history_ms: int  # the history moment at start_wall_ms
    start_wall_ms: int
    speed: float
    shift_ms: int  # wire time - history time
    wall: Callable[[], int] = wall_ms

    @classmethod
    def start(
        cls, replay_start_ms: int, speed: float, wall: Callable[[], int] = wall_ms
    ) -> ReplayClock:
        if not speed >= 1:
            raise ConfigError(f"--speed must be 1 or more, got {speed:g}")
        now = wall()
        if speed == 1:
            begin = replay_start_ms - replay_start_ms % DAY_MS + now % DAY_MS
            return cls(begin, now, 1.0, now - begin, wall)
        return cls(replay_start_ms, now, speed, 0, wall)

    def history_now(self) -> int:
        return self.start_history_ms + int((self.wall() - self.start_wall_ms) * self.speed)

    def to_wire(self, history_ms: int) -> int:
        return history_ms + self.shift_ms

    def from_wire(self, wire_ms: int) -> int:
        return wire_ms - self.shift_ms
