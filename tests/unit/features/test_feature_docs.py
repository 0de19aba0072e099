"""docs/features.md defines every column the default schemas produce."""

from __future__ import annotations

import pytest

from slt.domain.features.config import FeatureConfig
from slt.domain.features.definitions import DEFINITIONS, parse_definitions
from slt.domain.features.schema import build_schema
from slt.domain.features.timeframe_nb import TF_COLUMNS
from tests.conftest import ROOT

DOC = ROOT / "docs" / "features.md"


def test_every_timeframe_column_has_a_one_line_definition_in_its_kernel_module() -> None:
    assert set(TF_COLUMNS) <= set(DEFINITIONS)
    assert all(len(DEFINITIONS[c]) > 10 for c in TF_COLUMNS)


@pytest.mark.parametrize("timeframe", ["1m", "5m", "1h"])
def test_the_feature_docs_list_every_column_of_the_default_schema(timeframe: str) -> None:
    text = DOC.read_text()
    schema = build_schema(FeatureConfig.for_timeframe(timeframe))
    missing = [c.source for c in schema.columns if f"`{c.source}`" not in text]
    assert missing == []


def test_definitions_listed_together_share_their_text_and_continuations_join() -> None:
    doc = "Columns:\n- a_x, b_y: first part\n  second part.\n- c: other.\nNot an item.\n"
    assert parse_definitions(doc) == {
        "a_x": "first part second part.",
        "b_y": "first part second part.",
        "c": "other.",
    }
