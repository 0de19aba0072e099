"""Trade objects from the engine's trade and exit rows: the one conversion, for every driver."""

from __future__ import annotations

import gc
from collections.abc import Sequence

import numpy as np

from slt.domain.results import ExitFill, Trade
from slt.domain.trading.enums import EXIT_REASONS, side_name


def build_trades(
    symbols: Sequence[str], rows: np.ndarray, exit_rows: np.ndarray
) -> tuple[Trade, ...]:
    """Trade objects from the engine's trade and exit rows (exits follow their trade in order).

    The objects hold no cycles, so the collector is paused while thousands are made: its
    passes over the interpreter's heap otherwise cost more than building them.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        return _build_trades(symbols, rows, exit_rows)
    finally:
        if paused:
            gc.enable()


def _build_trades(
    symbols: Sequence[str], rows: np.ndarray, exit_rows: np.ndarray
) -> tuple[Trade, ...]:
    fills = list(
        zip(
            exit_rows["time_ms"].tolist(),
            exit_rows["price"].tolist(),
            exit_rows["qty"].tolist(),
            [EXIT_REASONS[r] for r in exit_rows["reason"].tolist()],
            exit_rows["fee"].tolist(),
            strict=True,
        )
    )
    trades = []
    at = 0
    columns = [
        rows[name].tolist()
        for name in (
            "position_id", "symbol", "side", "entry_time_ms", "entry_price", "exit_time_ms",
            "exit_price", "qty", "leverage", "margin", "pnl", "fees", "funding", "exit_reason",
            "signal_time_ms", "n_exits",
        )
    ]  # fmt: skip
    for (pid, sym, side, t0, p0, t1, p1, qty, lev, margin, pnl, fees, funding, reason,
         signal, n_exits) in zip(*columns, strict=True):  # fmt: skip
        exits = tuple(ExitFill(*f) for f in fills[at : at + n_exits])
        at += n_exits
        trades.append(
            Trade(
                pid, symbols[sym], side_name(side), t0, p0, t1, p1, qty, lev, margin, pnl,
                pnl / (qty * p0) * 100.0, fees, funding, EXIT_REASONS[reason], signal, exits,
            )
        )  # fmt: skip
    return tuple(trades)
