"""The portfolio state the decision kernels work on, as NamedTuples of typed arrays.

``Book`` is the whole state of the account: one wallet, a position, a mark price, an order
table, recent trade ids and an exit log per symbol, and the win history. ``Outbox`` is where a
kernel writes what it decided. Both are plain arrays, so the compiled backtest and the Python
reducer hand the same objects to the same kernels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from slt.domain.trading.params import ExitParams, SizingParams
from slt.domain.trading.position_nb import POSITION_DT
from slt.domain.trading.symbol_rules import SymbolRules
from slt.engine.records import (
    ACCOUNT_DT,
    COMMAND_DT,
    EXIT_DT,
    MAX_EXIT_FILLS,
    MAX_ORDERS,
    ORDER_DT,
    TRADE_DT,
    TRADE_ID_RING,
)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Records = np.ndarray  # a structured array of one of the engine's record types

# Room every event needs in the outbox before a kernel touches the state.
COMMANDS_PER_EVENT = 48
COMMAND_CAPACITY = 256


class Book(NamedTuple):
    account: Records  # ACCOUNT_DT[1]
    positions: Records  # POSITION_DT[symbols]
    marks: F64  # last close per symbol: unrealised PnL and equity are marked to it
    orders: Records  # ORDER_DT[symbols, MAX_ORDERS]
    trade_ids: I64  # [symbols, TRADE_ID_RING]: recent exchange trade ids, to spot duplicates
    trade_id_count: I64  # [symbols]: trade ids seen (the ring's cursor is count % ring)
    exit_log: Records  # EXIT_DT[symbols, MAX_EXIT_FILLS]: exit fills of the open position
    wins: F64  # [win_rate_lookback]: 1.0 won, 0.0 lost, a ring


class Outbox(NamedTuple):
    commands: Records  # COMMAND_DT
    trades: Records  # TRADE_DT: closed positions
    exits: Records  # EXIT_DT: their exit fills, in trade order
    counts: I64  # [commands, trades, exits] written
    fault: I64  # [code, symbol, order seq, status] of a refused event


class SymbolTable(NamedTuple):
    """Exchange rules of every symbol of the account, by symbol index."""

    tick_size: F64
    step_size: F64
    min_notional: F64
    brackets: F64  # [symbols, rows, 5], padded; the first n_brackets rows are the table
    n_brackets: I64


class DecisionParams(NamedTuple):
    exits: ExitParams
    sizing: SizingParams
    adopt_unknown: bool  # a position the core did not open: protect it (True) or flatten it


def symbol_table(rules: Sequence[SymbolRules]) -> SymbolTable:
    rows = max(len(r.brackets) for r in rules)
    brackets = np.zeros((len(rules), rows, 5))
    for i, r in enumerate(rules):
        brackets[i, : len(r.brackets)] = r.brackets
    return SymbolTable(
        np.array([r.tick_size for r in rules], dtype=np.float64),
        np.array([r.step_size for r in rules], dtype=np.float64),
        np.array([r.min_notional for r in rules], dtype=np.float64),
        brackets,
        np.array([len(r.brackets) for r in rules], dtype=np.int64),
    )


def table_rules(symbols: Sequence[str], t: SymbolTable) -> list[SymbolRules]:
    """The symbols' exchange rules back from their table (``symbol_table``'s inverse)."""
    return [
        SymbolRules(
            symbol, float(t.tick_size[s]), float(t.step_size[s]), float(t.min_notional[s]),
            float(t.brackets[s, 0, 2]), t.brackets[s, : t.n_brackets[s]].copy(),
        )
        for s, symbol in enumerate(symbols)
    ]  # fmt: skip


def new_book(n_symbols: int, initial_equity: float, win_rate_lookback: int) -> Book:
    account = np.zeros(1, dtype=ACCOUNT_DT)
    account[0]["wallet"] = initial_equity
    account[0]["next_order_seq"] = 1
    account[0]["next_position_id"] = 0
    account[0]["reported_equity"] = np.nan
    return Book(
        account=account,
        positions=np.zeros(n_symbols, dtype=POSITION_DT),
        marks=np.zeros(n_symbols),
        orders=np.zeros((n_symbols, MAX_ORDERS), dtype=ORDER_DT),
        trade_ids=np.full((n_symbols, TRADE_ID_RING), -1, dtype=np.int64),
        trade_id_count=np.zeros(n_symbols, dtype=np.int64),
        exit_log=np.zeros((n_symbols, MAX_EXIT_FILLS), dtype=EXIT_DT),
        wins=np.zeros(max(win_rate_lookback, 1)),
    )


def new_outbox(trade_capacity: int = 64, exit_capacity: int = 4 * MAX_EXIT_FILLS) -> Outbox:
    return Outbox(
        commands=np.zeros(COMMAND_CAPACITY, dtype=COMMAND_DT),
        trades=np.zeros(trade_capacity, dtype=TRADE_DT),
        exits=np.zeros(exit_capacity, dtype=EXIT_DT),
        counts=np.zeros(3, dtype=np.int64),
        fault=np.zeros(4, dtype=np.int64),
    )


def copy_book(book: Book) -> Book:
    return Book._make(a.copy() for a in book)


def books_equal(a: Book, b: Book) -> bool:
    """Field by field, NaN equal to NaN (an unset take-profit is NaN in both)."""
    return all(_arrays_equal(x, y) for x, y in zip(a, b, strict=True))


def _arrays_equal(x: np.ndarray, y: np.ndarray) -> bool:
    if x.dtype != y.dtype or x.shape != y.shape:
        return False
    if x.dtype.names is None:
        return bool(np.array_equal(x, y, equal_nan=x.dtype.kind == "f"))
    return all(_arrays_equal(x[name], y[name]) for name in x.dtype.names)
