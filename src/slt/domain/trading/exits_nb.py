"""Exit checks shared by the simulated exchange, virtual positions and live trading.

``resolve_segment_nb`` finds which resting orders a price segment (one candle, or one 1m
candle inside it) fills. The order of events inside a segment is unknown, so it assumes the
worst: the adverse side first, and a stop hit ends the segment. Levels (trailing, break-even)
move only at a candle's close, from that candle's extremes, and act from the next candle.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from slt.domain.features.jit import inline_jit, step_jit
from slt.domain.trading.enums import (
    BREAK_EVEN,
    EMERGENCY_CLOSE,
    LIQUIDATION,
    PARTIAL_TAKE_PROFIT,
    TAKE_PROFIT,
    TRAILING_STOP,
)
from slt.domain.trading.margin_nb import round_price_nb
from slt.domain.trading.params import ExitParams
from slt.domain.trading.position_nb import Position

F64 = npt.NDArray[np.float64]

# Columns of a fill row written by resolve_segment_nb.
FILL_PRICE = 0
FILL_QTY = 1
FILL_REASON = 2
FILL_MAKER = 3  # 1.0: a resting limit order (maker fee, no slippage)
FILL_COLUMNS = 4


@step_jit
def _put(out: F64, k: int, price: float, qty: float, reason: float, maker: float) -> int:
    out[k, FILL_PRICE] = price
    out[k, FILL_QTY] = qty
    out[k, FILL_REASON] = reason
    out[k, FILL_MAKER] = maker
    return k + 1


@step_jit
def resolve_segment_nb(pos: Position, open_: float, high: float, low: float, out: F64) -> int:
    """Fills of the resting orders in one segment, written to ``out`` (2 rows); their count.

    Gaps: an open beyond a level fills at the open; beyond the liquidation price the
    position is liquidated. The partial take profit fills before the final target.
    """
    side = pos.side
    if side == 0:
        return 0
    s = 1.0 if side > 0 else -1.0
    qty = pos.qty
    liq = pos.liq
    # Adverse side, measured as "how far below" for a long (s = 1) and above for a short.
    if liq > 0 and s * open_ <= s * liq:
        return _put(out, 0, liq, qty, LIQUIDATION, 0.0)
    if pos.emergency > 0 and s * open_ <= s * pos.emergency:
        return _put(out, 0, open_, qty, EMERGENCY_CLOSE, 0.0)
    if s * open_ <= s * pos.stop:
        return _put(out, 0, open_, qty, pos.stop_reason, 0.0)
    adverse = low if s > 0 else high
    if s * adverse <= s * pos.stop:
        return _put(out, 0, pos.stop, qty, pos.stop_reason, 0.0)
    # Favourable side: the partial, then the target, each at its level or a better open.
    k = 0
    favourable = high if s > 0 else low
    partial = pos.partial_price
    if not np.isnan(partial) and s * favourable >= s * partial:
        price = open_ if s * open_ >= s * partial else partial
        part = min(pos.partial_qty, qty)
        k = _put(out, k, price, part, PARTIAL_TAKE_PROFIT, 1.0)
        qty -= part
    target = pos.target
    if qty > 0 and not np.isnan(target) and s * favourable >= s * target:
        price = open_ if s * open_ >= s * target else target
        k = _put(out, k, price, qty, TAKE_PROFIT, 1.0)
    return k


@inline_jit
def touches_nb(pos: Position, open_: float, high: float, low: float) -> bool:
    """``resolve_segment_nb(pos, ...) > 0`` without writing the fills: the test of every bar
    with a position open, inlined where a call would cost more than the comparisons."""
    side = pos.side
    if side == 0:
        return False
    s = 1.0 if side > 0 else -1.0
    if s * open_ <= s * pos.stop or (pos.liq > 0 and s * open_ <= s * pos.liq):
        return True
    if pos.emergency > 0 and s * open_ <= s * pos.emergency:
        return True
    if s * (low if s > 0 else high) <= s * pos.stop:
        return True
    favourable = s * (high if s > 0 else low)
    partial, target = pos.partial_price, pos.target
    hits_partial = not np.isnan(partial) and favourable >= s * partial
    return hits_partial or (pos.qty > 0 and not np.isnan(target) and favourable >= s * target)


@step_jit
def is_ambiguous_nb(pos: Position, high: float, low: float) -> bool:
    """Both a stop and a take-profit level inside one candle: only finer data can order them."""
    side = pos.side
    if side == 0:
        return False
    s = 1.0 if side > 0 else -1.0
    adverse = low if s > 0 else high
    favourable = high if s > 0 else low
    if s * adverse > s * pos.stop:
        return False
    partial, target = pos.partial_price, pos.target
    hits_partial = not np.isnan(partial) and s * favourable >= s * partial
    hits_target = not np.isnan(target) and s * favourable >= s * target
    return hits_partial or hits_target


@step_jit
def next_levels_nb(
    pos: Position, high: float, low: float, p: ExitParams, tick_size: float
) -> tuple[float, float, int]:
    """(best price, stop, stop reason) after a candle's close, without changing the position:
    the best price tracks the candle's extreme, the stop only ever moves towards it."""
    side = pos.side
    stop, reason = pos.stop, pos.stop_reason
    if side == 0:
        return pos.best, stop, reason
    s = 1.0 if side > 0 else -1.0
    best = max(pos.best, high) if s > 0 else min(pos.best, low)
    entry = pos.entry_price
    move_pct = s * (best / entry - 1.0) * 100.0
    partial_done = pos.partial_qty > 0 and np.isnan(pos.partial_price)
    be_due = p.break_even_trigger_pct > 0 and move_pct >= p.break_even_trigger_pct
    if (be_due or (partial_done and p.break_even_after_partial)) and s * stop < s * entry:
        stop = entry
        reason = BREAK_EVEN
    if (
        p.trailing_activation_pct > 0
        and p.trailing_distance_pct > 0
        and move_pct >= p.trailing_activation_pct
    ):
        level = round_price_nb(best * (1.0 - s * p.trailing_distance_pct / 100.0), tick_size)
        if s * level > s * stop:
            stop = level
            reason = TRAILING_STOP
    return best, stop, reason


@step_jit
def update_levels_nb(
    pos: Position, high: float, low: float, p: ExitParams, tick_size: float
) -> None:
    """At a candle's close: track the best price, then raise the stop (never lower it)."""
    if pos.side == 0:
        return
    pos.best, pos.stop, pos.stop_reason = next_levels_nb(pos, high, low, p, tick_size)


@step_jit
def time_stop_due_nb(pos: Position, close_time_ms: int, p: ExitParams) -> bool:
    """Held for at least the maximum holding time at this candle's close."""
    if pos.side == 0 or p.max_holding_ms <= 0:
        return False
    due: bool = close_time_ms - pos.entry_time_ms >= p.max_holding_ms
    return due
