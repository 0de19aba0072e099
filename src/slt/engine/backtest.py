"""Backtest drivers' common ground: checks, the inputs of the simulated exchange (candles,
funding, 1m candles, signals of every symbol, aligned in step order), and the results built
from what the engine recorded.

Pure: callers load the data and compute the signals; nothing here reads files or clocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from slt.domain.results import BacktestResult, MarketData, SymbolBars, Trade
from slt.domain.series import Candles
from slt.domain.trading.enums import SIZING_ATR
from slt.domain.trading.margin_nb import liquidation_distance_pct_nb
from slt.domain.trading.symbol_rules import SymbolRules
from slt.engine.book import DecisionParams, SymbolTable, new_book, new_outbox, symbol_table
from slt.engine.config import EngineConfig
from slt.engine.driver_nb import Market, Run, run_market_nb
from slt.engine.pipeline import ScoredSignals
from slt.engine.trades import build_trades
from slt.engine.venue import Faults, VenueParams, new_venue
from slt.errors import ConfigError, SltError

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
FUNDING_INTERVAL_MS = 8 * 3_600_000


class BacktestInputError(SltError):
    """Inputs that cannot be backtested (misaligned signals, no candles in the span)."""


@dataclass(frozen=True)
class FundingPlan:
    time_ms: I64
    rate: F64
    mark: F64
    source: str


@dataclass(frozen=True)
class ModelChange:
    """A model in force from the first close at or after ``time_ms``."""

    time_ms: int
    version: int


def check_against_rules(config: EngineConfig, rules: SymbolRules) -> None:
    """Refuse a stop that lies beyond the emergency-close distance at the lowest leverage."""
    s, e = config.sizing, config.exits
    if s.leverage_min > rules.max_leverage:
        raise ConfigError(
            f"leverage_min {s.leverage_min:g} exceeds {rules.symbol}'s maximum "
            f"{rules.max_leverage:g}"
        )
    stop = config.stops.atr_max_pct if s.mode == SIZING_ATR else config.stops.stop_loss_pct
    notional = config.initial_equity * s.max_position_pct / 100.0 * s.leverage_min
    for side in (1, -1):
        distance = liquidation_distance_pct_nb(
            side, float(s.leverage_min), rules.brackets, notional
        )
        if stop >= e.emergency_fraction * distance:
            raise ConfigError(
                f"stop loss {stop}% lies beyond the emergency close at {e.emergency_fraction:g} of "
                f"the liquidation distance ({distance:.2f}% at {s.leverage_min:g}x): the position "
                "would be liquidated before its stop"
            )


def funding_plan(
    config: EngineConfig, data: MarketData, first_ms: int, end_ms: int, futures: bool
) -> FundingPlan:
    """Real funding rates in the span; a constant rate every 8 hours only without a file."""
    empty_i, empty_f = np.empty(0, np.int64), np.empty(0)
    if not futures or not config.funding:
        return FundingPlan(empty_i, empty_f, empty_f, "none")
    if data.funding is not None and len(data.funding):
        keep = (data.funding.time_ms > first_ms) & (data.funding.time_ms < end_ms)
        times = data.funding.time_ms[keep]
        rates = data.funding.rate[keep]
        source = f"funding file ({len(times)} rates)"
    else:
        first = (first_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS
        times = np.arange(first, end_ms, FUNDING_INTERVAL_MS, dtype=np.int64)
        rates = np.full(len(times), config.funding_fallback_rate_pct / 100.0)
        source = f"constant {config.funding_fallback_rate_pct}% per 8h (no funding file stored)"
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


@dataclass(frozen=True)
class SymbolSpan:
    """One symbol's traded candles with their signals, funding and 1m candles."""

    open_time_ms: I64
    open: F64
    high: F64
    low: F64
    close: F64
    signals: ScoredSignals
    funding: FundingPlan
    minute: Candles | None = None


