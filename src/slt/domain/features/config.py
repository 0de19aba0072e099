"""Which features are computed, on which timeframes, with which parameters.

The defaults read the market top-down along the ladder 1d -> 1h -> 15m -> 5m -> 1m: every rung
above the base timeframe becomes context. Structure memory (swing horizon) is set per timeframe
so that daily context warms up in about two months rather than a year.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from slt.domain.features.fvg_nb import FvgParams
from slt.domain.features.indicators_nb import IndicatorParams
from slt.domain.features.levels_nb import LevelsParams
from slt.domain.features.structure_nb import StructureParams
from slt.domain.timeframes import DAY_MS, timeframe_ms, timeframe_name
from slt.errors import SltError

LADDER = ("1m", "5m", "15m", "1h", "1d")

# Columns of a higher timeframe that reach the base row (scale-free, in that timeframe's units).
CONTEXT_COLUMNS_INTRADAY = (
    "rsi",
    "atr_pct",
    "macd_hist_atr",
    "bb_width_pct",
    "trend",
    "bars_since_break",
    "premium_discount",
    "swing_high_dist_atr",
    "swing_low_dist_atr",
    "fvg_bull_dist_atr",
    "fvg_bear_dist_atr",
    "liq_buy_dist_atr",
    "liq_sell_dist_atr",
)
# Daily context avoids exponential indicators: their 1e-9 warm-up would be most of a year.
CONTEXT_COLUMNS_DAILY = ("trend", "bars_since_break", "premium_discount", "swing_range_pct")


class FeatureConfigError(SltError):
    """A feature configuration that cannot be computed."""


@dataclass(frozen=True)
class TimeframeParams:
    """Kernel parameters of one timeframe."""

    timeframe: str
    indicators: IndicatorParams
    structure: StructureParams
    fvg: FvgParams
    levels: LevelsParams


def default_timeframe_params(timeframe: str) -> TimeframeParams:
    """Swing horizon of about two days in bars (30..300); daily swings use 2 bars each side."""
    tf_ms = timeframe_ms(timeframe)
    horizon = max(30, min(300, round(2 * DAY_MS / tf_ms)))
    swing = 2 if tf_ms >= DAY_MS else 5
    structure = StructureParams()._replace(
        swing_left=swing, swing_right=swing, horizon=horizon, ob_max_age=horizon
    )
    fvg = FvgParams()._replace(max_age=max(horizon, 30))
    return TimeframeParams(
        timeframe=timeframe_name(tf_ms),
        indicators=IndicatorParams(),
        structure=structure,
        fvg=fvg,
        levels=LevelsParams(tf_ms=tf_ms),
    )


def default_context_timeframes(base: str) -> tuple[str, ...]:
    """Every rung of the ladder above ``base``, highest first (1d, 1h, 15m, ...)."""
    base_ms = timeframe_ms(base)
    above = [tf for tf in LADDER if timeframe_ms(tf) > base_ms and timeframe_ms(tf) % base_ms == 0]
    return tuple(sorted(above, key=timeframe_ms, reverse=True))


def context_columns(timeframe: str) -> tuple[str, ...]:
    return CONTEXT_COLUMNS_DAILY if timeframe_ms(timeframe) >= DAY_MS else CONTEXT_COLUMNS_INTRADAY


def context_prefix(timeframe: str) -> str:
    """'15m' -> 'm15', '1h' -> 'h1', '1d' -> 'd1': column names that do not start with a digit."""
    name = timeframe_name(timeframe_ms(timeframe))
    return f"{name[-1]}{name[:-1]}"


@dataclass(frozen=True)
class FeatureConfig:
    """Base timeframe plus the higher timeframes read as context."""

    base: TimeframeParams
    context: tuple[TimeframeParams, ...] = field(default_factory=tuple)

    @classmethod
    def for_timeframe(cls, base: str, context: tuple[str, ...] | None = None) -> FeatureConfig:
        """Defaults for ``base``; ``context`` overrides the ladder (each a multiple of base)."""
        base_ms = timeframe_ms(base)
        chosen = default_context_timeframes(base) if context is None else context
        for tf in chosen:
            ms = timeframe_ms(tf)
            if ms <= base_ms or ms % base_ms:
                raise FeatureConfigError(
                    f"context timeframe {tf} must be a whole multiple of the base timeframe {base}"
                )
        ordered = sorted(set(chosen), key=timeframe_ms, reverse=True)
        return cls(
            base=default_timeframe_params(base),
            context=tuple(default_timeframe_params(tf) for tf in ordered),
        )
