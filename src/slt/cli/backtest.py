"""``slt backtest``: strategies on stored history, one account over one or more symbols, with
report.json and report.html."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from slt import __version__
from slt.cli.context import app_context
from slt.cli.options import (
    End,
    MarketOption,
    ReportDir,
    StrategyFile,
    StrategyName,
    Timeframe,
    TradingConfigFile,
)
from slt.cli.output import stderr, stdout
from slt.domain.clock import format_utc_ms
from slt.domain.series import Market
from slt.errors import SltError

if TYPE_CHECKING:
    from slt.adapters.store.backtest_data import DataFile
    from slt.domain.features.matrix import FeatureMatrix
    from slt.domain.results import MarketData
    from slt.domain.strategies.base import Signals
    from slt.runtime.bootstrap import RunPlan

STAGES = ("check", "load data", "features and signals", "simulate", "report")


def symbols_from(symbol: str | None, symbols: str | None) -> list[str]:
    """``--symbol X`` or ``--symbols X,Y`` (not both, one of them)."""
    if symbol and symbols:
        raise SltError("give --symbol or --symbols, not both")
    listed = [s.strip() for s in (symbols or symbol or "").split(",") if s.strip()]
    if not listed:
        raise SltError("name the symbol to trade: --symbol BTCUSDT or --symbols BTCUSDT,ETHUSDT")
    return listed


def backtest(
    ctx: typer.Context,
    start: Annotated[str, typer.Option(help="First candle traded (UTC), e.g. 2023-01-01.")],
    end: End,
    report_dir: ReportDir,
    symbol: Annotated[str | None, typer.Option("--symbol", help="BTCUSDT or BTC/USDT:USDT.")] = (
        None
    ),
    symbols: Annotated[
        str | None,
        typer.Option("--symbols", help="Several symbols traded from one account: BTCUSDT,ETHUSDT."),
    ] = None,
    market: MarketOption = Market.FUTURES,
    timeframe: Timeframe = "5m",
    strategy: StrategyName = None,
    strategy_file: StrategyFile = None,
    config: TradingConfigFile = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="compiled (fast) or events: the same engine through the reducer event by event, "
            "as paper and live trading run it.",
        ),
    ] = "compiled",
    journal: Annotated[
        Path | None,
        typer.Option("--journal", help="With --engine events: write every event to this file."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Simulate a strategy on stored candles with Binance USDT-M fees, funding and margin.

    Writes REPORT_DIR/report.json and REPORT_DIR/report.html; on any error neither is written.
    """
    began = time.perf_counter()
    settings = app_context(ctx).settings()
    from slt.adapters.report.writer import write_reports
    from slt.runtime.bootstrap import load_market, plan_run, run_backtest_mode, strategy_signals

    if engine not in ("compiled", "events"):
        raise SltError(f"--engine must be compiled or events, not {engine!r}")
    listed = symbols_from(symbol, symbols)
    plan = plan_run(
        settings, listed, start, end, timeframe, strategy, strategy_file, config, market
    )
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
        datas, files = load_market(settings, plan)
        progress.update(task, description="backtest: features and signals", advance=1)
        signals, features = strategy_signals(plan, datas)
        progress.update(task, description="backtest: simulate", advance=1)
        run_info = run_record(plan, datas, files, features, signals)
        done = run_backtest_mode(
            plan, datas, signals, engine=engine, journal=journal,  # type: ignore[arg-type]
            report_run=run_info,
        )  # fmt: skip
        progress.update(task, description="backtest: report", advance=1)
        run_info["elapsed_s"] = round(time.perf_counter() - began, 3)
        json_path, html_path = write_reports(report_dir, done.result, run_info)
        progress.advance(task)
    from slt.domain.metrics import compute_metrics, symbol_metrics

    metrics = compute_metrics(done.result)
    per_symbol = {b.symbol: symbol_metrics(done.result, b) for b in done.result.bars}
    if as_json:
        shown = {"metrics": metrics, "per_symbol": per_symbol, "report": str(json_path)}
        typer.echo(json.dumps(shown, indent=2))
        return
    _print_summary(metrics, run_info, json_path, html_path)
    if len(per_symbol) > 1:
        _print_per_symbol(per_symbol)
    stdout().print(f"Engine: {engine}")


def run_record(
    plan: RunPlan,
    datas: list[MarketData],
    files: list[DataFile],
    features: list[FeatureMatrix | None],
    signals: list[Signals],
) -> dict[str, Any]:
    """The report's ``run`` section: what ran, on which data, with which settings (the
    simulation adds its funding sources and event count; timing comes last)."""
    first_valid = None
    matrix = features[0]
    if matrix is not None:
        valid = matrix.open_time_ms[matrix.valid & (matrix.open_time_ms >= plan.start_ms)]
        first_valid = format_utc_ms(int(valid[0])) if len(valid) else None
    return {
        "version": __version__,
        "symbol": ",".join(plan.symbols),
        "symbols": list(plan.symbols),
        "market": str(plan.market),
        "timeframe": plan.timeframe,
        "start": format_utc_ms(plan.start_ms),
        "end": format_utc_ms(plan.end_ms),
        "strategy": plan.strategy.name,
        "strategy_file": str(plan.strategy_file) if plan.strategy_file else None,
        "relaxed_signal_mode": plan.relaxed,
        "bars_processed": {
            d.candles.key.symbol: int((d.candles.open_time_ms >= d.start_ms).sum()) for d in datas
        },
        "signals": {
            d.candles.key.symbol: int(
                (sig.direction[d.candles.open_time_ms >= d.start_ms] != 0).sum()
            )
            for d, sig in zip(datas, signals, strict=True)
        },
        "first_valid_feature_time": first_valid,
        "intrabar_resolution": {
            d.candles.key.symbol: "1m candles where both sides are touched"
            if d.minute is not None
            else "worst case (no 1m candles stored): the stop is assumed to fill first"
            for d in datas
        },
        "exchange_rules": {
            r.symbol: {
                "tick_size": r.tick_size,
                "step_size": r.step_size,
                "min_notional": r.min_notional,
                "max_leverage": r.max_leverage,
            }
            for r in plan.rules
        },
        "config": plan.trading.model_dump(mode="json"),
        "data_files": [f.__dict__ for f in files],
    }


def _print_per_symbol(per_symbol: dict[str, dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title="Per symbol (one account)")
    table.add_column("metric")
    for symbol in per_symbol:
        table.add_column(symbol, justify="right")
    for name in next(iter(per_symbol.values())):
        cells = [per_symbol[symbol][name] for symbol in per_symbol]
        table.add_row(name, *(_shown(v) for v in cells))
    stdout().print(table)


def _shown(value: object) -> str:
    return "-" if value is None else f"{value:,.4g}" if isinstance(value, float) else str(value)


def _print_summary(
    metrics: dict[str, Any], run: dict[str, Any], json_path: Path, html_path: Path
) -> None:
    from rich.table import Table

    table = Table(title=f"Backtest {run['strategy']} {run['symbol']} {run['timeframe']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, _shown(value))
    table.add_row("bars", f"{sum(run['bars_processed'].values()):,}")
    table.add_row("events", f"{run['events']:,}")
    out = stdout()
    out.print(table)
    out.print(f"Report: {json_path}\n        {html_path}")
