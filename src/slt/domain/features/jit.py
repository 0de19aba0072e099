"""How per-candle kernels are compiled.

The step kernels only read and write arrays they are given. numba's reference counting costs
two atomic operations per array per call and per view, several times the arithmetic of a step
(the family batches ran 3.5-4x slower with it), so they compile without it. ``_nrt`` is
numba's internal flag; should it go, plain ``njit(cache=True)`` gives the same results, slower.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from numba import njit, typeof

_F = TypeVar("_F", bound=Callable[..., Any])


def step_jit(fn: _F) -> _F:
    """``njit(cache=True)`` without reference counting; the function must not allocate."""
    return cast(_F, njit(cache=True, _nrt=False)(fn))  # type: ignore[call-overload]


def inline_jit(fn: _F) -> _F:
    """``step_jit`` inlined into its caller at numba's IR level, for helpers cheaper than a
    call. Only for ``step_jit`` callers: inlined into a counting caller, the helper counts."""
    return cast(_F, njit(cache=True, _nrt=False, inline="always")(fn))  # type: ignore[call-overload]


def compiled_entry(kernel: Any, *example_args: object) -> Callable[..., Any]:
    """The machine-code entry of the numba ``kernel`` for the types of ``example_args``.

    Hot paths called from Python (one candle, one event) pay numba's choice of types on every
    call, for NamedTuples of arrays more than the kernel itself; the entry skips it. It coerces
    what it is given to these types, so callers pass the same kinds of values (float64 arrays,
    Python floats and ints, the same NamedTuples). Falls back to the dispatcher if numba no
    longer exposes the entry.
    """
    signature = tuple(typeof(arg) for arg in example_args)  # type: ignore[no-untyped-call]
    kernel.compile(signature)
    compiled = getattr(kernel, "overloads", {}).get(signature)
    entry: Callable[..., Any] | None = getattr(compiled, "entry_point", None)
    return entry if entry is not None else cast(Callable[..., Any], kernel)
