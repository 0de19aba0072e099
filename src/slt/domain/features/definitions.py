"""One-line definitions of every timeframe column, read from the kernel modules' docstrings.

Each family documents its columns as ``- name: definition`` lines (names may be listed
together); keeping the text next to the code is what keeps docs and code in step.
"""

from __future__ import annotations

import re
from types import ModuleType

from slt.domain.features import fvg_nb, indicators_nb, levels_nb, structure_nb

_ITEM = re.compile(r"^- ([a-z0-9_]+(?:, [a-z0-9_]+)*): (.+)$")


def parse_definitions(doc: str) -> dict[str, str]:
    """``- a, b: text`` items, continuation lines (indented) joined to their item."""
    found: dict[str, str] = {}
    names: list[str] = []
    for line in doc.splitlines():
        match = _ITEM.match(line)
        if match:
            names = match.group(1).split(", ")
            for name in names:
                found[name] = match.group(2).strip()
        elif names and line.startswith("  ") and line.strip():
            for name in names:
                found[name] += " " + line.strip()
        else:
            names = []
    return found


def _collect(modules: tuple[ModuleType, ...]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for module in modules:
        merged.update(parse_definitions(module.__doc__ or ""))
    return merged


DEFINITIONS = _collect((indicators_nb, structure_nb, fvg_nb, levels_nb))


def definition(column: str) -> str:
    try:
        return DEFINITIONS[column]
    except KeyError:
        raise KeyError(
            f"feature column {column!r} has no definition in its module docstring"
        ) from None
