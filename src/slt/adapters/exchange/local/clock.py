"""The local exchange's two clocks (issue 13): transport time is the wall clock; market time
is the replayed history.

At speed 1 the history is shifted by whole days so that market time equals the wall clock:
the replay starts on the chosen day at the present time of day, candles keep their prices and
their times move to the present (whole days keep 1d candles and 8-hourly funding on their
boundaries). At speed N market time runs N times as fast from the chosen start, and times on
the wire are the history's own; it waits at the start until the first client comes. At
``--speed max`` (``math.inf``) market time stands still until the server moves it
(``move_to``): one candle at a time, when clients have gone quiet.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from slt.domain.timeframes import DAY_MS
from slt.errors import ConfigError


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class ReplayClock:
    """``history_now()`` is the replayed moment; ``to_wire`` / ``from_wire`` convert history
    times to what clients see and back."""

    start_history_ms: int  # the history moment at start_wall_ms
    start_wall_ms: int
    speed: float
    shift_ms: int  # wire time - history time
    wall: Callable[[], int] = wall_ms
    _moved_ms: int = 0  # ``--speed max``: the moment the server moved the market to
    # Speed N > 1: market time waits at the start until the first client arrives, so a bot
    # that is slow to start (compiling its kernels) misses nothing of the replay.
    awaiting_client: bool = False

    @classmethod
    def start(
        cls, replay_start_ms: int, speed: float, wall: Callable[[], int] = wall_ms
    ) -> ReplayClock:
        if not speed >= 1:
            raise ConfigError(f"--speed must be 1 or more, or max, got {speed:g}")
        now = wall()
        if math.isinf(speed):
            return cls(replay_start_ms, now, speed, 0, wall, replay_start_ms)
        if speed == 1:
            begin = replay_start_ms - replay_start_ms % DAY_MS + now % DAY_MS
            return cls(begin, now, 1.0, now - begin, wall)
        return cls(replay_start_ms, now, speed, 0, wall, awaiting_client=True)

    def hold(self) -> None:
        """Speed N: no client yet, so the replay has not started; it starts from now."""
        self.start_wall_ms = self.wall()

    @property
    def is_max(self) -> bool:
        return math.isinf(self.speed)

    def history_now(self) -> int:
        if self.is_max:
            return self._moved_ms
        return self.start_history_ms + int((self.wall() - self.start_wall_ms) * self.speed)

    def move_to(self, history_ms: int) -> None:
        """``--speed max``: the market moves on to ``history_ms`` (never back)."""
        if not self.is_max:
            raise ValueError("only a --speed max clock is moved by hand")
        self._moved_ms = max(self._moved_ms, history_ms)

    def to_wire(self, history_ms: int) -> int:
        return history_ms + self.shift_ms

    def from_wire(self, wire_ms: int) -> int:
        return wire_ms - self.shift_ms
