"""Trade objects from the engine's trade and exit rows: the one conversion, for every driver."""

from __future__ import annotations

import gc
from collections.abc import Sequence
from itertools import repeat

import numpy as np

from slt.domain.results import ExitFill, Trade
from slt.domain.trading.enums import EXIT_REASONS, side_name

_TRADE_COLUMNS = (
    "position_id", "symbol", "side", "entry_time_ms", "entry_price", "exit_time_ms",
    "exit_price", "qty", "leverage", "margin", "pnl",
)  # fmt: skip


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
    # Column by column, and tuples made by ``tuple.__new__`` directly: a NamedTuple's own
    # constructor is a Python function, and a backtest builds thousands of each.
    new = tuple.__new__
    reasons = EXIT_REASONS
    fills = list(
        map(
            new,
            repeat(ExitFill),
            zip(
                exit_rows["time_ms"].tolist(),
                exit_rows["price"].tolist(),
                exit_rows["qty"].tolist(),
                [reasons[r] for r in exit_rows["reason"].tolist()],
                exit_rows["fee"].tolist(),
                strict=True,
            ),
        )
    )
    ends = np.cumsum(rows["n_exits"]).tolist()
    starts = [0, *ends][:-1]
    exits = [tuple(fills[a:b]) for a, b in zip(starts, ends, strict=True)]
    (pid, sym, side, t0, p0, t1, p1, qty, lev, margin, pnl) = (
        rows[name].tolist() for name in _TRADE_COLUMNS
    )
    pnl_pct = (rows["pnl"] / (rows["qty"] * rows["entry_price"]) * 100.0).tolist()
    names = {s: side_name(s) for s in set(side)}
    columns = (
        pid, [symbols[s] for s in sym], [names[s] for s in side], t0, p0, t1, p1, qty, lev,
        margin, pnl, pnl_pct, rows["fees"].tolist(), rows["funding"].tolist(),
        [reasons[r] for r in rows["exit_reason"].tolist()], rows["signal_time_ms"].tolist(),
        exits,
    )  # fmt: skip
    return tuple(map(new, repeat(Trade), zip(*columns, strict=True)))
