"""Imports follow DESIGN.md's table of layers, read from DESIGN.md itself.

Each row of the table names a layer and what it may import: lower layers by name, "engine
ports and types" (the engine's ``ports`` and ``messages`` modules), "everything below", and
third-party libraries. Libraries a lower layer may use are allowed above it; the standard
library and the leaf ``slt.errors`` are allowed everywhere; adapters, runtime and the CLI are
the edges and may use any library. Every module is checked, package ``__init__`` files
included; ``slt/__init__.py`` may import only leaves.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "slt"
DESIGN = ROOT.parent / "shared" / "DESIGN.md"
LEAVES = {"slt", "slt.errors"}
ENGINE_PORTS_AND_TYPES = {"slt.engine.ports", "slt.engine.messages"}
EDGES = {"adapters", "runtime", "cli"}  # may use any third-party library
DISTRIBUTIONS = {"scikit-learn": "sklearn"}  # names in the table -> import names


def design_table() -> list[tuple[str, str]]:
    """(layer, may import) rows of DESIGN.md's layer table, in order, lowest first."""
    if not DESIGN.is_file():
        pytest.skip(f"DESIGN.md not found at {DESIGN}")
    rows = []
    for line in DESIGN.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"`\w+`", cells[0]):
            rows.append((cells[0].strip("`"), cells[2]))
    return rows


class Rules:
    def __init__(self, rows: list[tuple[str, str]]) -> None:
        self.order = [layer for layer, _ in rows]
        self.internal: dict[str, set[str]] = {}
        self.libraries: dict[str, set[str]] = {}
        inherited: set[str] = set()
        for rank, (layer, text) in enumerate(rows):
            parts = {p.strip() for p in text.split(",")}
            below = set(self.order[:rank])
            allowed: set[str] = set()
            libraries = set(inherited)
            for part in parts:
                if part == "everything below":
                    allowed |= below
                elif part == "engine ports and types":
                    allowed.add("engine:ports-and-types")
                elif part in self.order:
                    allowed.add(part)
                else:
                    libraries.add(DISTRIBUTIONS.get(part, part))
            self.internal[layer] = allowed
            self.libraries[layer] = libraries
            inherited = libraries

    def problem(self, layer: str, module: str) -> str | None:
        """Why ``layer`` may not import ``module`` (None if it may)."""
        top = module.split(".")[0]
        if module in LEAVES or top in sys.stdlib_module_names or top == "__future__":
            return None
        if top != "slt":
            if layer in EDGES or top in self.libraries[layer]:
                return None
            return f"third-party {top} is not in the table's row for {layer}"
        target = module.split(".")[1]
        if target == layer:
            return None
        if target not in self.order:
            return f"{module} belongs to no layer of the table"
        allowed = self.internal[layer]
        if target in allowed:
            return None
        if target == "engine" and "engine:ports-and-types" in allowed:
            if any(module == m or module.startswith(m + ".") for m in ENGINE_PORTS_AND_TYPES):
                return None
            return f"{layer} may import only the engine's ports and types, not {module}"
        return f"{layer} may not import {target}"


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _layer_of(path: Path) -> str | None:
    parts = path.relative_to(SRC).parts
    return parts[0] if len(parts) > 1 else None


def test_the_table_names_the_six_layers_in_order() -> None:
    layers = [layer for layer, _ in design_table()]
    assert layers == ["domain", "learning", "engine", "adapters", "runtime", "cli"]


def test_every_module_imports_only_what_its_row_of_the_table_allows() -> None:
    rules = Rules(design_table())
    violations = []
    for path in sorted(SRC.rglob("*.py")):
        if "migrations" in path.parts:
            continue  # Alembic's scripts run under Alembic, inside the adapters
        layer = _layer_of(path)
        if layer is None:
            continue
        assert layer in rules.order, f"{path.relative_to(SRC)} is in no layer of the table"
        for module in _imports(path):
            problem = rules.problem(layer, module)
            if problem:
                violations.append(f"{path.relative_to(SRC)}: {problem}")
    assert violations == []


def test_the_package_itself_imports_only_leaves() -> None:
    """Importing ``slt`` runs no runtime code (it once configured numba's cache)."""
    top_level = [p for p in SRC.glob("*.py") if p.name not in ("__main__.py",)]
    offenders = [
        f"{p.name}: {m}"
        for p in top_level
        for m in _imports(p)
        if m.startswith("slt") and m not in LEAVES
    ]
    assert offenders == []


def test_the_rules_refuse_what_the_table_forbids() -> None:
    rules = Rules(design_table())
    assert rules.problem("domain", "pydantic") is not None
    assert rules.problem("domain", "slt.engine.book") is not None
    assert rules.problem("adapters", "slt.engine.backtest") is not None
    assert rules.problem("adapters", "slt.learning.scoring") is not None
    assert rules.problem("engine", "slt.runtime.config") is not None
    assert rules.problem("learning", "sklearn.isotonic") is None
    assert rules.problem("adapters", "slt.engine.messages") is None
    assert rules.problem("cli", "slt.runtime.bootstrap") is None


def test_domain_code_does_no_io_imports() -> None:
    banned = {"pyarrow", "ccxt", "structlog", "typer", "rich", "os", "pathlib", "socket"}
    offenders = [
        f"{p.relative_to(SRC)}: {m}"
        for p in (SRC / "domain").rglob("*.py")
        for m in _imports(p)
        if m.split(".")[0] in banned
    ]
    assert offenders == []
