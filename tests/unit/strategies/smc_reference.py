"""smc's rules as docs/strategies.md states them, in plain Python over named columns: the slow,
obviously-correct reference the kernel is tested against."""

from __future__ import annotations

import numpy as np

from slt.domain.features.matrix import FeatureMatrix
from slt.domain.strategies.smc import SmcParams

# docs/strategies.md, "Confluence factors and weights", in points of 100.
BIAS = {"d1_trend": 15, "h1_trend": 10, "m15_trend": 10}
LOCATION = {
    "d1_premium_discount": 5,
    "h1_premium_discount": 10,
    "m15_premium_discount": 5,
    "premium_discount": 5,
}
H1_GAP, H1_LIQUIDITY, BREAK, SWEEP, GAP_TOUCH, BLOCK_TOUCH = 5, 5, 10, 10, 5, 5


def reference(matrix: FeatureMatrix, params: SmcParams) -> tuple[list[int], list[float]]:
    """The documented rules read row by row from named columns; shorts mirror longs."""
    col = {name: matrix.column(name) for name in matrix.schema.names}
    directions, scores = [], []
    for i in range(len(matrix)):
        h1 = col["h1_trend"][i]
        side = 1 if h1 > 0 else -1 if h1 < 0 else 0
        score = -1.0
        if matrix.reason[i] == 0 and side != 0:
            score = side_score(col, i, side, params)
        directions.append(side if score >= 0.0 else 0)
        scores.append(score if score >= 0.0 else 0.0)
    return directions, scores


def side_score(col: dict[str, np.ndarray], i: int, s: int, params: SmcParams) -> float:
    bull = "bull" if s > 0 else "bear"
    level = params.discount_level

    def zone(name: str) -> bool:  # discount for longs, premium for shorts
        value = col[name][i]
        return bool(value < level if s > 0 else value > 1.0 - level)

    def fresh_touch(kind: str) -> bool:
        touched, age = col[f"{kind}_{bull}_touched"], col[f"{kind}_{bull}_age"]
        if i == 0:
            return False
        return bool(touched[i] == 1 and touched[i - 1] == 0 and age[i] == age[i - 1] + 1)

    broke = col["bos"][i] * s > 0 or col["choch"][i] * s > 0
    swept = col["liq_sweep"][i] * s > 0
    gap_touch, block_touch = fresh_touch("fvg"), fresh_touch("ob")
    new_gap = col["fvg_new"][i] * s > 0
    if not (broke or swept or gap_touch or block_touch or (params.relaxed and new_gap)):
        return -1.0
    d1 = col["d1_trend"][i] * s
    if not params.relaxed and not (
        d1 >= 0 and (zone("h1_premium_discount") or zone("m15_premium_discount"))
    ):
        return -1.0
    gap_dist = col[f"h1_fvg_{bull}_dist_atr"][i]
    liquidity = col["h1_liq_buy_dist_atr" if s > 0 else "h1_liq_sell_dist_atr"][i]
    points = BIAS["h1_trend"]
    points += BIAS["d1_trend"] if d1 > 0 else 0
    points += BIAS["m15_trend"] if col["m15_trend"][i] * s > 0 else 0
    points += sum(weight for name, weight in LOCATION.items() if zone(name))
    points += H1_GAP if -params.h1_gap_below_atr <= gap_dist <= params.h1_gap_above_atr else 0
    points += H1_LIQUIDITY if liquidity <= params.h1_liquidity_reach_atr else 0
    points += BREAK if broke else 0
    points += SWEEP if swept else 0
    points += GAP_TOUCH if gap_touch else 0
    points += BLOCK_TOUCH if block_touch else 0
    minimum = params.relaxed_min_score if params.relaxed else params.min_score
    return points / 100 if points / 100 >= minimum else -1.0
