"""Run a backtest: align candles, signals, funding and 1m data, call the loop, build trades.

Pure: the caller loads the data and the signals; nothing here reads files or clocks.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from slt.domain.features.indicators_nb import atr_nb
from slt.domain.series import Candles, FundingRates
from slt.domain.trading.enums import EXIT_REASONS, side_name
from slt.domain.trading.margin_nb import liquidation_distance_pct_nb
from slt.domain.trading.symbol_rules import SymbolRules
from slt.engine import backtest_nb as nb
from slt.engine.results import BacktestResult, ExitFill, Trade
from slt.engine.trading_config import TradingConfig
from slt.errors import ConfigError, SltError

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
FUNDING_INTERVAL_MS = 8 * 3_600_000
ATR_PERIOD = 14


class BacktestInputError(SltError):
    """Inputs that cannot be backtested (misaligned signals, no candles in the span)."""


@dataclass(frozen=True)
class MarketData:
    """Base candles (may start before ``start_ms`` for warm-up), funding, 8h mark, 1m candles."""

    candles: Candles
    start_ms: int
    rules: SymbolRules
    funding: FundingRates | None = None
    mark: Candles | None = None
    minute: Candles | None = None


@dataclass(frozen=True)
class FundingPlan:
    time_ms: I64
    rate: F64
    mark: F64
    source: str


def check_against_rules(config: TradingConfig, rules: SymbolRules) -> None:
    """Refuse a stop that lies beyond the emergency-close distance at the lowest leverage."""
    e, r = config.exits, config.risk
    if r.leverage_min > rules.max_leverage:
        raise ConfigError(
            f"leverage_min {r.leverage_min} exceeds {rules.symbol}'s maximum {rules.max_leverage}"
        )
    stop = e.stop_loss_pct if r.sizing != "atr" else r.atr_stop_max_pct
    notional = config.initial_equity * r.max_position_pct / 100.0 * r.leverage_min
    for side in (1, -1):
        distance = liquidation_distance_pct_nb(
            side, float(r.leverage_min), rules.brackets, notional
        )
        if stop >= e.emergency_fraction * distance:
            raise ConfigError(
                f"stop loss {stop}% lies beyond the emergency close at {e.emergency_fraction:g} of "
                f"the liquidation distance ({distance:.2f}% at {r.leverage_min}x): the position "
                "would be liquidated before its stop"
            )


def funding_plan(
    config: TradingConfig, data: MarketData, first_ms: int, end_ms: int, futures: bool
) -> FundingPlan:
    """Real funding rates in the span; a constant rate every 8 hours only without a file."""
    empty_i, empty_f = np.empty(0, np.int64), np.empty(0)
    if not futures or not config.costs.funding:
        return FundingPlan(empty_i, empty_f, empty_f, "none")
    if data.funding is not None and len(data.funding):
        keep = (data.funding.time_ms > first_ms) & (data.funding.time_ms < end_ms)
        times = data.funding.time_ms[keep]
        rates = data.funding.rate[keep]
        source = f"funding file ({len(times)} rates)"
    else:
        first = (first_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS
        times = np.arange(first, end_ms, FUNDING_INTERVAL_MS, dtype=np.int64)
        rates = np.full(len(times), config.costs.funding_fallback_rate_pct / 100.0)
        source = (
            f"constant {config.costs.funding_fallback_rate_pct}% per 8h (no funding file stored)"
        )
    mark = np.full(len(times), np.nan)
    if data.mark is not None and len(data.mark):
        pos = np.searchsorted(data.mark.open_time_ms, times)
        ok = pos < len(data.mark)
        hit = ok.copy()
        hit[ok] = data.mark.open_time_ms[pos[ok]] == times[ok]
        mark[hit] = data.mark.open[pos[hit]]
    return FundingPlan(np.ascontiguousarray(times), np.ascontiguousarray(rates), mark, source)


def minute_index(base_open_ms: I64, timeframe_ms: int, minute: Candles | None) -> tuple[I64, I64]:
    """For each base candle, the range of 1m candles inside it (-1 when none are stored)."""
    n = len(base_open_ms)
    if minute is None or len(minute) == 0:
        return np.full(n, -1, np.int64), np.full(n, -1, np.int64)
    start = np.searchsorted(minute.open_time_ms, base_open_ms).astype(np.int64)
    end = np.searchsorted(minute.open_time_ms, base_open_ms + timeframe_ms).astype(np.int64)
    expected = timeframe_ms // 60_000
    start[(end - start) != expected] = -1  # partial minute coverage: fall back to worst case
    return start, end


def stop_distances(config: TradingConfig, candles: Candles) -> F64:
    """Stop distance per candle in percent: fixed, or a multiple of ATR(14) within bounds."""
    r = config.risk
    if r.sizing != "atr":
        return np.full(len(candles), config.exits.stop_loss_pct)
    atr = atr_nb(candles.high, candles.low, candles.close, ATR_PERIOD)
    pct = r.atr_stop_multiple * atr / candles.close * 100.0
    return np.clip(pct, r.atr_stop_min_pct, r.atr_stop_max_pct)  # NaN stays NaN: no trade


@dataclass(frozen=True)
class SimulationInputs:
    """The traded span's arrays, aligned, contiguous and typed as the loop takes them."""

    timeframe_ms: int
    open_time_ms: I64
    open: F64
    high: F64
    low: F64
    close: F64
    direction: npt.NDArray[np.int8]
    confidence: F64
    stop_pct: F64
    funding: FundingPlan
    minute_start: I64
    minute_end: I64


