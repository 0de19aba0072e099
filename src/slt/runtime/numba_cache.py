"""Where numba keeps compiled kernels, keyed by the source of every kernel module.

numba's own cache notices only edits to the file that defines a function, not to the kernels
it calls from other files, so a stale composed kernel could silently run old code. Keying the
cache directory by a hash of all kernel sources makes any kernel edit start a fresh cache.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import MutableMapping
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]


def kernel_source_digest(package: Path = PACKAGE) -> str:
    """Hash of every module of the package that defines numba kernels."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        text = path.read_bytes()
        if b"@njit" in text or b"@intrinsic" in text:
            digest.update(str(path.relative_to(package)).encode() + b"\0" + text)
    return digest.hexdigest()[:16]


def _cache_root(environ: MutableMapping[str, str]) -> Path:
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "slt" / "numba"


def configure_numba_cache(environ: MutableMapping[str, str] = os.environ) -> str | None:
    """Set NUMBA_CACHE_DIR unless the user chose one; must run before numba is imported."""
    if environ.get("NUMBA_CACHE_DIR"):
        return None
    try:
        folder = _cache_root(environ) / kernel_source_digest()
    except OSError:
        return None  # sources unreadable (e.g. a zipped install): numba's default applies
    environ["NUMBA_CACHE_DIR"] = str(folder)
    return str(folder)
