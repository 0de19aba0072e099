#!/usr/bin/env python3
"""Set everything up, then run the demo or the whole test suite. Needs only Python 3.11+.

python3 bootstrap.py demo   # create .venv, install, run `slt demo` on embedded defaults
python3 bootstrap.py test   # create .venv, install with dev tools, run ruff, mypy, pytest
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def run(*args: str | Path) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    code = subprocess.call([str(a) for a in args], cwd=ROOT)
    if code != 0:
        sys.exit(code)


def ensure_environment(extras: str) -> None:
    """Create the venv and install the project; skipped when pyproject.toml has not changed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this script runs before the venv exists
        sys.exit(f"Python 3.11 or newer is needed, this is {sys.version.split()[0]}")
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    stamp = VENV / f".installed-{extras or 'base'}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    target = f".[{extras}]" if extras else "."
    run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", target)
    stamp.write_text(digest)


def demo() -> None:
    ensure_environment("")
    run(BIN / "slt", "demo")


def test() -> None:
    ensure_environment("dev")
    run(BIN / "ruff", "check", "src", "tests", "benchmarks", "bootstrap.py")
    run(BIN / "ruff", "format", "--check", "src", "tests", "benchmarks", "bootstrap.py")
    run(BIN / "mypy")
    workers = "2" if (os.cpu_count() or 1) >= 2 else "1"
    run(BIN / "python", "-m", "pytest", "-n", workers, "-q", *sys.argv[2:])


if __name__ == "__main__":
    commands = {"demo": demo, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]]()
