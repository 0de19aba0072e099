"""What interval a file really holds, read from its timestamps rather than its name."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from slt.domain.series import I64

# Real exchange outages in 1m data repeat a gap length at most 4 times in a row (measured on
# the holey 1m files of ../shared/data); a different step held for this many consecutive rows
# means a second timeframe is mixed into the file.
MIXED_RUN_LENGTH = 12


@dataclass(frozen=True)
class IntervalReading:
    interval_ms: int
    mixed_with_ms: int | None  # another interval held for MIXED_RUN_LENGTH rows, if any
    off_grid: int  # steps that are not whole multiples of the interval


def read_interval(times_ms: I64) -> IntervalReading | None:
    """The most common step between sorted unique times; None when fewer than two rows."""
    steps = np.diff(times_ms)
    steps = steps[steps > 0]
    if len(steps) == 0:
        return None
    values, counts = np.unique(steps, return_counts=True)
    interval = int(values[counts.argmax()])
    other = steps != interval
    mixed: int | None = None
    if other.any():
        # Lengths of runs of identical non-interval steps.
        change = np.flatnonzero(np.diff(steps) != 0) + 1
        starts = np.concatenate(([0], change))
        lengths = np.diff(np.concatenate((starts, [len(steps)])))
        long_runs = (lengths >= MIXED_RUN_LENGTH) & other[starts]
        if long_runs.any():
            mixed = int(steps[starts[np.flatnonzero(long_runs)[0]]])
    off_grid = int(np.count_nonzero(steps % interval))
    return IntervalReading(interval, mixed, off_grid)


def round_to_minute(times_ms: I64) -> I64:
    """Funding settlements are stamped with a few ms of jitter; the minute is the real time."""
    return np.ascontiguousarray((times_ms + 30_000) // 60_000 * 60_000, dtype=np.int64)
