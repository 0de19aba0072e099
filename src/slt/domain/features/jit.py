"""How per-candle kernels are compiled.

The step kernels only read and write arrays they are given. numba's reference counting costs
two atomic operations per array per call and per view, several times the arithmetic of a step
(the family batches ran 3.5-4x slower with it), so they compile without it. ``_nrt`` is
numba's internal flag; should it go, plain ``njit(cache=True)`` gives the same results, slower.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from numba import njit

_F = TypeVar("_F", bound=Callable[..., Any])


def step_jit(fn: _F) -> _F:
    """``njit(cache=True)`` without reference counting; the function must not allocate."""
    return cast(_F, njit(cache=True, _nrt=False)(fn))  # type: ignore[call-overload]


def inline_jit(fn: _F) -> _F:
    """``step_jit`` inlined into its caller at numba's IR level, for helpers cheaper than a
    call. Only for ``step_jit`` callers: inlined into a counting caller, the helper counts."""
    return cast(_F, njit(cache=True, _nrt=False, inline="always")(fn))  # type: ignore[call-overload]
