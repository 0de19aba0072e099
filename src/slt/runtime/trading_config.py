"""The trading configuration: risk, exits, costs, the strategy and reconciliation, from a TOML
file.

Every section and field has a default, so ``slt backtest`` runs without a file. Checks that
need the symbol's exchange rules (stop inside the liquidation distance) live in
``check_against_rules``; both run before any work starts.
"""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from slt.domain.trading.enums import SIZING_MODES
from slt.domain.trading.params import CostParams, ExitParams, SizingParams, StopRule
from slt.engine.config import EngineConfig
from slt.errors import ConfigError

_STRICT = ConfigDict(extra="forbid", frozen=True)


class RiskConfig(BaseModel):
    model_config = _STRICT
    sizing: Literal["fixed", "kelly", "atr"] = "kelly"
    risk_pct: float = Field(default=1.0, gt=0, le=100, allow_inf_nan=False)
    max_position_pct: float = Field(default=10.0, gt=0, le=100, allow_inf_nan=False)
    max_total_pct: float = Field(default=50.0, gt=0, le=100, allow_inf_nan=False)
    atr_stop_multiple: float = Field(default=2.0, gt=0, allow_inf_nan=False)
    atr_stop_min_pct: float = Field(default=0.3, gt=0, allow_inf_nan=False)
    atr_stop_max_pct: float = Field(default=5.0, gt=0, allow_inf_nan=False)
    leverage_min: int = Field(default=1, ge=1, le=125)
    leverage_max: int = Field(default=10, ge=1, le=125)
    win_rate_lookback: int = Field(default=20, ge=1, le=10_000)
    win_rate_min_trades: int = Field(default=5, ge=0)
    max_open_positions: int = Field(default=10, ge=0, le=1_000)  # 0: no limit

    @model_validator(mode="after")
    def _consistent(self) -> RiskConfig:
        if self.max_position_pct > self.max_total_pct:
            raise ValueError(
                f"max_position_pct {self.max_position_pct} exceeds max_total_pct "
                f"{self.max_total_pct}"
            )
        if self.leverage_min > self.leverage_max:
            raise ValueError(
                f"leverage_min {self.leverage_min} exceeds leverage_max {self.leverage_max}"
            )
        if self.atr_stop_min_pct > self.atr_stop_max_pct:
            raise ValueError("atr_stop_min_pct exceeds atr_stop_max_pct")
        return self


class ExitConfig(BaseModel):
    model_config = _STRICT
    stop_loss_pct: float = Field(default=1.5, gt=0, lt=100, allow_inf_nan=False)
    take_profit_pct: float = Field(default=3.0, ge=0, allow_inf_nan=False)
    trailing_activation_pct: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    trailing_distance_pct: float = Field(default=0.0, ge=0, lt=100, allow_inf_nan=False)
    partial_take_profit_pct: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    partial_fraction: float = Field(default=0.5, gt=0, lt=1, allow_inf_nan=False)
    break_even_trigger_pct: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    break_even_after_partial: bool = True
    max_holding_minutes: float = Field(default=120.0, ge=0, allow_inf_nan=False)
    emergency_fraction: float = Field(default=0.8, gt=0, le=1, allow_inf_nan=False)
    exit_on_opposite: bool = True
    reverse_on_opposite: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> ExitConfig:
        if self.trailing_activation_pct > 0 and self.trailing_distance_pct <= 0:
            raise ValueError("trailing_activation_pct needs a trailing_distance_pct above 0")
        tp = self.take_profit_pct
        if self.partial_take_profit_pct > 0 and tp > 0 and self.partial_take_profit_pct >= tp:
            raise ValueError("partial_take_profit_pct must lie below take_profit_pct")
        return self


class CostConfig(BaseModel):
    model_config = _STRICT
    taker_fee_pct: float = Field(default=0.05, ge=0, lt=10, allow_inf_nan=False)
    maker_fee_pct: float = Field(default=0.02, ge=-1, lt=10, allow_inf_nan=False)
    slippage_bps: float = Field(default=1.0, ge=0, lt=1000, allow_inf_nan=False)
    slippage_range_fraction: float = Field(default=0.0, ge=0, le=1, allow_inf_nan=False)
    funding: bool = True
    funding_fallback_rate_pct: float = Field(default=0.01, ge=-1, le=1, allow_inf_nan=False)


class ReconcileConfig(BaseModel):
    model_config = _STRICT
    # A position on the exchange the bot did not open (or more than it holds): keep it under
    # a stop ("adopt") or close it at market ("flatten").
    unknown_position: Literal["adopt", "flatten"] = "flatten"


class StrategyConfig(BaseModel):
    model_config = _STRICT
    name: str = "smc"
    file: str | None = None
    relaxed: bool = False


class TradingConfig(BaseModel):
    """All sections of a backtest configuration file."""

    model_config = _STRICT
    initial_equity: float = Field(default=10_000.0, gt=0, allow_inf_nan=False)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    exits: ExitConfig = Field(default_factory=ExitConfig)
    costs: CostConfig = Field(default_factory=CostConfig)
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    reconcile: ReconcileConfig = Field(default_factory=ReconcileConfig)

    def engine(self) -> EngineConfig:
        """The kernel-ready form the engine takes."""
        r, c = self.risk, self.costs
        return EngineConfig(
            initial_equity=self.initial_equity,
            exits=self.exit_params(),
            costs=self.cost_params(),
            sizing=self.sizing_params(),
            stops=StopRule(
                atr=r.sizing == "atr",
                stop_loss_pct=self.exits.stop_loss_pct,
                atr_multiple=r.atr_stop_multiple,
                atr_min_pct=r.atr_stop_min_pct,
                atr_max_pct=r.atr_stop_max_pct,
            ),
            funding=c.funding,
            funding_fallback_rate_pct=c.funding_fallback_rate_pct,
            adopt_unknown=self.reconcile.unknown_position == "adopt",
        )

    def exit_params(self) -> ExitParams:
        minutes = self.exits.max_holding_minutes
        return _params(ExitParams, self.exits, max_holding_ms=round(minutes * 60_000))

    def cost_params(self) -> CostParams:
        return _params(CostParams, self.costs)

    def sizing_params(self) -> SizingParams:
        r = self.risk
        return _params(
            SizingParams,
            r,
            mode=SIZING_MODES[r.sizing],
            leverage_min=float(r.leverage_min),
            leverage_max=float(r.leverage_max),
        )


_P = TypeVar("_P", ExitParams, CostParams, SizingParams)


def _params(kind: type[_P], section: BaseModel, **derived: object) -> _P:
    """The kernel NamedTuple from a section: same-named fields, plus the derived ones."""
    values = section.model_dump()
    return kind._make(derived[n] if n in derived else values[n] for n in kind._fields)


def trading_config_from_mapping(data: dict[str, object], origin: str) -> TradingConfig:
    """Validate a parsed TOML document; the error lists every bad field without its value."""
    try:
        return TradingConfig.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors(include_url=False, include_context=False, include_input=False):
            where = ".".join(str(part) for part in error["loc"]) or "(top level)"
            reason = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                reason = "unknown setting"
            lines.append(f"  {where}: {reason}")
        noun = "problem" if len(lines) == 1 else "problems"
        raise ConfigError(
            f"invalid trading configuration in {origin} ({len(lines)} {noun}):\n" + "\n".join(lines)
        ) from None