@dataclass(frozen=True)
class Prepared:
    """Everything a driver runs on, checked and aligned."""

    symbols: tuple[str, ...]
    timeframe: str
    timeframe_ms: int
    market: Market
    table: SymbolTable
    decision: DecisionParams
    venue: VenueParams
    config: EngineConfig
    plans: tuple[FundingPlan, ...]
    first: tuple[int, ...]  # per symbol: index of its first traded candle
    candles: tuple[Candles, ...]
    faults: Faults = field(default_factory=Faults)


def prepare(
    datas: Sequence[MarketData],
    signals: Sequence[ScoredSignals],
    config: EngineConfig,
    *,
    futures: bool = True,
    faults: Faults | None = None,
    model_changes: Sequence[ModelChange] = (),
    follow_virtual: bool = False,
) -> Prepared:
    """Check the inputs and lay every symbol's traded span out in step order.

    ``follow_virtual``: also follow every signal's virtual position (the learner's labels);
    a backtest that keeps no learning data leaves them out."""
    if not datas:
        raise BacktestInputError("a backtest needs at least one symbol")
    if len(signals) != len(datas):
        raise BacktestInputError("one set of signals per symbol is needed")
    symbols = tuple(d.candles.key.symbol for d in datas)
    if len(set(symbols)) != len(symbols):
        raise BacktestInputError(f"a symbol is listed twice: {', '.join(symbols)}")
    timeframes = {d.candles.key.timeframe_ms for d in datas}
    if len(timeframes) != 1:
        raise BacktestInputError("every symbol of a portfolio backtest needs the same timeframe")
    tf = timeframes.pop()
    spans: list[SymbolSpan] = []
    firsts = []
    for data, sig, symbol in zip(datas, signals, symbols, strict=True):
        candles = data.candles
        if len(sig) != len(candles):
            raise BacktestInputError(f"{symbol}: signals must have one value per candle")
        check_against_rules(config, data.rules)
        first = int(np.searchsorted(candles.open_time_ms, data.start_ms))
        if first >= len(candles):
            raise BacktestInputError(f"{symbol}: no candles at or after the start")
        firsts.append(first)
        t = candles.open_time_ms[first:]
        spans.append(
            SymbolSpan(
                t, candles.open[first:], candles.high[first:], candles.low[first:],
                candles.close[first:], _slice(sig, first),
                funding_plan(config, data, int(t[0]), int(t[-1]) + tf, futures), data.minute,
            )
        )  # fmt: skip
    return Prepared(
        symbols=symbols,
        timeframe=datas[0].candles.key.timeframe,
        timeframe_ms=tf,
        market=layout(spans, tf, model_changes),
        table=symbol_table([d.rules for d in datas]),
        decision=DecisionParams(config.exits, config.sizing, config.adopt_unknown),
        venue=VenueParams(config.costs, config.exits, tf, faults or Faults(), follow_virtual),
        config=config,
        plans=tuple(s.funding for s in spans),
        first=tuple(firsts),
        candles=tuple(d.candles for d in datas),
        faults=faults or Faults(),
    )


def _slice(sig: ScoredSignals, first: int) -> ScoredSignals:
    return ScoredSignals(*(getattr(sig, f)[first:] for f in ScoredSignals.__dataclass_fields__))


