"""One place that wires each mode from the settings (Cosmic Python's ``bootstrap``).

Backtest, replay, paper and live run the same reducer; what differs is the clock, where
events come from, who executes commands, the journal and who is told. The CLI asks this module
for a wired run instead of assembling one itself; tests pass their own pieces to the engine.
The engine is imported where a mode is wired, so commands that only read the store stay quick.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from slt.adapters.store.parquet_store import ParquetStore
from slt.domain.series import Market
from slt.errors import SltError
from slt.runtime.config import Settings

if TYPE_CHECKING:
    from slt.adapters.journal import JsonlJournal
    from slt.adapters.store.backtest_data import DataFile
    from slt.domain.features.matrix import FeatureMatrix
    from slt.domain.results import BacktestResult, MarketData
    from slt.domain.strategies.base import Signals, Strategy
    from slt.domain.trading.symbol_rules import SymbolRules
    from slt.engine.backtest import FundingPlan, Prepared
    from slt.engine.config import EngineConfig
    from slt.engine.messages import Command, Event
    from slt.engine.reducer import Reducer
    from slt.engine.sim_exchange import SimulatedExchange
    from slt.engine.state import PortfolioState
    from slt.runtime.trading_config import TradingConfig

EngineName = Literal["compiled", "events"]


class NotBuiltError(SltError):
    """A mode whose parts are not built yet (the Binance adapter)."""


def open_store(settings: Settings) -> ParquetStore:
    """The market-data store every command reads and writes."""
    return ParquetStore(settings.data_dir / "market")


def new_run_id() -> str:
    """A fresh run id for a new session (the shell may read the clock; the engine never)."""
    from slt.engine.identity import run_id_from

    return run_id_from(time.time_ns() // 1_000)


@dataclass(frozen=True)
class RunPlan:
    """What a backtest or walk-forward runs, checked before any data is read."""

    trading: TradingConfig
    engine: EngineConfig
    strategy: Strategy
    strategy_file: Path | None
    relaxed: bool
    symbols: tuple[str, ...]
    rules: tuple[SymbolRules, ...]
    start_ms: int
    end_ms: int
    timeframe: str
    market: Market

    @property
    def symbol(self) -> str:
        return self.symbols[0]


def choose_strategy(name: str, file: Path | None, relaxed: bool) -> Strategy:
    from slt.adapters.strategy_file import load_strategy_file
    from slt.domain.strategies.registry import builtin_strategy

    if file is not None:
        return load_strategy_file(file)
    return builtin_strategy(name, relaxed=relaxed)


def plan_run(
    settings: Settings,
    symbols: Sequence[str],
    start: str,
    end: str,
    timeframe: str,
    strategy: str | None,
    strategy_file: Path | None,
    config: Path | None,
    market: Market = Market.FUTURES,
) -> RunPlan:
    """Configuration, span, symbols' rules and strategy, each refused with a clear message."""
    from slt.domain.clock import parse_utc_ms
    from slt.domain.symbols import exchange_symbol
    from slt.domain.timeframes import timeframe_ms
    from slt.domain.trading.symbol_rules import symbol_rules
    from slt.engine.backtest import check_against_rules
    from slt.runtime.trading_config_file import load_trading_config

    trading = load_trading_config(config)
    engine = trading.engine()
    relaxed = trading.strategy.relaxed or settings.relaxed_signal_mode
    chosen_file = strategy_file or (
        Path(trading.strategy.file) if trading.strategy.file and strategy is None else None
    )
    timeframe_ms(timeframe)
    start_ms, end_ms = parse_utc_ms(start), parse_utc_ms(end)
    if end_ms <= start_ms:
        raise SltError(f"--end {end} must be after --start {start}")
    keys = tuple(exchange_symbol(s) for s in symbols)
    if not keys:
        raise SltError("name at least one symbol")
    if len(set(keys)) != len(keys):
        raise SltError(f"a symbol is listed twice: {', '.join(keys)}")
    rules = tuple(symbol_rules(k) for k in keys)
    for r in rules:
        check_against_rules(engine, r)
    chosen = choose_strategy(strategy or trading.strategy.name, chosen_file, relaxed)
    return RunPlan(
        trading, engine, chosen, chosen_file, relaxed, keys, rules, start_ms, end_ms, timeframe,
        market,
    )  # fmt: skip


def warmup_ms(strategy: Strategy, timeframe: str) -> int:
    """History read before the start: the feature warm-up, or a day for candle-only
    strategies."""
    from slt.domain.timeframes import DAY_MS

    if not strategy.uses_features:
        return DAY_MS
    from slt.domain.features.config import FeatureConfig
    from slt.domain.features.schema import build_schema

    return build_schema(FeatureConfig.for_timeframe(timeframe)).warmup_ms()


def load_market(
    settings: Settings, plan: RunPlan, warmup: int | None = None
) -> tuple[list[MarketData], list[DataFile]]:
    """Every symbol's candles (from before the start by the warm-up), funding, mark, 1m."""
    from slt.adapters.store.backtest_data import load_backtest_data

    store = open_store(settings)
    warm = warmup_ms(plan.strategy, plan.timeframe) if warmup is None else warmup
    datas, files = [], []
    for symbol, rules in zip(plan.symbols, plan.rules, strict=True):
        data, found = load_backtest_data(
            store, symbol, plan.market, plan.timeframe, plan.start_ms, plan.end_ms, warm, rules
        )
        datas.append(data)
        files += found
    return datas, files