def simulation_inputs(
    data: MarketData,
    direction: npt.NDArray[np.int8],
    score: F64,
    config: TradingConfig,
    futures: bool,
) -> SimulationInputs:
    """Checks, then the span from ``data.start_ms``; confidence = 0.5 + score / 2 until a
    model exists (score 0.5 -> Kelly 1x)."""
    candles = data.candles
    if len(direction) != len(candles) or len(score) != len(candles):
        raise BacktestInputError("signals must have one value per candle")
    check_against_rules(config, data.rules)
    first = int(np.searchsorted(candles.open_time_ms, data.start_ms))
    if first >= len(candles):
        raise BacktestInputError("no candles at or after the start of the backtest")
    tf = candles.key.timeframe_ms
    t: I64 = np.ascontiguousarray(candles.open_time_ms[first:])
    o, h, lo, c, conf, stops = (
        np.ascontiguousarray(a[first:], dtype=np.float64)
        for a in (
            candles.open,
            candles.high,
            candles.low,
            candles.close,
            0.5 + np.asarray(score, dtype=np.float64) / 2.0,
            stop_distances(config, candles),
        )
    )
    minute_start, minute_end = minute_index(t, tf, data.minute)
    return SimulationInputs(
        timeframe_ms=tf,
        open_time_ms=t,
        open=o,
        high=h,
        low=lo,
        close=c,
        direction=np.ascontiguousarray(direction[first:], dtype=np.int8),
        confidence=conf,
        stop_pct=stops,
        funding=funding_plan(config, data, int(t[0]), int(t[-1]) + tf, futures),
        minute_start=minute_start,
        minute_end=minute_end,
    )


def run_backtest(
    data: MarketData,
    direction: npt.NDArray[np.int8],
    score: F64,
    config: TradingConfig,
    *,
    futures: bool = True,
) -> tuple[BacktestResult, FundingPlan]:
    """Simulate from ``data.start_ms`` with the compiled loop; signals are per candle."""
    x = simulation_inputs(data, direction, score, config, futures)
    minute = data.minute
    empty_t, empty = np.empty(0, np.int64), np.empty(0)
    trades, exits, equity, in_position = nb.backtest_nb(
        x.open_time_ms,
        x.open,
        x.high,
        x.low,
        x.close,
        x.timeframe_ms,
        x.direction,
        x.confidence,
        x.stop_pct,
        x.funding.time_ms,
        x.funding.rate,
        x.funding.mark,
        x.minute_start,
        x.minute_end,
        minute.open_time_ms if minute is not None else empty_t,
        minute.open if minute is not None else empty,
        minute.high if minute is not None else empty,
        minute.low if minute is not None else empty,
        config.exit_params(),
        config.cost_params(),
        config.sizing_params(),
        data.rules.brackets,
        data.rules.tick_size,
        data.rules.step_size,
        data.rules.min_notional,
        config.initial_equity,
    )
    symbol = data.candles.key.symbol
    result = BacktestResult(
        symbol=symbol,
        timeframe=data.candles.key.timeframe,
        initial_equity=config.initial_equity,
        trades=build_trades(symbol, trades, exits),
        equity_time_ms=x.open_time_ms + x.timeframe_ms,
        equity=equity,
        in_position=in_position,
        close=x.close,
        bar_open_time_ms=x.open_time_ms,
    )
    return result, x.funding


def build_trades(symbol: str, rows: F64, exit_rows: F64) -> tuple[Trade, ...]:
    """Trade objects from the loop's rows (``tolist`` first: numpy scalars are slow to index).

    The objects hold no cycles, so the collector is paused while thousands are made: its
    passes over the interpreter's heap otherwise cost more than building them.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        return _build_trades(symbol, rows, exit_rows)
    finally:
        if paused:
            gc.enable()


def _build_trades(symbol: str, rows: F64, exit_rows: F64) -> tuple[Trade, ...]:
    by_id: dict[int, list[ExitFill]] = {}
    for pid, time_ms, price, qty, reason, fee in exit_rows.tolist():
        by_id.setdefault(int(pid), []).append(
            ExitFill(int(time_ms), price, qty, EXIT_REASONS[int(reason)], fee)
        )
    trades = []
    for row in rows.tolist():
        pid = int(row[nb.T_ID])
        pnl = row[nb.T_PNL]
        trades.append(
            Trade(
                pid,
                symbol,
                side_name(int(row[nb.T_SIDE])),
                int(row[nb.T_ENTRY_TIME]),
                row[nb.T_ENTRY_PRICE],
                int(row[nb.T_EXIT_TIME]),
                row[nb.T_EXIT_PRICE],
                row[nb.T_QTY],
                row[nb.T_LEVERAGE],
                row[nb.T_MARGIN],
                pnl,
                pnl / (row[nb.T_QTY] * row[nb.T_ENTRY_PRICE]) * 100.0,
                row[nb.T_FEES],
                row[nb.T_FUNDING],
                EXIT_REASONS[int(row[nb.T_EXIT_REASON])],
                int(row[nb.T_SIGNAL_TIME]),
                tuple(by_id.get(pid, [])),
            )
        )
    return tuple(trades)