def layout(
    spans: Sequence[SymbolSpan], timeframe_ms: int, model_changes: Sequence[ModelChange] = ()
) -> Market:
    """Concatenate the symbols' spans and order the bars by (open time, symbol)."""
    symbol = np.concatenate(
        [np.full(len(p.open_time_ms), s, np.int64) for s, p in enumerate(spans)]
    )
    time = np.concatenate([p.open_time_ms for p in spans]).astype(np.int64)
    # Each span is in time order, so a stable sort by time alone orders by (time, symbol),
    # and timsort merges the sorted runs in about linear time. One symbol needs no order.
    order = None if len(spans) == 1 else np.argsort(time, kind="stable")
    last = np.zeros(len(time), dtype=np.bool_)
    last[np.cumsum([len(p.open_time_ms) for p in spans]) - 1] = True

    def cat(values: list[np.ndarray], dtype: type) -> np.ndarray:
        joined = np.concatenate(values) if len(values) > 1 else values[0]
        column: np.ndarray = np.ascontiguousarray(
            joined if order is None else joined[order], dtype=dtype
        )
        # A read-only column (memory-mapped candles) would compile the kernels once more.
        return column if column.flags.writeable else column.copy()

    minutes = [p.minute for p in spans if p.minute is not None]
    offset = 0
    m_start, m_end = [], []
    for p in spans:
        start, end = minute_index(p.open_time_ms, timeframe_ms, p.minute)
        m_start.append(np.where(start >= 0, start + offset, -1))
        m_end.append(np.where(start >= 0, end + offset, -1))
        offset += len(p.minute) if p.minute is not None else 0

    def minute_column(name: str, dtype: type) -> np.ndarray:
        if not minutes:
            return np.zeros(0, dtype=dtype)
        return np.ascontiguousarray(np.concatenate([getattr(c, name) for c in minutes]), dtype)

    plans = [p.funding for p in spans]
    counts = [len(f.time_ms) for f in plans]
    f_start = np.cumsum([0, *counts[:-1]]).astype(np.int64)
    return Market(
        bar_time_ms=cat([time], np.int64),
        bar_symbol=cat([symbol], np.int64),
        open=cat([p.open for p in spans], np.float64),
        high=cat([p.high for p in spans], np.float64),
        low=cat([p.low for p in spans], np.float64),
        close=cat([p.close for p in spans], np.float64),
        last_of_symbol=cat([last], np.bool_),
        direction=cat([p.signals.direction for p in spans], np.int8),
        confidence=cat([p.signals.confidence for p in spans], np.float64),
        stop_pct=cat([p.signals.stop_pct for p in spans], np.float64),
        gate=cat([p.signals.gate for p in spans], np.bool_),
        minute_start=cat(m_start, np.int64),
        minute_end=cat(m_end, np.int64),
        minute_time_ms=minute_column("open_time_ms", np.int64),
        minute_open=minute_column("open", np.float64),
        minute_high=minute_column("high", np.float64),
        minute_low=minute_column("low", np.float64),
        funding_start=f_start,
        funding_end=f_start + np.array(counts, dtype=np.int64),
        funding_time_ms=np.ascontiguousarray(np.concatenate([f.time_ms for f in plans]), np.int64),
        funding_rate=np.ascontiguousarray(np.concatenate([f.rate for f in plans]), np.float64),
        funding_mark=np.ascontiguousarray(np.concatenate([f.mark for f in plans]), np.float64),
        model_time_ms=np.array([c.time_ms for c in model_changes], dtype=np.int64),
        model_version=np.array([c.version for c in model_changes], dtype=np.int64),
    )


def run_compiled(prepared: Prepared) -> Run:
    """The compiled driver over the prepared market; raises ``IntegrityError`` on a refusal."""
    p = prepared
    return run_market(p.market, p.table, p.decision, p.venue, p.config, p.symbols)


