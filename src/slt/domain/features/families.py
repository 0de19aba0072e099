"""The feature families, the version of each family's values, and a schema change in words.

Stored training data and models are tied to a feature schema hash. The hash covers what the
values mean (each family's version and parameters, the columns), never the source code: a
refactor that changes no value keeps every stored example and model usable, and a change of
values bumps its family's ``FAMILY_VERSION``, declared next to the family's kernels. Golden
values on real data (``tests/integration/features/golden.py``) catch a change without a bump.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any, NamedTuple

from slt.domain.features import fvg_nb, indicators_nb, levels_nb, multiframe_nb, structure_nb

MULTIFRAME = "multiframe"


class Family(NamedTuple):
    name: str
    version: int
    module: str  # the module that declares FAMILY_VERSION: where to bump it
    columns: tuple[str, ...]  # the per-timeframe columns it computes (none: the composition)
    reads: tuple[str, ...]  # families whose values its own values depend on


def _declared(
    name: str, module: ModuleType, columns: tuple[str, ...], reads: tuple[str, ...] = ()
) -> Family:
    return Family(name, module.FAMILY_VERSION, module.__name__, columns, reads)


_ATR = ("indicators",)  # structure, gaps and levels measure their distances in its ATR

# In computation order; the composition carries every family's values to the base row.
FAMILIES: tuple[Family, ...] = (
    _declared("indicators", indicators_nb, indicators_nb.INDICATOR_COLUMNS),
    _declared("structure", structure_nb, structure_nb.STRUCTURE_COLUMNS, _ATR),
    _declared("fvg", fvg_nb, fvg_nb.FVG_COLUMNS, _ATR),
    _declared("levels", levels_nb, levels_nb.LEVELS_COLUMNS, _ATR),
    _declared(MULTIFRAME, multiframe_nb, (), ("indicators", "structure", "fvg", "levels")),
)

# What a hash without a stored description is: schemas are registered since families have
# versions, and the hashes before them covered source code, which no description can explain.
UNVERSIONED = "unknown to this version (recorded before feature families were versioned)"
MAX_PARAMETER_CHANGES = 3  # named per family in a change; more are counted


def family_versions(description: Mapping[str, Any]) -> str:
    """'indicators v1, structure v1, ...' of a schema description."""
    return ", ".join(_label(f) for f in description.get("families", ()))


def describe_change(recorded: Mapping[str, Any], running: Mapping[str, Any]) -> str:
    """What differs between two schema descriptions, recorded first: 'fvg v1; running: fvg v2',
    'indicators v1 (5m rsi_period 14); running: indicators v1 (5m rsi_period 15)'."""
    old, new = _differences(recorded, running)
    return f"{', '.join(old)}; running: {', '.join(new)}"


def _label(family: Mapping[str, Any]) -> str:
    return f"{family.get('name')} v{family.get('version')}"


def _differences(
    recorded: Mapping[str, Any], running: Mapping[str, Any]
) -> tuple[list[str], list[str]]:
    if recorded.get("format") != running.get("format"):
        return [f"schema format {recorded.get('format')}"], [f"format {running.get('format')}"]
    if recorded.get("base_timeframe") != running.get("base_timeframe"):
        return (
            [f"base timeframe {recorded.get('base_timeframe')}"],
            [str(running.get("base_timeframe"))],
        )
    was_context, now_context = _context(recorded), _context(running)
    if was_context != now_context:
        return [f"context {was_context or 'none'}"], [f"context {now_context or 'none'}"]
    was = {f.get("name"): f for f in recorded.get("families", ())}
    now = {f.get("name"): f for f in running.get("families", ())}
    old: list[str] = []
    new: list[str] = []
    for name in [*now, *(n for n in was if n not in now)]:
        before, after = was.get(name), now.get(name)
        if before == after:
            continue
        if before is None or after is None:
            old.append(f"no {name}" if before is None else _label(before))
            new.append(f"no {name}" if after is None else _label(after))
        elif before.get("version") != after.get("version"):
            old.append(_label(before))
            new.append(_label(after))
        else:
            was_params, now_params = _parameter_changes(before["params"], after["params"])
            old.append(f"{_label(before)} ({was_params})")
            new.append(f"{_label(after)} ({now_params})")
    if not old:  # the same families: the columns differ
        old.append(f"{len(recorded.get('columns', ()))} other columns")
        new.append(f"{len(running.get('columns', ()))} columns")
    return old, new


def _context(description: Mapping[str, Any]) -> str:
    """The context timeframes, highest first, as the columns list them."""
    base = description.get("base_timeframe")
    found = dict.fromkeys(c[1] for c in description.get("columns", ()) if c[1] != base)
    return ", ".join(found)


def _parameter_changes(recorded: Mapping[str, Any], running: Mapping[str, Any]) -> tuple[str, str]:
    """Per timeframe, the parameters that differ, as recorded and as running."""
    old: list[str] = []
    new: list[str] = []
    for timeframe in [*running, *(t for t in recorded if t not in running)]:
        before, after = recorded.get(timeframe), running.get(timeframe)
        if before is None or after is None:
            old.append(f"no {timeframe}" if before is None else timeframe)
            new.append(f"no {timeframe}" if after is None else timeframe)
        elif isinstance(before, Mapping) and isinstance(after, Mapping):
            for key in [*after, *(k for k in before if k not in after)]:
                if before.get(key) != after.get(key):
                    old.append(f"{timeframe} {key} {_shown(before.get(key))}")
                    new.append(f"{timeframe} {key} {_shown(after.get(key))}")
        elif before != after:
            old.append(f"{timeframe} {_shown(before)}")
            new.append(f"{timeframe} {_shown(after)}")
    return _first(old), _first(new)


def _shown(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, list | tuple):
        return f"[{len(value)} items]"
    return str(value)


def _first(items: list[str]) -> str:
    if len(items) <= MAX_PARAMETER_CHANGES:
        return ", ".join(items)
    shown = ", ".join(items[:MAX_PARAMETER_CHANGES])
    return f"{shown} and {len(items) - MAX_PARAMETER_CHANGES} more"
