"""report.json: metrics, trades, the full equity curve, monthly returns and the run, as data.

The bytes depend only on the inputs (fixed key order, no timestamps of our own), so two runs of
the same backtest write identical files. Non-finite numbers become ``null``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import PurePath
from typing import Any

import numpy as np

from slt.domain.metrics import compute_metrics, monthly_returns, symbol_metrics
from slt.domain.results import BacktestResult, ExitFill, Trade

SCHEMA_VERSION = 2
TRADE_FIELDS = (
    "position_id",
    "symbol",
    "side",
    "entry_time",
    "entry_time_ms",
    "entry_price",
    "exit_time",
    "exit_time_ms",
    "exit_price",
    "quantity",
    "leverage",
    "margin",
    "pnl",
    "pnl_pct",
    "fees",
    "funding",
    "exit_reason",
    "signal_time_ms",
    "exits",
)
EXIT_FIELDS = ("time_ms", "price", "quantity", "reason", "fee")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_utc(time_ms: int) -> str:
    """``2024-01-01T00:05:00.000Z`` for a time in ms since the epoch (exact, no float rounding)."""
    moment = _EPOCH + timedelta(milliseconds=int(time_ms))
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def exit_record(fill: ExitFill) -> dict[str, Any]:
    """One exit fill as a JSON object (fields in ``EXIT_FIELDS`` order)."""
    return {
        "time_ms": int(fill.time_ms),
        "price": float(fill.price),
        "quantity": float(fill.quantity),
        "reason": fill.reason,
        "fee": float(fill.fee),
    }


def trade_record(trade: Trade) -> dict[str, Any]:
    """One closed trade as a JSON object (fields in ``TRADE_FIELDS`` order)."""
    return {
        "position_id": int(trade.position_id),
        "symbol": trade.symbol,
        "side": trade.side,
        "entry_time": iso_utc(trade.entry_time_ms),
        "entry_time_ms": int(trade.entry_time_ms),
        "entry_price": float(trade.entry_price),
        "exit_time": iso_utc(trade.exit_time_ms),
        "exit_time_ms": int(trade.exit_time_ms),
        "exit_price": float(trade.exit_price),
        "quantity": float(trade.quantity),
        "leverage": float(trade.leverage),
        "margin": float(trade.margin),
        "pnl": float(trade.pnl),
        "pnl_pct": float(trade.pnl_pct),
        "fees": float(trade.fees),
        "funding": float(trade.funding),
        "exit_reason": trade.exit_reason,
        "signal_time_ms": int(trade.signal_time_ms),
        "exits": [exit_record(fill) for fill in trade.exits],
    }


def report_document(result: BacktestResult, run: Mapping[str, object]) -> dict[str, Any]:
    """The report as plain JSON-ready Python objects (non-finite floats already ``None``)."""
    # The equity lists are already plain and finite-or-None; only the small parts are walked.
    return {
        "schema_version": SCHEMA_VERSION,
        "metrics": json_safe(compute_metrics(result)),
        "per_symbol": {b.symbol: json_safe(symbol_metrics(result, b)) for b in result.bars},
        "trades": json_safe([trade_record(t) for t in result.trades]),
        "equity": {
            "time_ms": np.asarray(result.equity_time_ms, dtype=np.int64).tolist(),
            "equity": _float_list(result.equity),
        },
        "monthly_returns": [
            {"month": month, "return_pct": json_safe(pct)} for month, pct in monthly_returns(result)
        ],
        "run": json_safe(run),
    }


def render_report_json(result: BacktestResult, run: Mapping[str, object]) -> bytes:
    """report.json's bytes: compact UTF-8 JSON with a trailing newline."""
    text = json.dumps(
        report_document(result, run),
        allow_nan=False,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return (text + "\n").encode("utf-8")


def json_safe(value: Any) -> Any:
    """Plain JSON types: NaN/inf -> None, numpy scalars and arrays -> Python, paths -> str.

    Anything else that JSON cannot hold is left for ``json.dumps`` to refuse loudly.
    """
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, Mapping):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, PurePath):
        return str(value)
    return value


def _float_list(values: Any) -> list[float | None]:
    array = np.asarray(values, dtype=np.float64)
    as_list: list[float] = array.tolist()
    if bool(np.isfinite(array).all()):
        return list(as_list)
    return [v if math.isfinite(v) else None for v in as_list]