def run_market(
    market: Market,
    table: SymbolTable,
    decision: DecisionParams,
    venue_params: VenueParams,
    config: EngineConfig,
    symbols: Sequence[str],
) -> Run:
    from slt.engine.reducer import integrity_error

    n_symbols = len(table.tick_size)
    book = new_book(n_symbols, config.initial_equity, config.sizing.win_rate_lookback)
    venue = new_venue(n_symbols, venue_params.faults)
    n = len(market.bar_time_ms)
    out = new_outbox(trade_capacity=max(64, n // 8), exit_capacity=max(256, n // 4))
    run, _venue, _out = run_market_nb(market, table, decision, venue_params, book, venue, out)
    if run.error < 0:
        raise integrity_error(run.fault, symbols)
    return run


def exposure(bar_open_ms: I64, trades: Sequence[Trade]) -> npt.NDArray[np.bool_]:
    """Bars during which a position was open: entered before the bar closed and exited after
    it opened (an exit at a bar's very open, a gap or a market close, leaves the bar out)."""
    mask = np.zeros(len(bar_open_ms), dtype=np.bool_)
    if not trades:
        return mask
    entry = np.array([t.entry_time_ms for t in trades], dtype=np.int64)
    exit_ = np.array([t.exit_time_ms for t in trades], dtype=np.int64)
    start = np.searchsorted(bar_open_ms, entry, side="right") - 1
    end = np.searchsorted(bar_open_ms, exit_, side="left")
    delta = np.zeros(len(bar_open_ms) + 1, dtype=np.int64)
    np.add.at(delta, np.clip(start, 0, None), 1)
    np.add.at(delta, np.clip(end, 0, None), -1)
    inside: npt.NDArray[np.bool_] = np.cumsum(delta[:-1]) > 0
    return inside | mask


def result_of(
    prepared: Prepared, trades: tuple[Trade, ...], step_time_ms: I64, equity: F64
) -> BacktestResult:
    """The run as a result: per symbol its bars and exposure, per step the account's equity."""
    p = prepared
    bars = [
        (c.open_time_ms[first:], c.close[first:])
        for c, first in zip(p.candles, p.first, strict=True)
    ]
    return assemble_result(
        p.symbols, p.timeframe, p.timeframe_ms, p.config.initial_equity, bars, trades,
        step_time_ms, equity,
    )  # fmt: skip


def assemble_result(
    symbols: Sequence[str],
    timeframe: str,
    timeframe_ms: int,
    initial_equity: float,
    bars: Sequence[tuple[I64, F64]],
    trades: tuple[Trade, ...],
    step_time_ms: I64,
    equity: F64,
) -> BacktestResult:
    """A result from each symbol's traded bars (open times, closes), the trades and the
    equity of every step: the same for every driver and for a replay."""
    per_symbol = []
    step_close = np.full(len(step_time_ms), np.nan)
    in_step = np.zeros(len(step_time_ms), dtype=np.bool_)
    for s, (symbol, (times, closes)) in enumerate(zip(symbols, bars, strict=True)):
        mine = trades if len(symbols) == 1 else tuple(t for t in trades if t.symbol == symbol)
        held = exposure(times, mine)
        per_symbol.append(SymbolBars(symbol, times, closes, held))
        if len(times) == len(step_time_ms) and np.array_equal(times, step_time_ms):
            at: npt.NDArray[np.intp] | slice = slice(None)  # trades at every step
        else:
            at = np.searchsorted(step_time_ms, times)
        in_step[at] |= held
        if s == 0:
            step_close[at] = closes
    return BacktestResult(
        symbols=tuple(symbols),
        timeframe=timeframe,
        initial_equity=initial_equity,
        trades=trades,
        equity_time_ms=step_time_ms + timeframe_ms,
        equity=equity,
        in_position=in_step,
        close=step_close,
        bar_open_time_ms=step_time_ms,
        bars=tuple(per_symbol),
    )


def run_portfolio(
    datas: Sequence[MarketData],
    signals: Sequence[ScoredSignals],
    config: EngineConfig,
    *,
    futures: bool = True,
    faults: Faults | None = None,
    model_changes: Sequence[ModelChange] = (),
    follow_virtual: bool = False,
) -> tuple[BacktestResult, Prepared, Run]:
    """Every symbol from one account, with the compiled driver."""
    prepared = prepare(
        datas, signals, config, futures=futures, faults=faults, model_changes=model_changes,
        follow_virtual=follow_virtual,
    )  # fmt: skip
    result, run = run_prepared(prepared)
    return result, prepared, run


def run_prepared(prepared: Prepared) -> tuple[BacktestResult, Run]:
    """The compiled driver over a prepared market, and its result."""
    run = run_compiled(prepared)
    trades = build_trades(prepared.symbols, run.trades, run.exits)
    return result_of(prepared, trades, run.step_time_ms, run.equity), run


def run_backtest(
    data: MarketData, signals: ScoredSignals, config: EngineConfig, *, futures: bool = True
) -> tuple[BacktestResult, FundingPlan]:
    """One symbol with the compiled driver."""
    result, prepared, _run = run_portfolio([data], [signals], config, futures=futures)
    return result, prepared.plans[0]
