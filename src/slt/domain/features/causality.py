"""Proof that features do not look ahead, by recomputing them on shorter histories.

Prefix check: the row of candle t computed from candles [0..t] must equal, bit for bit, the row
of t computed from the whole series. Warm-up check: the row of candle t computed from candles
[s..] must equal the full run once t is past s plus the declared warm-up (within a tolerance
for values with exponentially fading memory). Both take the computation as a function, so they
check any feature code, including a user's own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from slt.domain.series import F64

# compute(start, stop) -> feature rows of candles[start:stop], shape (stop - start, columns)
Compute = Callable[[int, int], F64]


@dataclass(frozen=True)
class Violation:
    check: str  # "prefix" or "warm-up"
    column: str
    row: int
    full: float
    partial: float

    def __str__(self) -> str:
        return (
            f"{self.check}: column {self.column} at row {self.row} is {self.partial!r} from the "
            f"shorter history but {self.full!r} from the whole series"
        )


def _differences(full: F64, partial: F64, rtol: float, atol: float) -> np.ndarray:
    both_nan = np.isnan(full) & np.isnan(partial)
    if rtol == 0.0 and atol == 0.0:
        same = (full == partial) | both_nan
    else:
        close = np.abs(full - partial) <= atol + rtol * np.abs(full)
        same = close | both_nan
    return np.flatnonzero(~same)


def prefix_violations(
    compute: Compute, full: F64, rows: Sequence[int], names: Sequence[str]
) -> list[Violation]:
    """Row t from candles [0..t] against row t of ``full`` (the whole-series run), exactly."""
    found = []
    for t in rows:
        partial = compute(0, t + 1)[t]
        for k in _differences(full[t], partial, 0.0, 0.0):
            found.append(Violation("prefix", names[k], t, float(full[t, k]), float(partial[k])))
    return found


def warmup_violations(
    compute: Compute,
    full: F64,
    starts: Sequence[int],
    warmups: Sequence[int],
    names: Sequence[str],
    rtol: float = 1e-9,
    atol: float = 1e-9,
) -> list[Violation]:
    """Rows from candles [s..] against ``full`` for every row at or past s + warm-up(column)."""
    found = []
    warm = np.asarray(warmups, dtype=np.int64)
    for s in starts:
        partial = compute(s, len(full))
        for k, name in enumerate(names):
            first = s + int(warm[k])
            if first >= len(full):
                continue
            bad = _differences(full[first:, k], partial[first - s :, k], rtol, atol)
            for r in bad[:5]:
                t = first + int(r)
                found.append(
                    Violation("warm-up", name, t, float(full[t, k]), float(partial[t - s, k]))
                )
    return found
