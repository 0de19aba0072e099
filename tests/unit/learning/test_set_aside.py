"""What the retrainer says about examples of other feature schemas, before any database."""

from __future__ import annotations

from slt.domain.features.families import UNVERSIONED
from slt.runtime.retrainer import SetAside, foreign_schema_counts


def test_foreign_schemas_are_counted_the_most_first_and_the_running_one_left_out() -> None:
    hashes = ["old", "run", "older", "older", "run", "older", "old"]
    assert list(foreign_schema_counts(hashes, "run").items()) == [("older", 3), ("old", 2)]
    assert foreign_schema_counts(["run", "run"], "run") == {}


def test_a_known_schema_is_explained_in_parentheses_an_unknown_one_after_a_comma() -> None:
    known = SetAside("1a2b3c4d5e6f7a8b", 1_234, "fvg v1; running: fvg v2", known=True)
    unknown = SetAside("9f8e7d6c5b4a3928", 56, UNVERSIONED, known=False)
    assert known.message == (
        "set aside 1,234 examples recorded under feature schema 1a2b3c4d5e6f "
        "(fvg v1; running: fvg v2)"
    )
    assert unknown.message == (
        "set aside 56 examples recorded under feature schema 9f8e7d6c5b4a, unknown to this "
        "version (recorded before feature families were versioned)"
    )
