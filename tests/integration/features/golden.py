"""Golden feature values on real data: each family's values, pinned to its version.

    .venv/bin/python -m tests.integration.features.golden           # compare, say what changed
    .venv/bin/python -m tests.integration.features.golden --write   # regenerate the golden file

The feature matrix of the first 30,000 candles of the catman77 BTCUSDT perpetual 5m file is
split by family: a kernel family owns its base-timeframe columns, the multi-timeframe
composition owns the context columns and the row's validity code. Per family the golden file
keeps its version and parameters, a digest of its values rounded to 40 significant bits (about
12 decimal digits; NaN and infinities told apart), a digest per column, and the raw values at a
few fixed rows for readable diffs. Regenerate it only after bumping the version of every family
whose values changed (or when parameters or the data slice change).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from slt.domain.features.config import FeatureConfig
from slt.domain.features.families import FAMILIES, MULTIFRAME, Family
from slt.domain.features.matrix import FeatureMatrix, compute_features
from slt.domain.features.schema import FeatureSchema
from slt.domain.series import Candles, Market, SeriesKey
from tests.conftest import CATMAN_BTC_5M, SHARED_DATA, real_ohlcv

GOLDEN = Path(__file__).with_name("golden_values.json")
COMMAND = ".venv/bin/python -m tests.integration.features.golden --write"
DATA = CATMAN_BTC_5M
ROWS = 30_000
SAMPLE_ROWS = (18_500, 24_000, ROWS - 1)  # valid rows: daily context warms up by row 18,143
SIGNIFICANT_BITS = 40
REASON = "reason"  # the composition's validity code of each row, pinned with its columns
MAX_DETAILS = 6  # changed columns and sample values named per family

Snapshot = dict[str, Any]


def compute(rows: int = ROWS) -> FeatureMatrix:
    """The feature matrix of the golden slice (skips under pytest when the data is absent)."""
    raw = real_ohlcv(DATA)
    key = SeriesKey("BTCUSDT", Market.FUTURES, "5m")
    columns = (raw.times_ms, raw.open, raw.high, raw.low, raw.close, raw.volume)
    candles = Candles.from_arrays(key, *(c[:rows] for c in columns))
    return compute_features(candles, FeatureConfig.for_timeframe("5m"))


def rounded_digest(values: npt.ArrayLike) -> str:
    """Digest of values rounded to SIGNIFICANT_BITS bits, with NaN, +inf and -inf as classes."""
    v = np.asarray(values, dtype=np.float64).ravel()
    kind = np.zeros(len(v), dtype=np.int8)
    kind[np.isnan(v)] = 1
    kind[v == np.inf] = 2
    kind[v == -np.inf] = 3
    mantissa, exponent = np.frexp(np.where(kind == 0, v, 0.0))  # |mantissa| in [0.5, 1)
    scaled = np.rint(np.ldexp(mantissa, SIGNIFICANT_BITS))
    carry = np.abs(scaled) == 2.0**SIGNIFICANT_BITS  # rounded up to the next power of two
    scaled = np.where(carry, scaled / 2, scaled)
    exponent = exponent + carry
    digest = hashlib.sha256(kind.tobytes())
    digest.update(scaled.astype("<i8").tobytes())
    digest.update(exponent.astype("<i4").tobytes())
    return digest.hexdigest()[:16]


def family_columns(schema: FeatureSchema) -> dict[str, list[str]]:
    """Family -> the matrix columns it owns, in schema order."""
    owner = {column: f.name for f in FAMILIES for column in f.columns}
    owned: dict[str, list[str]] = {f.name: [] for f in FAMILIES}
    for column in schema.columns:
        base = column.timeframe == schema.base_timeframe
        owned[owner[column.source] if base else MULTIFRAME].append(column.name)
    return owned


def _sample(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def snapshot(matrix: FeatureMatrix) -> Snapshot:
    """What the golden file holds for this matrix."""
    schema = matrix.schema
    params = {f["name"]: f["params"] for f in schema.described()["families"]}
    families: dict[str, Any] = {}
    for family, names in family_columns(schema).items():
        values = {name: matrix.column(name) for name in names}
        if family == MULTIFRAME:
            values[REASON] = matrix.reason.astype(np.float64)
        digests = {name: rounded_digest(column) for name, column in values.items()}
        text = "".join(f"{name}:{digest}\n" for name, digest in digests.items())
        declared = _family(family)
        families[family] = {
            "version": declared.version,
            "module": declared.module,
            "params": params[family],
            "digest": hashlib.sha256(text.encode()).hexdigest()[:16],
            "columns": digests,
            "samples": {
                str(row): {name: _sample(column[row]) for name, column in values.items()}
                for row in SAMPLE_ROWS
            },
        }
    return {
        "regenerate": COMMAND,
        "data": {
            "file": DATA.relative_to(SHARED_DATA).as_posix(),
            "rows": len(matrix),
            "first_open_time_ms": int(matrix.open_time_ms[0]),
            "last_open_time_ms": int(matrix.open_time_ms[-1]),
        },
        "families": families,
    }


def _family(name: str) -> Family:
    return next(f for f in FAMILIES if f.name == name)


def module_path(module: str) -> str:
    """'slt.domain.features.fvg_nb' -> 'src/slt/domain/features/fvg_nb.py'."""
    return f"src/{module.replace('.', '/')}.py"


def compare(golden: Snapshot, current: Snapshot) -> list[str]:
    """One message per family whose golden entry no longer holds, saying what to do."""
    if golden.get("data") != current["data"]:
        return [
            f"the golden file was made from other data ({golden.get('data')}; now "
            f"{current['data']}): regenerate it with {COMMAND}"
        ]
    recorded: Mapping[str, Any] = golden.get("families", {})
    problems: list[str] = []
    changed: dict[str, str] = {}  # family -> "parameters" or "values"
    for name in (n for n in recorded if n not in current["families"]):
        problems.append(
            f"the golden file has a family {name} that the feature engine no longer has: "
            f"regenerate it with {COMMAND}"
        )
    for name, now in current["families"].items():
        was = recorded.get(name)
        where = module_path(now["module"])
        if was is None:
            problems.append(
                f"family {name} is not in the golden file: regenerate it with {COMMAND}"
            )
        elif was["params"] != now["params"]:
            changed[name] = "parameters"
            problems.append(
                f"family {name} has other parameters than the golden file records (the schema "
                f"hash covers parameters: no version bump needed): regenerate the golden file "
                f"with {COMMAND}"
            )
        elif was["version"] != now["version"]:
            changed[name] = "values"
            problems.append(
                f"family {name} is version {now['version']} in {where}, the golden file records "
                f"version {was['version']}: regenerate the golden file with {COMMAND}"
            )
        elif was["digest"] != now["digest"]:
            changed[name] = "values"
            problems.append(_values_changed(name, where, was, now, changed) + _details(was, now))
    return problems


def _values_changed(
    name: str, where: str, was: Mapping[str, Any], now: Mapping[str, Any], changed: dict[str, str]
) -> str:
    upstream = [r for r in _family(name).reads if r in changed]
    regenerate = f"regenerate the golden file with {COMMAND}"
    if not upstream:
        return f"family {name} changed values: bump {name}'s version in {where} and {regenerate}"
    which = ", ".join(upstream)
    if all(changed[r] == "parameters" for r in upstream):
        return (
            f"family {name} changed values, and {which}, which it reads, has other parameters: "
            f"if nothing else changed, {regenerate}; if {name}'s own code changed values, bump "
            f"{name}'s version in {where} too"
        )
    return (
        f"family {name} changed values, as did {which}, which it reads: if only {which} "
        f"changed, bumping {which} is enough; if {name}'s own code changed values, bump "
        f"{name}'s version in {where} too; then {regenerate}"
    )


def _details(was: Mapping[str, Any], now: Mapping[str, Any]) -> str:
    columns = [c for c, d in now["columns"].items() if was["columns"].get(c) != d]
    lines = [f"\n  columns whose values changed: {_listed(columns)}"]
    for row, values in now["samples"].items():
        before = was["samples"].get(row, {})
        for column in columns:
            if before.get(column) != values.get(column) and len(lines) <= MAX_DETAILS:
                lines.append(
                    f"\n  row {row} {column}: golden {before.get(column)}, now {values.get(column)}"
                )
    return "".join(lines)


def _listed(names: Sequence[str]) -> str:
    if len(names) <= MAX_DETAILS:
        return ", ".join(names)
    return f"{', '.join(names[:MAX_DETAILS])} and {len(names) - MAX_DETAILS} more"


def load(path: Path = GOLDEN) -> Snapshot:
    golden: Snapshot = json.loads(path.read_text())
    return golden


def write(current: Snapshot, path: Path = GOLDEN) -> None:
    path.write_text(json.dumps(current, indent=1, allow_nan=False) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help="regenerate the golden file")
    args = parser.parse_args(argv)
    if not DATA.is_file():
        print(f"real market data not found at {DATA}", file=sys.stderr)
        return 2
    current = snapshot(compute())
    if args.write:
        write(current)
        versions = ", ".join(f"{n} v{f['version']}" for n, f in current["families"].items())
        print(f"wrote {GOLDEN} ({versions})")
        return 0
    problems = compare(load(), current) if GOLDEN.is_file() else [f"no {GOLDEN}: run {COMMAND}"]
    for problem in problems:
        print(problem)
    if not problems:
        print("every family computes the values its version promises")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
