"""One way to run a process's event loop: uvloop where it is installed (the seed system ran on
it; it is faster at sockets), the standard loop otherwise."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_name() -> str:
    return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"


def run_async(main: Coroutine[Any, Any, T]) -> T:
    if loop_name() == "uvloop":
        import uvloop  # type: ignore[import-not-found,unused-ignore]

        result: T = uvloop.run(main)
        return result
    return asyncio.run(main)
