"""Compiled kernels are cached per kernel source, so an edit to any kernel is never shadowed."""

from __future__ import annotations

from pathlib import Path

from slt.runtime.numba_cache import (
    PACKAGE,
    configure_numba_cache,
    kernel_modules,
    kernel_source_digest,
)


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


def _kernel_reading_a_constant(root: Path, decorator: str, constant: int) -> Path:
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "sub" / "__init__.py").write_text("")
    (root / "pkg" / "sub" / "limits.py").write_text(f"MAX_ORDERS = {constant}\n")
    (root / "pkg" / "step.py").write_text(
        f"from pkg.sub.limits import MAX_ORDERS\n\n{decorator}\ndef f(x):\n"
        "    return x + MAX_ORDERS\n"
    )
    (root / "pkg" / "cli.py").write_text("print('hi')\n")
    return root / "pkg"


def test_a_constant_module_a_kernel_imports_is_part_of_the_key(tmp_path: Path) -> None:
    """numba freezes a global read from another module into the compiled code."""
    one = _kernel_reading_a_constant(tmp_path / "a", "@step_jit", 16)
    two = _kernel_reading_a_constant(tmp_path / "b", "@step_jit", 32)
    assert kernel_source_digest(one) != kernel_source_digest(two)
    assert [str(p) for p in kernel_modules(one)] == ["step.py", "sub/limits.py"]


def test_kernels_under_the_project_s_own_decorators_are_part_of_the_key(tmp_path: Path) -> None:
    for decorator in ("@step_jit", "@inline_jit"):
        package = _kernel_reading_a_constant(tmp_path / decorator[1:], decorator, 16)
        assert Path("step.py") in kernel_modules(package)


def test_every_module_of_the_package_that_compiles_a_kernel_is_keyed() -> None:
    keyed = set(kernel_modules())
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if any(f"@{d}" in text for d in ("njit", "step_jit", "inline_jit")):
            assert path.relative_to(PACKAGE) in keyed, path
    assert Path("engine/records.py") in keyed  # record types and table sizes the kernels read


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
