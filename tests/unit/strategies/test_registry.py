"""Built-in strategies by name."""

from __future__ import annotations

import pytest

from slt.domain.strategies.base import StrategyError
from slt.domain.strategies.ema_cross import EmaCross
from slt.domain.strategies.registry import builtin_strategy
from slt.domain.strategies.smc import Smc
from slt.errors import SltError


def test_ema_cross_is_built_in_and_needs_only_candles() -> None:
    strategy = builtin_strategy("ema_cross")
    assert isinstance(strategy, EmaCross)
    assert (strategy.name, strategy.uses_features) == ("ema_cross", False)


def test_smc_is_built_in_and_relaxed_mode_reaches_its_parameters() -> None:
    strict, relaxed = builtin_strategy("smc"), builtin_strategy("smc", relaxed=True)
    assert isinstance(strict, Smc) and isinstance(relaxed, Smc)
    assert (strict.params.relaxed, relaxed.params.relaxed) == (False, True)
    assert strict.uses_features is True


def test_an_unknown_strategy_name_lists_the_known_ones() -> None:
    with pytest.raises(StrategyError, match=r"unknown strategy 'macd'.*ema_cross, smc"):
        builtin_strategy("macd")


def test_strategy_errors_are_expected_errors_the_cli_prints_on_one_line() -> None:
    assert issubclass(StrategyError, SltError)
