"""What the engine needs to know of a trading configuration, as plain numbers.

The user's configuration is validated elsewhere (``runtime.trading_config``, pydantic); the
engine takes only this frozen, kernel-ready form, so the decision code never depends on how
settings are read.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from slt.domain.trading.params import CostParams, ExitParams, SizingParams, StopRule


class EngineConfig(NamedTuple):
    initial_equity: float = 10_000.0
    exits: ExitParams = ExitParams()
    costs: CostParams = CostParams()
    sizing: SizingParams = SizingParams()
    stops: StopRule = StopRule()
    funding: bool = True
    funding_fallback_rate_pct: float = 0.01
    adopt_unknown: bool = False  # an unexpected position: protect it (True) or flatten it


def config_to_dict(config: EngineConfig) -> dict[str, Any]:
    """Plain JSON values (journals keep the configuration a session ran with)."""
    return {
        name: value._asdict() if hasattr(value, "_asdict") else value
        for name, value in config._asdict().items()
    }


def config_from_dict(data: dict[str, Any]) -> EngineConfig:
    parts: dict[str, Any] = {
        "exits": ExitParams,
        "costs": CostParams,
        "sizing": SizingParams,
        "stops": StopRule,
    }
    return EngineConfig(
        **{name: parts[name](**value) if name in parts else value for name, value in data.items()}
    )
