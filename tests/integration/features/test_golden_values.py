"""Each feature family computes the values its version promises (golden values on real data),
and the golden check names the family to bump, or says to regenerate, when it does not."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from slt.domain.features.config import FeatureConfig
from slt.domain.features.families import FAMILIES
from slt.domain.features.matrix import FeatureMatrix
from slt.domain.features.schema import build_schema
from tests.integration.features import golden

RECORDED = golden.load()


@pytest.fixture(scope="module")
def matrix(shared_data: Path) -> FeatureMatrix:
    return golden.compute()


@pytest.mark.shared_data
def test_every_family_computes_the_values_its_version_promises(matrix: FeatureMatrix) -> None:
    problems = golden.compare(RECORDED, golden.snapshot(matrix))
    assert problems == [], "\n".join(problems)


@pytest.mark.shared_data
def test_one_value_moved_by_a_billionth_is_caught_and_blamed_on_its_family(
    matrix: FeatureMatrix,
) -> None:
    column = matrix.schema.names.index("fvg_bear_dist_atr")
    row = int(np.flatnonzero(np.isfinite(matrix.values[:, column]))[-1])
    values = matrix.values.copy()
    values[row, column] *= 1 + 1e-9
    [problem] = golden.compare(RECORDED, golden.snapshot(replace(matrix, values=values)))
    assert problem.startswith("family fvg changed values: bump fvg's version")
    assert "columns whose values changed: fvg_bear_dist_atr" in problem


def test_the_golden_file_records_the_running_versions_and_parameters() -> None:
    described = build_schema(FeatureConfig.for_timeframe("5m")).described()
    running = {f["name"]: (f["version"], f["params"]) for f in described["families"]}
    recorded = {n: (f["version"], f["params"]) for n, f in RECORDED["families"].items()}
    assert recorded == running, f"regenerate the golden file with {golden.COMMAND}"


def _changed(current: golden.Snapshot, family: str, column: str, value: float) -> None:
    entry = current["families"][family]
    entry["digest"] = "0" * 16
    entry["columns"][column] = "1" * 16
    entry["samples"][str(golden.SAMPLE_ROWS[-1])][column] = value


def test_values_changed_without_a_version_bump_name_the_family_and_what_to_do() -> None:
    current = copy.deepcopy(RECORDED)
    _changed(current, "fvg", "fvg_bull_age", 12345.0)
    [problem] = golden.compare(RECORDED, current)
    assert problem.startswith(
        "family fvg changed values: bump fvg's version in src/slt/domain/features/fvg_nb.py "
        f"and regenerate the golden file with {golden.COMMAND}"
    )
    assert "columns whose values changed: fvg_bull_age" in problem
    assert f"row {golden.SAMPLE_ROWS[-1]} fvg_bull_age: golden " in problem
    assert problem.endswith(", now 12345.0")


def test_a_version_bumped_without_regenerating_the_golden_file_fails() -> None:
    current = copy.deepcopy(RECORDED)
    current["families"]["levels"]["version"] += 1
    [problem] = golden.compare(RECORDED, current)
    assert "family levels is version" in problem
    assert f"regenerate the golden file with {golden.COMMAND}" in problem


def test_a_change_downstream_of_a_changed_family_points_at_the_family_it_reads() -> None:
    current = copy.deepcopy(RECORDED)
    _changed(current, "indicators", "atr_pct", 1.0)
    _changed(current, "structure", "swing_high_dist_atr", 2.0)
    first, second = golden.compare(RECORDED, current)
    assert first.startswith("family indicators changed values: bump indicators's version")
    assert second.startswith("family structure changed values, as did indicators, which it")
    assert "bumping indicators is enough" in second


def test_other_parameters_ask_for_a_regeneration_not_a_bump() -> None:
    current = copy.deepcopy(RECORDED)
    current["families"]["indicators"]["params"]["5m"]["rsi_period"] += 1
    [problem] = golden.compare(RECORDED, current)
    assert "no version bump needed" in problem and golden.COMMAND in problem


def test_golden_values_from_other_data_ask_for_a_regeneration() -> None:
    current = copy.deepcopy(RECORDED)
    current["data"]["rows"] -= 1
    [problem] = golden.compare(RECORDED, current)
    assert "made from other data" in problem and golden.COMMAND in problem


def test_the_golden_file_covers_every_family() -> None:
    assert list(RECORDED["families"]) == [f.name for f in FAMILIES]
    assert golden.compare(RECORDED, copy.deepcopy(RECORDED)) == []


def test_the_digest_keeps_twelve_digits_and_tells_nan_and_infinities_apart() -> None:
    values = np.array([1.0, -2.5, 0.1, 123456.789, 0.0, np.nan, np.inf, -np.inf])
    same = golden.rounded_digest(values)
    assert golden.rounded_digest(values * (1 + 1e-15)) == same
    assert golden.rounded_digest(values * (1 + 1e-10)) != same
    moved = values.copy()
    moved[[4, 5]] = moved[[5, 4]]  # NaN moves to another row
    assert golden.rounded_digest(moved) != same
    for k in (5, 6, 7):
        swapped = values.copy()
        swapped[k] = (np.nan, np.inf, -np.inf)[(k - 4) % 3]
        assert golden.rounded_digest(swapped) != same


def test_the_digest_of_a_value_rounded_up_to_a_power_of_two_equals_that_power() -> None:
    just_below = np.nextafter(2.0, 0.0)
    assert golden.rounded_digest([just_below]) == golden.rounded_digest([2.0])
    assert golden.rounded_digest([-just_below]) == golden.rounded_digest([-2.0])
