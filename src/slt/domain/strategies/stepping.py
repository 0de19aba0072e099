"""What every built-in strategy stream shares: the compiled step entry and the candle order.

A stream is fed one closed candle at a time on the live decision path, so the call into the
step kernel is most of its cost. numba's dispatcher works out the argument types on every call
(about as long as the step itself); the compiled entry for fixed types skips that.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slt.domain.features.jit import compiled_entry
from slt.errors import InvalidSeriesError

# Before the first candle any open time is later.
NO_CANDLE_YET_MS = -(2**63)


def compiled_step(kernel: Any, *example_args: object) -> Callable[..., tuple[int, float]]:
    """The machine-code entry of a strategy's step kernel (see ``compiled_entry``)."""
    entry: Callable[..., tuple[int, float]] = compiled_entry(kernel, *example_args)
    return entry


def out_of_order(open_time_ms: int, last_time_ms: int) -> InvalidSeriesError:
    """The error for a candle that is not later than the one before."""
    return InvalidSeriesError(
        f"candle at {open_time_ms} arrived after the candle at {last_time_ms}: "
        "a strategy stream takes each closed candle once, in time order"
    )
