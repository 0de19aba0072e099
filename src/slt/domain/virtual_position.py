"""An open virtual position as the learner follows it in a paper or live session: what is
stored so that it survives a restart and closes as if the process had never stopped.

A virtual position is decided at a signal candle's close and enters at the next open; until
then it is pending (``entry_price`` None). Once entered, ``exit_state`` holds the exit
kernels' record of it (levels, best price, partial exits so far) by field name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from slt.domain.records import (
    MAX_NAME,
    RecordError,
    check_feature_row,
    check_finite,
    check_millis,
    check_positive,
    check_symbol,
    check_text,
)

F64 = npt.NDArray[np.float64]
ExitState = Mapping[str, int | float]


@dataclass(frozen=True)
class VirtualPositionState:
    """One open (or pending) virtual position; ``(symbol, entry_time_ms)`` names it, as one
    signal per symbol and candle makes at most one."""

    symbol: str
    direction: int
    signal_time_ms: int
    entry_time_ms: int  # the open it enters at: its signal candle's close
    stop_loss_pct: float
    take_profit_pct: float
    confidence: float
    model_version: str
    features: F64
    feature_schema_hash: str
    seen_close_ms: int  # close time of the last candle of its symbol followed (-1: none yet)
    entry_price: float | None = None  # None: pending, waiting for its entry open
    exit_state: ExitState | None = None  # None while pending

    @property
    def key(self) -> tuple[str, int]:
        return (self.symbol, self.entry_time_ms)

    @property
    def pending(self) -> bool:
        return self.entry_price is None


def check_virtual_position(p: VirtualPositionState) -> None:
    """Raise RecordError naming the first bad field."""
    check_symbol(p.symbol)
    if p.direction not in (1, -1):
        raise RecordError(f"direction must be 1 or -1, got {p.direction!r}")
    check_millis("signal_time_ms", p.signal_time_ms)
    check_millis("entry_time_ms", p.entry_time_ms)
    if p.entry_time_ms <= p.signal_time_ms:
        raise RecordError("entry_time_ms must lie after signal_time_ms")
    check_positive("stop_loss_pct", p.stop_loss_pct)
    check_finite("take_profit_pct", p.take_profit_pct)
    check_finite("confidence", p.confidence)
    check_text("model_version", p.model_version, MAX_NAME)
    check_text("feature_schema_hash", p.feature_schema_hash, MAX_NAME)
    check_feature_row(p.features)
    if isinstance(p.seen_close_ms, bool) or not isinstance(p.seen_close_ms, int):
        raise RecordError(f"seen_close_ms must be an integer, got {p.seen_close_ms!r}")
    if (p.entry_price is None) != (p.exit_state is None):
        raise RecordError("entry_price and exit_state are both set (entered) or both None")
    if p.entry_price is not None:
        check_positive("entry_price", p.entry_price)
    for name, value in (p.exit_state or {}).items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RecordError(f"exit_state {name} must be a number, got {value!r}")
        if isinstance(value, float) and math.isinf(value):
            raise RecordError(f"exit_state {name} is infinite")
