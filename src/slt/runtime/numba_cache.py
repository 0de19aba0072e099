"""Where numba keeps compiled kernels, keyed by the source the kernels are built from.

numba's own cache notices only edits to the file that defines a function: not to the kernels
it calls from other files, nor to the constants and record types it reads from other modules,
so a stale composed kernel could silently run old code. Keying the cache directory by a hash
of every module that defines a kernel, and of every module of the package those import, makes
any such edit start a fresh cache.
"""

from __future__ import annotations

import ast
import hashlib
import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]

# Text that marks a module whose functions numba compiles (or that extends numba).
_COMPILED_MARKS = (b"@njit", b"@step_jit", b"@inline_jit", b"@intrinsic", b"@overload", b"@jit")


def kernel_modules(package: Path = PACKAGE) -> list[Path]:
    """Every module that defines a kernel, and every module of the package they import,
    directly or not (record types, constants, parameter tuples), relative to ``package``."""
    files = {path.relative_to(package): path for path in package.rglob("*.py")}
    pending = [rel for rel, path in files.items() if _compiles(path.read_bytes())]
    seen: set[Path] = set()
    while pending:
        rel = pending.pop()
        if rel in seen:
            continue
        seen.add(rel)
        for dotted in _imports_within(files[rel], package.name):
            for candidate in _module_files(dotted):
                if candidate in files and candidate not in seen:
                    pending.append(candidate)
    return sorted(seen)


def kernel_source_digest(package: Path = PACKAGE) -> str:
    """Hash of the modules ``kernel_modules`` finds."""
    digest = hashlib.sha256()
    for rel in kernel_modules(package):
        digest.update(str(rel).encode() + b"\0" + (package / rel).read_bytes())
    return digest.hexdigest()[:16]


def _compiles(text: bytes) -> bool:
    return any(mark in text for mark in _COMPILED_MARKS)


def _imports_within(path: Path, package_name: str) -> list[str]:
    """Dotted names, below the package, that ``path`` imports (``from a.b import c`` gives
    both ``a.b`` and ``a.b.c``: ``c`` may be a module)."""
    try:
        tree = ast.parse(path.read_bytes())
    except SyntaxError:
        return []
    prefix = package_name + "."
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return [name[len(prefix) :] for name in names if name.startswith(prefix)]


def _module_files(dotted: str) -> tuple[Path, Path]:
    parts = dotted.split(".")
    return Path(*parts).with_suffix(".py"), Path(*parts, "__init__.py")


def _cache_root(environ: MutableMapping[str, str]) -> Path:
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "slt" / "numba"


def configure_numba_cache(environ: MutableMapping[str, str] = os.environ) -> str | None:
    """Set NUMBA_CACHE_DIR unless the user chose one; must run before any kernel module is
    imported (numba itself may already be). Entry points call it: the CLI, the tests, the
    benchmarks."""
    if environ.get("NUMBA_CACHE_DIR"):
        return None
    try:
        folder = _cache_root(environ) / kernel_source_digest()
    except OSError:
        return None  # sources unreadable (e.g. a zipped install): numba's default applies
    environ["NUMBA_CACHE_DIR"] = str(folder)
    numba = sys.modules.get("numba")
    if numba is not None and environ is os.environ:
        numba.core.config.reload_config()  # imported already: make it read the variable again
    return str(folder)
