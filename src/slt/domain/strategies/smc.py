"""``smc``: the original system's ICT / smart-money confluence, read top-down.

1d bias -> 1h structure and levels -> 15m structure -> a trigger on the base candle. The rules
and weights are listed in ``smc_nb``; docs/strategies.md explains them for traders. Batch and
stream run the same step kernel, ``smc_step_nb``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from slt.domain.features.config import context_prefix
from slt.domain.features.matrix import FeatureMatrix
from slt.domain.features.schema import FeatureSchema
from slt.domain.series import F64, Candles
from slt.domain.strategies.base import Signals, StrategyError
from slt.domain.strategies.smc_nb import (
    SmcColumns,
    SmcKernelParams,
    smc_signals_nb,
    smc_state_nb,
    smc_step_nb,
)
from slt.domain.strategies.stepping import NO_CANDLE_YET_MS, compiled_step, out_of_order
from slt.domain.timeframes import timeframe_ms

# Kernel field -> (timeframe the value is read on, or None for the base; column name).
_SOURCES: dict[str, tuple[str | None, str]] = {
    "d1_trend": ("1d", "trend"),
    "d1_premium_discount": ("1d", "premium_discount"),
    "h1_trend": ("1h", "trend"),
    "h1_premium_discount": ("1h", "premium_discount"),
    "h1_fvg_bull_dist_atr": ("1h", "fvg_bull_dist_atr"),
    "h1_fvg_bear_dist_atr": ("1h", "fvg_bear_dist_atr"),
    "h1_liq_buy_dist_atr": ("1h", "liq_buy_dist_atr"),
    "h1_liq_sell_dist_atr": ("1h", "liq_sell_dist_atr"),
    "m15_trend": ("15m", "trend"),
    "m15_premium_discount": ("15m", "premium_discount"),
    **{
        name: (None, name)
        for name in SmcColumns._fields
        if not name.startswith(("d1_", "h1_", "m15_"))
    },
}


@dataclass(frozen=True)
class SmcParams:
    """``relaxed`` (RELAXED_SIGNAL_MODE) drops the 1d and discount gates, accepts a new gap as a
    trigger and lowers the minimum score: more candidate signals for learning."""

    relaxed: bool = False
    min_score: float = 0.55
    relaxed_min_score: float = 0.45
    discount_level: float = 0.5
    h1_gap_below_atr: float = 0.5
    h1_gap_above_atr: float = 1.0
    h1_liquidity_reach_atr: float = 5.0

    def __post_init__(self) -> None:
        problems = []
        if not 0.0 <= self.relaxed_min_score <= self.min_score <= 1.0:
            problems.append(
                "0 <= relaxed_min_score <= min_score <= 1 "
                f"(got {self.relaxed_min_score}, {self.min_score})"
            )
        if not 0.0 < self.discount_level < 1.0:
            problems.append(f"0 < discount_level < 1 (got {self.discount_level})")
        if min(self.h1_gap_below_atr, self.h1_gap_above_atr, self.h1_liquidity_reach_atr) < 0:
            problems.append("h1 gap and liquidity distances >= 0")
        if problems:
            raise StrategyError("smc parameters need " + "; ".join(problems))

    def kernel(self) -> SmcKernelParams:
        return SmcKernelParams(
            relaxed=self.relaxed,
            min_score=self.relaxed_min_score if self.relaxed else self.min_score,
            discount_level=self.discount_level,
            h1_gap_below_atr=self.h1_gap_below_atr,
            h1_gap_above_atr=self.h1_gap_above_atr,
            h1_liquidity_reach_atr=self.h1_liquidity_reach_atr,
        )


def smc_columns(features: FeatureMatrix | FeatureSchema) -> SmcColumns:
    """Indices of the columns smc reads. A context timeframe at or below the base (15m on a 15m
    or 1h base) is read from the base columns; a missing higher one is an error."""
    schema = features.schema if isinstance(features, FeatureMatrix) else features
    index = {name: i for i, name in enumerate(schema.names)}
    base_ms = timeframe_ms(schema.base_timeframe)
    chosen: dict[str, int] = {}
    missing: list[str] = []
    for kernel_name, (timeframe, column) in _SOURCES.items():
        wanted = column
        if timeframe is not None:
            prefixed = f"{context_prefix(timeframe)}_{column}"
            on_base = timeframe_ms(timeframe) <= base_ms and prefixed not in index
            wanted = column if on_base else prefixed
        if wanted in index:
            chosen[kernel_name] = index[wanted]
        else:
            missing.append(wanted)
    if missing:
        raise StrategyError(
            f"smc needs feature columns missing on a {schema.base_timeframe} base: "
            + ", ".join(missing)
        )
    return SmcColumns(**chosen)


@dataclass(frozen=True)
class Smc:
    """Top-down smart-money confluence; see ``smc_nb`` for every rule and weight."""

    params: SmcParams = field(default_factory=SmcParams)

    @property
    def name(self) -> str:
        return "smc"

    @property
    def uses_features(self) -> bool:
        return True

    def signals(self, candles: Candles, features: FeatureMatrix | None) -> Signals:
        if features is None:
            raise StrategyError("smc needs the feature matrix of the candles (got none)")
        if len(features) != len(candles):
            raise StrategyError(f"smc got {len(features)} feature rows for {len(candles)} candles")
        values = np.ascontiguousarray(features.values, dtype=np.float64)
        reason = np.ascontiguousarray(features.reason, dtype=np.int8)
        direction, score = smc_signals_nb(
            values, reason, smc_columns(features), self.params.kernel()
        )
        return Signals(direction, score)

    def stream(self, schema: FeatureSchema | None) -> SmcStream:
        """Feature rows of ``schema`` one at a time, as ``FeatureStream.update`` returns them."""
        if schema is None:
            raise StrategyError("smc streams feature rows: give it their FeatureSchema (got none)")
        return SmcStream(self.params, schema)


class SmcStream:
    """smc fed one closed candle's feature row at a time: O(1), the batch kernel's step."""

    def __init__(self, params: SmcParams, schema: FeatureSchema) -> None:
        self._columns = smc_columns(schema)
        self._params = params.kernel()
        self._width = len(schema.columns)
        self._state = smc_state_nb()
        example_row = np.zeros(self._width)
        self._step = compiled_step(
            smc_step_nb, self._state, example_row, 0, self._columns, self._params
        )
        self._last_time_ms = NO_CANDLE_YET_MS

    def update(
        self,
        open_time_ms: int,
        open: float,
        high: float,
        low: float,
        close: float,
        volume: float,
        features_row: F64 | None,
        reason: int,
    ) -> tuple[int, float]:
        """(direction, score) of this closed candle from its feature row and reason code."""
        if open_time_ms <= self._last_time_ms:
            raise out_of_order(open_time_ms, self._last_time_ms)
        if features_row is None or features_row.shape != (self._width,):
            got = "none" if features_row is None else f"shape {features_row.shape}"
            raise StrategyError(f"smc streams feature rows of {self._width} columns (got {got})")
        self._last_time_ms = open_time_ms
        row = np.ascontiguousarray(features_row, dtype=np.float64)
        return self._step(self._state, row, int(reason), self._columns, self._params)
