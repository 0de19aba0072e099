"""The feature matrix of a candle series (batch) and the same rows one candle at a time (stream).

Both paths run ``mtf_step_nb``; the batch path only loops over it inside numba.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from slt.domain.features.config import FeatureConfig
from slt.domain.features.jit import compiled_entry
from slt.domain.features.multiframe_nb import (
    REASON_OK,
    MtfParams,
    MtfState,
    mtf_reset_nb,
    mtf_run_nb,
    mtf_step_nb,
)
from slt.domain.features.schema import FeatureSchema, build_schema, mtf_params
from slt.domain.features.timeframe_nb import TF_NCOLS, tf_state
from slt.domain.series import F64, I64, Candles
from slt.domain.timeframes import timeframe_ms
from slt.errors import InvalidSeriesError

I8 = npt.NDArray[np.int8]


@dataclass(frozen=True)
class FeatureMatrix:
    """One row per base candle: its open time, the reason code (0 = valid), the values."""

    schema: FeatureSchema
    open_time_ms: I64
    reason: I8
    values: F64  # (rows, columns); all NaN on invalid rows

    @property
    def valid(self) -> npt.NDArray[np.bool_]:
        valid: npt.NDArray[np.bool_] = self.reason == REASON_OK
        return valid

    def column(self, name: str) -> F64:
        return self.values[:, self.schema.names.index(name)]

    def __len__(self) -> int:
        return len(self.open_time_ms)


def _new_state(params: MtfParams) -> MtfState:
    n = max(params.n_context, 1)
    state = MtfState(
        base=tf_state(params.base),
        context=tuple(tf_state(c) for c in params.context),
        bucket=np.zeros((n, 3), dtype=np.int64),
        forming=np.full((n, 5), np.nan),
        context_row=np.full((n, TF_NCOLS), np.nan),
        context_bars=np.zeros(n, dtype=np.int64),
        clock=np.zeros(4, dtype=np.int64),
    )
    mtf_reset_nb(state, params)
    return state


def _check_times(times: I64, tf_ms: int) -> None:
    if len(times) > 1 and not bool(np.all(np.diff(times) > 0)):
        raise InvalidSeriesError("candle open times must be strictly increasing (sorted, unique)")
    if len(times) and bool(np.any(times % tf_ms)):
        raise InvalidSeriesError(
            f"candle open times must lie on the {tf_ms} ms grid of the timeframe"
        )


def compute_features(candles: Candles, config: FeatureConfig | None = None) -> FeatureMatrix:
    """Features of every candle; the timeframe comes from the series unless ``config`` says."""
    config = config or FeatureConfig.for_timeframe(candles.key.timeframe)
    if timeframe_ms(config.base.timeframe) != candles.key.timeframe_ms:
        raise InvalidSeriesError(
            f"feature config is for {config.base.timeframe} but the candles are "
            f"{candles.key.timeframe}"
        )
    return compute_arrays(
        config,
        candles.open_time_ms,
        candles.open,
        candles.high,
        candles.low,
        candles.close,
        candles.volume,
    )


def compute_arrays(
    config: FeatureConfig,
    times: I64,
    o: F64,
    h: F64,
    low: F64,
    c: F64,
    v: F64,
    *,
    mask_invalid: bool = True,
) -> FeatureMatrix:
    """``mask_invalid=False`` keeps the values of invalid rows (to inspect the warm-up)."""
    schema = build_schema(config)
    params = mtf_params(config, schema, mask_invalid=mask_invalid)
    _check_times(times, params.base_tf_ms)
    n = len(times)
    values = np.empty((n, len(schema.columns)), dtype=np.float64)
    reason = np.empty(n, dtype=np.int8)
    state = _new_state(params)
    o, h, low, c, v = (np.ascontiguousarray(a, dtype=np.float64) for a in (o, h, low, c, v))
    times = np.ascontiguousarray(times, dtype=np.int64)
    mtf_run_nb(state, params, times, o, h, low, c, v, values, reason)
    return FeatureMatrix(schema, times, reason, values)


class FeatureStream:
    """Feed closed candles one by one; each call returns that candle's row and reason code."""

    def __init__(self, config: FeatureConfig, *, mask_invalid: bool = True) -> None:
        self.schema = build_schema(config)
        self._params = mtf_params(config, self.schema, mask_invalid=mask_invalid)
        self._state = _new_state(self._params)
        self._last_time: int | None = None
        self._step = _compiled_step(self._state, self._params)

    def update(
        self, time_ms: int, o: float, h: float, low: float, c: float, v: float
    ) -> tuple[F64, int]:
        """O(1) per candle. Candles must arrive in time order, on the timeframe's grid."""
        if self._last_time is not None and time_ms <= self._last_time:
            raise InvalidSeriesError(
                f"candle at {time_ms} arrived after the candle at {self._last_time}: "
                "the stream takes each closed candle once, in time order"
            )
        if time_ms % self._params.base_tf_ms:
            raise InvalidSeriesError(f"candle at {time_ms} is not on the timeframe grid")
        self._last_time = time_ms
        row = np.empty(len(self.schema.columns), dtype=np.float64)
        prices = (float(o), float(h), float(low), float(c), float(v))
        reason = self._step(self._state, self._params, np.int64(time_ms), *prices, row)
        return row, int(reason)


def _compiled_step(state: MtfState, params: MtfParams) -> Callable[..., int]:
    """The machine-code entry of ``mtf_step_nb`` for these argument types (``compiled_entry``):
    for a state of some hundred arrays numba's per-call choice of types costs more than the
    features themselves."""
    args = (state, params, np.int64(0), 1.0, 1.0, 1.0, 1.0, 1.0, np.empty(1))
    entry: Callable[..., int] = compiled_entry(mtf_step_nb, *args)
    return entry
