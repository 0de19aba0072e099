"""Rebuild a session from its journal: the same events through the same reducer give the
same state and the same commands; a backtest's step marks give back its equity curve.

A journal's header says what the session ran (symbols, rules, configuration, run id); this
module writes and reads it, and replays the entries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from slt.domain.results import BacktestResult
from slt.domain.trading.symbol_rules import SymbolRules
from slt.engine.backtest import Prepared, assemble_result
from slt.engine.book import table_rules
from slt.engine.config import EngineConfig, config_from_dict, config_to_dict
from slt.engine.decision_nb import account_equity_nb
from slt.engine.messages import Command, Event, Persist
from slt.engine.reducer import Reducer
from slt.engine.state import PortfolioState
from slt.errors import SltError


class ReplayError(SltError):
    """A journal whose header or entries cannot be replayed."""


def journal_header(
    prepared: Prepared, run_id: str, report_run: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What a backtest journal's first line holds."""
    header = session_header(
        run_id, prepared.symbols, prepared.timeframe, prepared.timeframe_ms,
        table_rules(prepared.symbols, prepared.table), prepared.config, "backtest",
    )  # fmt: skip
    header["report_run"] = report_run or {}
    return header


def session_header(
    run_id: str,
    symbols: Sequence[str],
    timeframe: str,
    timeframe_ms: int,
    rules: Sequence[SymbolRules],
    config: EngineConfig,
    mode: str,
) -> dict[str, Any]:
    """The first line of any session's journal: enough to build the same reducer again."""
    return {
        "run_id": run_id,
        "mode": mode,
        "symbols": list(symbols),
        "timeframe": timeframe,
        "timeframe_ms": timeframe_ms,
        "rules": [
            {
                "symbol": r.symbol,
                "tick_size": float(r.tick_size),
                "step_size": float(r.step_size),
                "min_notional": float(r.min_notional),
                "max_leverage": float(r.max_leverage),
                "brackets": np.asarray(r.brackets, dtype=np.float64).tolist(),
            }
            for r in rules
        ],
        "config": config_to_dict(config),
    }


@dataclass
class Replayed:
    state: PortfolioState
    commands: list[Command] = field(default_factory=list)
    events: int = 0
    result: BacktestResult | None = None  # a backtest journal's result (it has step marks)


def reducer_of(header: dict[str, Any]) -> tuple[Reducer, EngineConfig]:
    try:
        config = config_from_dict(header["config"])
        rules = [
            SymbolRules(
                r["symbol"], r["tick_size"], r["step_size"], r["min_notional"], r["max_leverage"],
                np.array(r["brackets"], dtype=np.float64),
            )
            for r in header["rules"]
        ]  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise ReplayError(f"the journal's header cannot be read: {exc!r}") from None
    return Reducer(config, rules), config


def replay(
    header: dict[str, Any], entries: Iterable[Event | dict[str, Any]], *, limit: int | None = None
) -> Replayed:
    """Apply the journal's events in order to a new state (``limit``: only the first ones)."""
    reducer, config = reducer_of(header)
    state = reducer.new_state(str(header["run_id"]))
    done = Replayed(state)
    step_time: list[int] = []
    equity: list[float] = []
    bars: dict[int, tuple[list[int], list[float]]] = {}
    for entry in entries:
        if isinstance(entry, dict):  # a step mark
            book = done.state.book
            step_time.append(int(entry["time_ms"]))
            equity.append(float(account_equity_nb(book.account, book.positions, book.marks)))
            for sym, _o, _h, _l, c in entry["bars"]:
                times, closes = bars.setdefault(int(sym), ([], []))
                times.append(int(entry["time_ms"]))
                closes.append(float(c))
            continue
        if limit is not None and done.events >= limit:
            break
        done.state, commands = reducer.step(done.state, entry)
        done.commands += commands
        done.events += 1
    if step_time and limit is None:
        symbols = tuple(header["symbols"])
        trades = tuple(c.trade for c in done.commands if isinstance(c, Persist))
        per_symbol = [
            (np.array(bars[s][0], dtype=np.int64), np.array(bars[s][1]))
            for s in range(len(symbols))
        ]
        done.result = assemble_result(
            symbols, str(header["timeframe"]), int(header["timeframe_ms"]),
            config.initial_equity, per_symbol, trades, np.array(step_time, dtype=np.int64),
            np.array(equity),
        )  # fmt: skip
    return done
