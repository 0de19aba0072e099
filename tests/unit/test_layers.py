"""Imports point down the layers of DESIGN.md: domain, learning, engine, adapters, runtime, cli."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "slt"
ORDER = ["domain", "learning", "engine", "adapters", "runtime", "api", "cli"]
LEAVES = {"errors", "__init__", "__main__"}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) < 2 or parts[0] != "slt":
        return None
    return parts[1] if parts[1] in ORDER else None


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_no_module_imports_from_a_higher_layer() -> None:
    violations = []
    for path in SRC.rglob("*.py"):
        own = path.relative_to(SRC).parts[0].removesuffix(".py")
        if own in LEAVES:
            continue
        rank = ORDER.index(own)
        for module in _imports(path):
            target = _layer(module)
            if target in ("api", "cli") and own in ("api", "cli"):
                continue
            if target is not None and ORDER.index(target) > rank:
                violations.append(f"{path.relative_to(SRC)} imports {module}")
    assert violations == []


def test_domain_code_does_no_io_imports() -> None:
    banned = {"pyarrow", "ccxt", "structlog", "typer", "rich", "os", "pathlib", "socket"}
    offenders = [
        f"{p.relative_to(SRC)}: {m}"
        for p in (SRC / "domain").rglob("*.py")
        for m in _imports(p)
        if m.split(".")[0] in banned
    ]
    assert offenders == []
