"""Compiled kernels are cached per kernel source, so an edit to any kernel is never shadowed."""

from __future__ import annotations

from pathlib import Path

from slt.runtime.numba_cache import configure_numba_cache, kernel_source_digest


def _package(root: Path, kernel: str, other: str) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "k_nb.py").write_text(f"@njit(cache=True)\ndef f(x):\n    return {kernel}\n")
    (root / "pkg" / "cli.py").write_text(f"print({other!r})\n")
    return root / "pkg"


def test_the_cache_key_changes_when_any_kernel_module_changes(tmp_path: Path) -> None:
    before = kernel_source_digest(_package(tmp_path / "a", "x + 1", "hi"))
    after = kernel_source_digest(_package(tmp_path / "b", "x + 2", "hi"))
    assert before != after


def test_the_cache_key_ignores_modules_without_kernels(tmp_path: Path) -> None:
    one = kernel_source_digest(_package(tmp_path / "a", "x + 1", "hi"))
    two = kernel_source_digest(_package(tmp_path / "b", "x + 1", "hello"))
    assert one == two


def test_a_cache_dir_chosen_by_the_user_is_kept(tmp_path: Path) -> None:
    environ = {"NUMBA_CACHE_DIR": str(tmp_path / "mine")}
    assert configure_numba_cache(environ) is None
    assert environ["NUMBA_CACHE_DIR"] == str(tmp_path / "mine")


def test_the_default_cache_dir_lives_under_the_user_cache_keyed_by_the_kernels(
    tmp_path: Path,
) -> None:
    environ = {"XDG_CACHE_HOME": str(tmp_path)}
    folder = configure_numba_cache(environ)
    assert folder == str(tmp_path / "slt" / "numba" / kernel_source_digest())
    assert environ["NUMBA_CACHE_DIR"] == folder
