"""``slt backtest``: one strategy on stored history, with report.json and report.html."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from slt import __version__
from slt.adapters.store.parquet_store import ParquetStore
from slt.cli.context import app_context
from slt.cli.options import (
    End,
    MarketOption,
    ReportDir,
    StrategyFile,
    StrategyName,
    Symbol,
    Timeframe,
    TradingConfigFile,
)
from slt.cli.output import stderr, stdout
from slt.domain.clock import format_utc_ms, parse_utc_ms
from slt.domain.series import Market
from slt.domain.symbols import exchange_symbol
from slt.domain.timeframes import DAY_MS, timeframe_ms
from slt.errors import SltError
from slt.runtime.trading_config_file import load_trading_config

if TYPE_CHECKING:
    from slt.domain.strategies.base import Strategy
    from slt.domain.trading.symbol_rules import SymbolRules
    from slt.engine.trading_config import TradingConfig
    from slt.runtime.config import Settings

STAGES = ("check", "load data", "features", "signals", "simulate", "report")


def choose_strategy(name: str, file: Path | None, relaxed: bool) -> Strategy:
    from slt.adapters.strategy_file import load_strategy_file
    from slt.domain.strategies.registry import builtin_strategy

    if file is not None:
        return load_strategy_file(file)
    return builtin_strategy(name, relaxed=relaxed)


@dataclass(frozen=True)
class RunPlan:
    """What a backtest or walk-forward runs, checked before any data is read."""

    trading: TradingConfig
    strategy: Strategy
    strategy_file: Path | None
    relaxed: bool
    symbol: str
    rules: SymbolRules
    start_ms: int
    end_ms: int


def plan_run(
    settings: Settings,
    symbol: str,
    start: str,
    end: str,
    timeframe: str,
    strategy: str | None,
    strategy_file: Path | None,
    config: Path | None,
) -> RunPlan:
    """Configuration, span, symbol rules and strategy, each refused with a clear message."""
    from slt.domain.trading.symbol_rules import symbol_rules
    from slt.engine.backtest import check_against_rules

    trading = load_trading_config(config)
    relaxed = trading.strategy.relaxed or settings.relaxed_signal_mode
    chosen_file = strategy_file or (
        Path(trading.strategy.file) if trading.strategy.file and strategy is None else None
    )
    timeframe_ms(timeframe)
    start_ms, end_ms = parse_utc_ms(start), parse_utc_ms(end)
    if end_ms <= start_ms:
        raise SltError(f"--end {end} must be after --start {start}")
    key_symbol = exchange_symbol(symbol)
    rules = symbol_rules(key_symbol)
    check_against_rules(trading, rules)
    chosen = choose_strategy(strategy or trading.strategy.name, chosen_file, relaxed)
    return RunPlan(trading, chosen, chosen_file, relaxed, key_symbol, rules, start_ms, end_ms)


def backtest(
    ctx: typer.Context,
    symbol: Symbol,
    start: Annotated[str, typer.Option(help="First candle traded (UTC), e.g. 2023-01-01.")],
    end: End,
    report_dir: ReportDir,
    market: MarketOption = Market.FUTURES,
    timeframe: Timeframe = "5m",
    strategy: StrategyName = None,
    strategy_file: StrategyFile = None,
    config: TradingConfigFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Simulate a strategy on stored candles with Binance USDT-M fees, funding and margin.

    Writes REPORT_DIR/report.json and REPORT_DIR/report.html; on any error neither is written.
    """
    began = time.perf_counter()
    settings = app_context(ctx).settings()
    from slt.adapters.report.writer import write_reports
    from slt.adapters.store.backtest_data import load_backtest_data
    from slt.adapters.strategy_file import check_strategy
    from slt.engine.backtest import run_backtest
    from slt.engine.metrics import compute_metrics

    chosen = plan_run(settings, symbol, start, end, timeframe, strategy, strategy_file, config)
    trading, strat, relaxed = chosen.trading, chosen.strategy, chosen.relaxed
    chosen_file, key_symbol, rules = chosen.strategy_file, chosen.symbol, chosen.rules
    start_ms, end_ms = chosen.start_ms, chosen.end_ms
    store = ParquetStore(settings.data_dir / "market")
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=stderr(),
        transient=True,
        disable=as_json,
    )
    with progress:
        task = progress.add_task("backtest: load data", total=len(STAGES))
        progress.advance(task)
        warmup_ms = _warmup_ms(strat, timeframe)
        data, files = load_backtest_data(
            store, key_symbol, market, timeframe, start_ms, end_ms, warmup_ms, rules
        )
        progress.update(task, description="backtest: features", advance=1)
        features = None
        if strat.uses_features:
            from slt.domain.features.matrix import compute_features

            features = compute_features(data.candles)
        progress.update(task, description="backtest: signals", advance=1)
        signals = check_strategy(strat, data.candles, features)
        progress.update(task, description="backtest: simulate", advance=1)
        result, plan = run_backtest(
            data, signals.direction, signals.score, trading, futures=market is Market.FUTURES
        )
        progress.update(task, description="backtest: report", advance=1)
        metrics = compute_metrics(result)
        first_valid = None
        if features is not None:
            valid = features.open_time_ms[features.valid & (features.open_time_ms >= start_ms)]
            first_valid = format_utc_ms(int(valid[0])) if len(valid) else None
        run: dict[str, Any] = {
            "version": __version__,
            "symbol": key_symbol,
            "market": str(market),
            "timeframe": timeframe,
            "start": format_utc_ms(start_ms),
            "end": format_utc_ms(end_ms),
            "strategy": strat.name,
            "strategy_file": str(chosen_file) if chosen_file else None,
            "relaxed_signal_mode": relaxed,
            "bars_processed": len(result.equity),
            "signals": int((signals.direction[-len(result.equity) :] != 0).sum()),
            "first_valid_feature_time": first_valid,
            "funding_source": plan.source,
            "intrabar_resolution": "1m candles where both sides are touched"
            if data.minute is not None
            else "worst case (no 1m candles stored): the stop is assumed to fill first",
            "exchange_rules": {
                "tick_size": rules.tick_size,
                "step_size": rules.step_size,
                "min_notional": rules.min_notional,
                "max_leverage": rules.max_leverage,
            },
            "config": trading.model_dump(mode="json"),
            "data_files": [f.__dict__ for f in files],
            "elapsed_s": round(time.perf_counter() - began, 3),
        }
        json_path, html_path = write_reports(report_dir, result, run)
        progress.advance(task)
    if as_json:
        typer.echo(json.dumps({"metrics": metrics, "report": str(json_path)}, indent=2))
        return
    _print_summary(metrics, run, json_path, html_path)


def _warmup_ms(strategy: Strategy, timeframe: str) -> int:
    """History read before --start: the feature warm-up, or a day for candle-only strategies."""
    if not strategy.uses_features:
        return DAY_MS
    from slt.domain.features.config import FeatureConfig
    from slt.domain.features.schema import build_schema

    return build_schema(FeatureConfig.for_timeframe(timeframe)).warmup_ms()


def _print_summary(
    metrics: dict[str, Any], run: dict[str, Any], json_path: Path, html_path: Path
) -> None:
    from rich.table import Table

    table = Table(title=f"Backtest {run['strategy']} {run['symbol']} {run['timeframe']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        shown = "-" if value is None else f"{value:,.4g}" if isinstance(value, float) else value
        table.add_row(name, str(shown))
    table.add_row("bars", f"{run['bars_processed']:,}")
    table.add_row("funding", str(run["funding_source"]))
    out = stdout()
    out.print(table)
    out.print(f"Report: {json_path}\n        {html_path}")
