"""Loading a strategy from a user's Python file, and checking any strategy's output."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from slt.adapters.strategy_file import check_strategy, load_strategy_file
from slt.domain.features.matrix import FeatureMatrix
from slt.domain.series import Candles
from slt.domain.strategies.base import Signals, StrategyError
from slt.domain.strategies.registry import builtin_strategy
from tests.unit.strategies.feature_rows import candles_of, feature_matrix

EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "my_strategy.py"

VALID = """
import numpy as np
from slt.domain.strategies.base import Signals

class Always:
    name = "always_long"
    uses_features = False

    def signals(self, candles, features):
        n = len(candles)
        return Signals(np.ones(n, dtype=np.int8), np.full(n, 0.5))

strategy = Always()
"""


def write(tmp_path: Path, text: str, name: str = "mine.py") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


class Fake:
    """A strategy whose signals() returns whatever the test gives it."""

    def __init__(self, output: object = None, error: Exception | None = None) -> None:
        self.name = "fake"
        self.uses_features = False
        self.output = output
        self.error = error

    def signals(self, candles: Candles, features: FeatureMatrix | None) -> Any:
        if self.error is not None:
            raise self.error
        return self.output


def test_a_file_defining_strategy_loads_and_its_signals_pass_the_check(tmp_path: Path) -> None:
    strategy = load_strategy_file(write(tmp_path, VALID))
    signals = check_strategy(strategy, candles_of([1.0, 2.0, 3.0]), None)
    assert strategy.name == "always_long"
    assert signals.direction.tolist() == [1, 1, 1]


def test_a_file_with_make_strategy_is_asked_for_its_strategy(tmp_path: Path) -> None:
    text = VALID.replace("strategy = Always()", "def make_strategy():\n    return Always()")
    assert load_strategy_file(write(tmp_path, text)).name == "always_long"


def test_each_load_runs_the_file_as_its_own_module(tmp_path: Path) -> None:
    path = write(tmp_path, VALID + "\nimport itertools\nloads = itertools.count()\n")
    first, second = load_strategy_file(path), load_strategy_file(path)
    assert type(first) is not type(second)
    assert type(first).__module__ != type(second).__module__
    assert type(first).__module__ in sys.modules


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(StrategyError, match=r"nowhere\.py: not found"):
        load_strategy_file(tmp_path / "nowhere.py")


def test_a_syntax_error_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "x = 1\ndef broken(:\n")
    with pytest.raises(StrategyError, match=r"mine\.py: syntax error at line 2"):
        load_strategy_file(path)


def test_a_file_raising_at_import_names_the_exception(tmp_path: Path) -> None:
    path = write(tmp_path, "raise ValueError('no API key here')\n")
    with pytest.raises(StrategyError, match=r"mine\.py: importing it raised ValueError: no API"):
        load_strategy_file(path)
    assert not [m for m in sys.modules.values() if getattr(m, "__file__", None) == str(path)]


def test_a_file_without_strategy_or_make_strategy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StrategyError, match="neither a module-level `strategy`"):
        load_strategy_file(write(tmp_path, "x = 1\n"))


def test_make_strategy_raising_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "def make_strategy():\n    raise KeyError('period')\n")
    with pytest.raises(StrategyError, match="make_strategy\\(\\) raised KeyError"):
        load_strategy_file(path)


def test_a_strategy_with_wrong_attributes_lists_every_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "class S:\n    name = 3\n    signals = None\n\nstrategy = S()\n")
    with pytest.raises(StrategyError) as info:
        load_strategy_file(path)
    message = str(info.value)
    assert "mine.py" in message
    assert "non-empty str `name` (got 3)" in message
    assert "bool `uses_features` (got None)" in message
    assert "method `signals(candles, features)`" in message


def test_a_file_that_is_not_python_source_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StrategyError, match="not a Python source file"):
        load_strategy_file(write(tmp_path, VALID, name="mine.txt"))


def test_an_exception_in_signals_becomes_a_strategy_error_naming_the_strategy() -> None:
    with pytest.raises(StrategyError, match="strategy fake raised ValueError: bad window"):
        check_strategy(Fake(error=ValueError("bad window")), candles_of([1.0]), None)


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        ((np.zeros(2), np.zeros(2)), "returned tuple, not Signals"),
        (Signals(np.zeros(2, np.int8), np.zeros(3)), r"score must be 1-D with one value per"),
        (Signals(np.zeros(1, np.int8), np.zeros(2)), r"direction must be 1-D .* \(2\)"),
        (Signals(np.array([2, 0], np.int8), np.zeros(2)), r"only \+1, -1 and 0 \(found \[2\]\)"),
        (Signals(np.array(["a", "b"]), np.zeros(2)), "direction must be numeric"),
        (Signals(np.array([1, 0], np.int8), np.array([np.nan, 0.0])), "score must be finite"),
        (Signals(np.array([1, 0], np.int8), np.array([1.5, 0.0])), r"in \[0, 1\] \(found 0 .. 1.5"),
    ],
)
def test_output_breaking_the_contract_is_refused(output: object, problem: str) -> None:
    with pytest.raises(StrategyError, match=problem):
        check_strategy(Fake(output), candles_of([1.0, 2.0]), None)


def test_float_directions_and_scores_of_candles_without_a_signal_are_normalised() -> None:
    output = Signals(np.array([1.0, 0.0, -1.0]), np.array([0.7, 0.9, 0.2]))
    signals = check_strategy(Fake(output), candles_of([1.0, 2.0, 3.0]), None)
    assert signals.direction.dtype == np.int8
    assert signals.direction.tolist() == [1, 0, -1]
    assert signals.score.tolist() == [0.7, 0.0, 0.2]


def test_a_strategy_using_features_given_none_is_refused_before_it_runs() -> None:
    with pytest.raises(StrategyError, match="smc uses features but was given none"):
        check_strategy(builtin_strategy("smc"), candles_of([1.0]), None)


def test_features_of_another_length_than_the_candles_are_refused() -> None:
    with pytest.raises(StrategyError, match="2 feature rows for 3 candles"):
        check_strategy(builtin_strategy("smc"), candles_of([1.0, 2.0, 3.0]), feature_matrix({}, {}))


def test_the_documented_example_file_trades_rsi_reversals_with_the_hourly_trend() -> None:
    strategy = load_strategy_file(EXAMPLE)
    rows = [
        {"rsi": 25.0, "h1_trend": 1.0},
        {"rsi": 35.0, "h1_trend": 1.0},  # back up through 30 with the hour up: long
        {"rsi": 75.0, "h1_trend": -1.0},
        {"rsi": 65.0, "h1_trend": -1.0},  # back down through 70 with the hour down: short
        {"rsi": 20.0, "h1_trend": -1.0},
        {"rsi": 40.0, "h1_trend": -1.0},  # up through 30 against the hour: nothing
    ]
    signals = check_strategy(strategy, candles_of(np.ones(6)), feature_matrix(*rows))
    assert strategy.uses_features is True
    assert signals.direction.tolist() == [0, 1, 0, -1, 0, 0]
    assert signals.score.tolist() == [0.0, 0.625, 0.0, 0.625, 0.0, 0.0]
