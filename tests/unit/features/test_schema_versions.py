"""The schema hash is a function of declared versions and parameters, never of source code."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from slt.domain.features.config import FeatureConfig
from slt.domain.features.families import FAMILIES, describe_change, family_versions
from slt.domain.features.schema import build_schema, schema_for, schema_hash
from slt.domain.features.timeframe_nb import TF_COLUMNS

SRC = Path(__file__).resolve().parents[3] / "src"
FIVE_MINUTE = FeatureConfig.for_timeframe("5m")
TIMEFRAMES = ("1m", "5m", "1h")


def _bumped(name: str) -> tuple:  # type: ignore[type-arg]
    return tuple(f._replace(version=f.version + 1) if f.name == name else f for f in FAMILIES)


def test_the_schema_hash_is_the_hash_of_the_declared_description_alone() -> None:
    schema = build_schema(FIVE_MINUTE)
    described = schema.described()
    assert set(described) == {"format", "base_timeframe", "families", "columns"}
    assert [(f["name"], f["version"]) for f in described["families"]] == [
        (f.name, f.version) for f in FAMILIES
    ]
    assert all(set(f) == {"name", "version", "params"} for f in described["families"])
    indicators = described["families"][0]["params"]
    assert set(indicators) == {"5m", "15m", "1h", "1d"}
    assert indicators["1h"] == FIVE_MINUTE.context[1].indicators._asdict()
    assert [c[0] for c in described["columns"]] == list(schema.names)
    assert schema_hash(json.loads(json.dumps(described))) == schema.hash


def test_bumping_one_family_version_changes_the_hash_and_says_which_family() -> None:
    running = build_schema(FIVE_MINUTE)
    fvg = next(f for f in FAMILIES if f.name == "fvg")
    bumped = schema_for(FIVE_MINUTE, _bumped("fvg"))
    assert bumped.hash != running.hash
    assert bumped.columns == running.columns
    assert describe_change(running.described(), bumped.described()) == (
        f"fvg v{fvg.version}; running: fvg v{fvg.version + 1}"
    )


def test_every_family_version_is_in_the_hash() -> None:
    hashes = {schema_for(FIVE_MINUTE, _bumped(f.name)).hash for f in FAMILIES}
    assert len(hashes) == len(FAMILIES)
    assert build_schema(FIVE_MINUTE).hash not in hashes


def test_a_parameter_change_is_told_with_its_timeframe_and_both_values() -> None:
    base = FIVE_MINUTE.base
    changed = FeatureConfig(
        base=type(base)(
            base.timeframe, base.indicators._replace(rsi_period=base.indicators.rsi_period + 1),
            base.structure, base.fvg, base.levels,
        ),
        context=FIVE_MINUTE.context,
    )  # fmt: skip
    was, now = build_schema(FIVE_MINUTE), build_schema(changed)
    version = dict(was.families)["indicators"]
    period = base.indicators.rsi_period
    assert describe_change(was.described(), now.described()) == (
        f"indicators v{version} (5m rsi_period {period}); "
        f"running: indicators v{version} (5m rsi_period {period + 1})"
    )


def test_other_context_timeframes_are_told_as_such() -> None:
    was = build_schema(FeatureConfig.for_timeframe("5m", context=("1h",)))
    now = build_schema(FIVE_MINUTE)
    assert describe_change(was.described(), now.described()) == (
        "context 1h; running: context 1d, 1h, 15m"
    )


def test_the_schema_names_its_families_in_words() -> None:
    schema = build_schema(FIVE_MINUTE)
    words = ", ".join(f"{f.name} v{f.version}" for f in FAMILIES)
    assert schema.family_versions() == words == family_versions(schema.described())


def test_the_kernel_families_compute_exactly_the_columns_of_a_timeframe() -> None:
    assert tuple(c for f in FAMILIES for c in f.columns) == TF_COLUMNS


def _rename_a_local_variable(source: str) -> str:
    """The source with one local variable of its first function that has one renamed, in
    place: every other character stays as it was."""
    tree = ast.parse(source)
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef):
            continue
        arguments = {a.arg for a in ast.walk(function.args) if isinstance(a, ast.arg)}
        stored = [
            n.id
            for n in ast.walk(function)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store) and n.id not in arguments
        ]
        if stored:
            uses = [n for n in ast.walk(function) if isinstance(n, ast.Name) and n.id == stored[0]]
            lines = source.splitlines(keepends=True)
            for node in sorted(uses, key=lambda n: (n.lineno, n.col_offset), reverse=True):
                line = lines[node.lineno - 1]
                end = node.end_col_offset
                lines[node.lineno - 1] = f"{line[: node.col_offset]}renamed_{stored[0]}{line[end:]}"
            return "".join(lines)
    raise AssertionError("no function with a local variable")


def test_renaming_a_local_variable_in_every_kernel_module_keeps_the_schema_hash(
    tmp_path: Path,
) -> None:
    copy = tmp_path / "src"
    shutil.copytree(SRC / "slt", copy / "slt", ignore=shutil.ignore_patterns("__pycache__"))
    kernels = sorted((copy / "slt" / "domain" / "features").glob("*_nb.py"))
    assert len(kernels) >= 9
    for path in kernels:
        original = path.read_text()
        edited = _rename_a_local_variable(original)
        assert ast.dump(ast.parse(edited)) != ast.dump(ast.parse(original)), path.name
        path.write_text(edited)
    script = (
        "import json, slt\n"
        "from slt.domain.features.config import FeatureConfig as C\n"
        "from slt.domain.features.schema import build_schema\n"
        f"hashes = {{tf: build_schema(C.for_timeframe(tf)).hash for tf in {TIMEFRAMES}}}\n"
        "print(json.dumps({'file': slt.__file__, 'hashes': hashes}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(copy), "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert Path(found["file"]).is_relative_to(copy)
    assert found["hashes"] == {
        tf: build_schema(FeatureConfig.for_timeframe(tf)).hash for tf in TIMEFRAMES
    }


def test_a_family_the_recorded_schema_did_not_have_is_told_as_new() -> None:
    running = build_schema(FIVE_MINUTE).described()
    recorded = {**running, "families": running["families"][:-1]}
    last = FAMILIES[-1]
    assert describe_change(recorded, running) == (
        f"no {last.name}; running: {last.name} v{last.version}"
    )


def test_another_base_timeframe_or_description_format_is_told_first() -> None:
    hourly = build_schema(FeatureConfig.for_timeframe("1h")).described()
    running = build_schema(FIVE_MINUTE).described()
    assert describe_change(hourly, running) == "base timeframe 1h; running: 5m"
    future = {**running, "format": running["format"] + 1}
    assert describe_change(future, running) == (
        f"schema format {running['format'] + 1}; running: format {running['format']}"
    )