def strategy_signals(
    plan: RunPlan, datas: Sequence[MarketData]
) -> tuple[list[Signals], list[FeatureMatrix | None]]:
    """Features (when the strategy reads them) and checked signals, per symbol."""
    from slt.adapters.strategy_file import check_strategy
    from slt.domain.features.matrix import compute_features

    signals: list[Signals] = []
    features: list[FeatureMatrix | None] = []
    for data in datas:
        matrix = compute_features(data.candles) if plan.strategy.uses_features else None
        signals.append(check_strategy(plan.strategy, data.candles, matrix))
        features.append(matrix)
    return signals, features


@dataclass(frozen=True)
class BacktestRun:
    result: BacktestResult
    prepared: Prepared
    plans: tuple[FundingPlan, ...]
    engine: EngineName
    events: int


def run_backtest_mode(
    plan: RunPlan,
    datas: Sequence[MarketData],
    signals: Sequence[Signals],
    *,
    engine: EngineName = "compiled",
    journal: Path | None = None,
    report_run: dict[str, Any] | None = None,
) -> BacktestRun:
    """The backtest with the compiled driver, or through the reducer event by event (the
    paper and live wiring), optionally journaling every event."""
    from slt.adapters.journal import JsonlJournal
    from slt.engine.backtest import prepare, run_prepared
    from slt.engine.event_driver import EventDriver
    from slt.engine.pipeline import scored
    from slt.engine.replay import journal_header

    futures = plan.market is Market.FUTURES
    ready = [
        scored(sig, data.candles, plan.engine.stops)
        for sig, data in zip(signals, datas, strict=True)
    ]
    if engine == "compiled" and journal is not None:
        raise SltError("--journal records the events engine: add --engine events")
    prepared = prepare(datas, ready, plan.engine, futures=futures)
    if report_run is not None:
        report_run["funding_source"] = {
            symbol: funding.source
            for symbol, funding in zip(prepared.symbols, prepared.plans, strict=True)
        }
    if engine == "compiled":
        result, run = run_prepared(prepared)
        if report_run is not None:
            report_run["events"] = int(run.events)
        return BacktestRun(result, prepared, prepared.plans, engine, int(run.events))
    run_id = new_run_id()
    sink = None
    if journal is not None:
        sink = JsonlJournal(journal, journal_header(prepared, run_id, report_run))
    try:
        driver = EventDriver(prepared, run_id, journal=sink)
        driver.run()
    finally:
        if sink is not None:
            sink.close()
    outcome = driver.outcome()
    if report_run is not None:
        report_run["events"] = outcome.events
    return BacktestRun(outcome.result, prepared, prepared.plans, engine, outcome.events)


@dataclass
class TradingWiring:
    """What ``slt paper`` and ``slt live`` run: the reducer and its state, an execution
    client, the journal (whose header lets ``slt replay`` rebuild the session); the runtime
    feeds it events and routes its commands."""

    reducer: Reducer
    state: PortfolioState
    execution: SimulatedExchange
    journal: JsonlJournal | None

    def step(self, event: Event) -> tuple[list[Command], list[Event]]:
        """Journal the event, apply it, send the commands: (the commands, what comes back)."""
        if self.journal is not None:
            self.journal.append(event)
        self.state, commands = self.reducer.step(self.state, event)
        return commands, self.execution.execute(commands) if commands else []


def paper_wiring(plan: RunPlan, journal: Path | None = None) -> TradingWiring:
    """Paper trading: the simulated exchange fills the reducer's orders; never a real order.
    The journal is fsynced event by event, as live trading's will be."""
    from slt.adapters.journal import JsonlJournal
    from slt.domain.timeframes import timeframe_ms
    from slt.engine.book import symbol_table
    from slt.engine.reducer import Reducer
    from slt.engine.replay import session_header
    from slt.engine.sim_exchange import SimulatedExchange
    from slt.engine.venue import Faults, VenueParams

    reducer = Reducer(plan.engine, plan.rules)
    run_id = new_run_id()
    tf = timeframe_ms(plan.timeframe)
    params = VenueParams(plan.engine.costs, plan.engine.exits, tf, Faults(), True)
    exchange = SimulatedExchange(run_id, plan.symbols, symbol_table(plan.rules), params)
    sink = None
    if journal is not None:
        header = session_header(
            run_id, plan.symbols, plan.timeframe, tf, plan.rules, plan.engine, "paper"
        )
        sink = JsonlJournal(journal, header, fsync=True)
    return TradingWiring(reducer, reducer.new_state(run_id), exchange, sink)


def live_wiring(plan: RunPlan, journal: Path | None = None) -> TradingWiring:
    """Live trading needs the Binance adapter (WebSocket data, account cache, order gateway)."""
    raise NotBuiltError(
        "live trading needs the Binance adapter, which is not built yet; "
        "`slt backtest --engine events` runs the same reducer on history"
    )
