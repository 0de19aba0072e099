"""All kernel families of one timeframe, composed into a single per-candle step.

Indicators run first because they produce the ATR the structure families measure in.
The composition is versioned by ``multiframe_nb.FAMILY_VERSION``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from slt.domain.features.fvg_nb import (
    FVG_COLUMNS,
    FvgParams,
    FvgState,
    fvg_reset_nb,
    fvg_state,
    fvg_step_nb,
    fvg_warmups,
)
from slt.domain.features.indicators_nb import (
    INDICATOR_COLUMNS,
    IndicatorParams,
    IndicatorState,
    indicator_reset_nb,
    indicator_state,
    indicator_step_nb,
    indicator_warmups,
)
from slt.domain.features.jit import step_jit
from slt.domain.features.levels_nb import (
    LEVELS_COLUMNS,
    LevelsParams,
    LevelsState,
    levels_reset_nb,
    levels_state,
    levels_step_nb,
    levels_warmups,
)
from slt.domain.features.structure_nb import (
    STRUCTURE_COLUMNS,
    StructureParams,
    StructureState,
    structure_reset_nb,
    structure_state,
    structure_step_nb,
    structure_warmups,
)
from slt.domain.series import F64

TF_COLUMNS: tuple[str, ...] = INDICATOR_COLUMNS + STRUCTURE_COLUMNS + FVG_COLUMNS + LEVELS_COLUMNS
_IND_END = len(INDICATOR_COLUMNS)
_ST_END = _IND_END + len(STRUCTURE_COLUMNS)
_FVG_END = _ST_END + len(FVG_COLUMNS)
_LV_END = _FVG_END + len(LEVELS_COLUMNS)
TF_NCOLS = _LV_END


class TfParams(NamedTuple):
    indicators: IndicatorParams
    structure: StructureParams
    fvg: FvgParams
    levels: LevelsParams


class TfState(NamedTuple):
    indicators: IndicatorState
    structure: StructureState
    fvg: FvgState
    levels: LevelsState


def tf_state(p: TfParams) -> TfState:
    return TfState(
        indicator_state(p.indicators),
        structure_state(p.structure),
        fvg_state(p.fvg),
        levels_state(p.levels),
    )


def tf_warmups(p: TfParams) -> tuple[int, ...]:
    """Per column of TF_COLUMNS; ATR-measured columns also wait for the ATR."""
    ind = indicator_warmups(p.indicators)
    atr_warmup = ind[INDICATOR_COLUMNS.index("atr_pct")]
    per_family = (
        ind,
        structure_warmups(p.structure, atr_warmup),
        fvg_warmups(p.fvg),
        levels_warmups(p.levels),
    )
    names = TF_COLUMNS
    flat = [w for family in per_family for w in family]
    return tuple(max(w, atr_warmup) if "_atr" in n else w for n, w in zip(names, flat, strict=True))


@step_jit
def tf_reset_nb(s: TfState) -> None:
    indicator_reset_nb(s.indicators)
    structure_reset_nb(s.structure)
    fvg_reset_nb(s.fvg)
    levels_reset_nb(s.levels)


@step_jit
def tf_step_nb(
    s: TfState,
    p: TfParams,
    time_ms: np.int64,
    o: float,
    h: float,
    low: float,
    c: float,
    v: float,
    out: F64,
) -> None:
    """One closed candle of this timeframe in, its TF_COLUMNS row out."""
    atr = indicator_step_nb(s.indicators, p.indicators, o, h, low, c, v, out[:_IND_END])
    structure_step_nb(s.structure, p.structure, o, h, low, c, v, atr, out[_IND_END:_ST_END])
    fvg_step_nb(s.fvg, p.fvg, o, h, low, c, atr, out[_ST_END:_FVG_END])
    levels_step_nb(s.levels, p.levels, time_ms, h, low, c, atr, out[_FVG_END:_LV_END])
