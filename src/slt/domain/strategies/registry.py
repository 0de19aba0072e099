"""The built-in strategies by name."""

from __future__ import annotations

from slt.domain.strategies.base import Strategy, StrategyError
from slt.domain.strategies.ema_cross import EmaCross
from slt.domain.strategies.smc import Smc, SmcParams

BUILTIN_NAMES = ("ema_cross", "smc")


def builtin_strategy(name: str, relaxed: bool = False) -> Strategy:
    """``relaxed`` (RELAXED_SIGNAL_MODE) loosens smc's entry rules; ema_cross has none to loosen."""
    if name == "ema_cross":
        return EmaCross()
    if name == "smc":
        return Smc(SmcParams(relaxed=relaxed))
    raise StrategyError(
        f"unknown strategy {name!r}; the built-in strategies are: {', '.join(BUILTIN_NAMES)}"
    )
