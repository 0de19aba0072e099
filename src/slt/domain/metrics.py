"""Performance metrics of a backtest, from its equity curve and its closed trades.

Pure numpy, nothing rounded: reports format numbers, this module only computes them.
Definitions are in docs/report.md; a metric that is undefined for the data is ``None``.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from slt.domain.results import BacktestResult, SymbolBars

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
DAY_MS = 86_400_000
DAYS_PER_YEAR = 365.25
# Crypto trades every day of the year, so daily ratios are annualised with sqrt(365).
SHARPE_PERIODS_PER_YEAR = 365

METRIC_KEYS = (
    "total_return_pct",
    "cagr_pct",
    "sharpe",
    "sortino",
    "max_drawdown_pct",
    "profit_factor",
    "win_rate",
    "exposure_pct",
    "n_trades",
    "fees_paid",
    "funding_paid",
)

Metric = float | int | None


def compute_metrics(result: BacktestResult) -> dict[str, Metric]:
    """Every metric of the report, keyed as in ``METRIC_KEYS`` (always in that order)."""
    equity = np.asarray(result.equity, dtype=np.float64)
    initial = float(result.initial_equity)
    final = float(equity[-1]) if len(equity) else initial
    daily = daily_returns(result)
    pnl = np.array([t.pnl for t in result.trades], dtype=np.float64)
    wins = pnl[pnl > 0]
    losses = pnl[pnl < 0]
    in_position = np.asarray(result.in_position, dtype=np.bool_)
    with_start = np.concatenate(([initial], equity))
    return {
        "total_return_pct": (final / initial - 1.0) * 100.0,
        "cagr_pct": _cagr_pct(result, initial, final),
        "sharpe": _sharpe(daily),
        "sortino": _sortino(daily),
        "max_drawdown_pct": float(np.max(drawdown_pct(with_start))),
        "profit_factor": float(wins.sum() / -losses.sum()) if len(losses) else None,
        "win_rate": len(wins) / len(pnl) if len(pnl) else None,
        "exposure_pct": float(in_position.mean() * 100.0) if len(in_position) else None,
        "n_trades": len(result.trades),
        "fees_paid": float(sum(t.fees for t in result.trades)),
        "funding_paid": float(sum(t.funding for t in result.trades)),
    }


SYMBOL_METRIC_KEYS = (
    "n_trades",
    "win_rate",
    "profit_factor",
    "net_pnl",
    "net_pnl_pct_of_initial",
    "avg_trade_pnl_pct",
    "long_trades",
    "short_trades",
    "exposure_pct",
    "fees_paid",
    "funding_paid",
)


def symbol_metrics(result: BacktestResult, bars: SymbolBars) -> dict[str, Metric]:
    """One symbol's share of a portfolio run, from its trades and bars (keys as in
    ``SYMBOL_METRIC_KEYS``). Equity belongs to the account, so ratios of returns over time
    (Sharpe, drawdown) are the portfolio's only."""
    trades = [t for t in result.trades if t.symbol == bars.symbol]
    pnl = np.array([t.pnl for t in trades], dtype=np.float64)
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    held = np.asarray(bars.in_position, dtype=np.bool_)
    return {
        "n_trades": len(trades),
        "win_rate": len(wins) / len(pnl) if len(pnl) else None,
        "profit_factor": float(wins.sum() / -losses.sum()) if len(losses) else None,
        "net_pnl": float(pnl.sum()),
        "net_pnl_pct_of_initial": float(pnl.sum()) / float(result.initial_equity) * 100.0,
        "avg_trade_pnl_pct": float(np.mean([t.pnl_pct for t in trades])) if trades else None,
        "long_trades": sum(1 for t in trades if t.side == "long"),
        "short_trades": sum(1 for t in trades if t.side == "short"),
        "exposure_pct": float(held.mean() * 100.0) if len(held) else None,
        "fees_paid": float(sum(t.fees for t in trades)),
        "funding_paid": float(sum(t.funding for t in trades)),
    }


def drawdown_pct(equity: npt.ArrayLike) -> F64:
    """How far each point is below the running peak so far, as a positive percent of that peak."""
    values = np.asarray(equity, dtype=np.float64)
    if len(values) == 0:
        return np.zeros(0, dtype=np.float64)
    peak = np.maximum.accumulate(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray((peak - values) / peak * 100.0, dtype=np.float64)


def daily_returns(result: BacktestResult) -> F64:
    """Simple returns between UTC day ends (last bar close of each day), from the initial equity."""
    return _period_returns(result, _day_index(result.bar_open_time_ms))[1]


def monthly_returns(result: BacktestResult) -> list[tuple[str, float]]:
    """("YYYY-MM", return in percent) per UTC month with bars, chained from the initial equity."""
    opens = np.asarray(result.bar_open_time_ms, dtype=np.int64)
    months = opens.astype("datetime64[ms]").astype("datetime64[M]").astype(np.int64)
    labels, returns = _period_returns(result, months)
    return [
        (str(np.datetime64(int(m), "M")), float(r) * 100.0)
        for m, r in zip(labels, returns, strict=True)
    ]


def _day_index(bar_open_time_ms: npt.ArrayLike) -> I64:
    # A bar belongs to the UTC day it opens in: the bar opening 23:55 closes that day at 24:00.
    return np.asarray(bar_open_time_ms, dtype=np.int64) // DAY_MS


def _period_returns(result: BacktestResult, period: I64) -> tuple[I64, F64]:
    """Period labels and returns from the equity at each period's last bar (after the initial)."""
    equity = np.asarray(result.equity, dtype=np.float64)
    if len(equity) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    last_of_period = np.flatnonzero(np.diff(period) != 0)
    ends = np.append(last_of_period, len(equity) - 1)
    points = np.concatenate(([float(result.initial_equity)], equity[ends]))
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = points[1:] / points[:-1] - 1.0
    return period[ends], np.asarray(returns, dtype=np.float64)


def _cagr_pct(result: BacktestResult, initial: float, final: float) -> float | None:
    if len(result.equity) == 0:
        return None
    span_ms = int(result.equity_time_ms[-1]) - int(result.bar_open_time_ms[0])
    if span_ms < DAY_MS:
        return None
    years = span_ms / DAY_MS / DAYS_PER_YEAR
    growth = final / initial
    if growth <= 0.0:
        return -100.0
    return float((growth ** (1.0 / years) - 1.0) * 100.0)


def _sharpe(daily: F64) -> float | None:
    if len(daily) < 2:
        return None
    deviation = float(np.std(daily, ddof=1))
    if deviation == 0.0 or not math.isfinite(deviation):
        return None
    return float(np.mean(daily)) / deviation * math.sqrt(SHARPE_PERIODS_PER_YEAR)


def _sortino(daily: F64) -> float | None:
    if len(daily) < 2:
        return None
    downside = math.sqrt(float(np.mean(np.minimum(daily, 0.0) ** 2)))
    if downside == 0.0 or not math.isfinite(downside):
        return None
    return float(np.mean(daily)) / downside * math.sqrt(SHARPE_PERIODS_PER_YEAR)
