"""``slt walkforward``: learn from virtual trades fold by fold, trade each fold out of sample,
and report the model's scores beside the filtered, unfiltered and buy-and-hold results."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from slt import __version__
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
from slt.cli.output import stdout
from slt.domain.clock import format_utc_ms
from slt.domain.series import Market

if TYPE_CHECKING:
    from slt.domain.learning_records import FeatureSchemaRecord
    from slt.domain.records import VirtualTrade
    from slt.engine.walkforward import WalkForwardResult
    from slt.runtime.config import Settings


def walkforward(
    ctx: typer.Context,
    symbol: Symbol,
    start: Annotated[str, typer.Option(help="Learning starts here (UTC), e.g. 2023-01-01.")],
    end: End,
    report_dir: ReportDir,
    market: MarketOption = Market.FUTURES,
    timeframe: Timeframe = "5m",
    train_days: Annotated[
        int, typer.Option("--train-days", min=1, help="Days of virtual trades each fold learns.")
    ] = 60,
    test_days: Annotated[
        int, typer.Option("--test-days", min=1, help="Days each fold trades out of sample.")
    ] = 14,
    strategy: StrategyName = None,
    strategy_file: StrategyFile = None,
    config: TradingConfigFile = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the models.")] = 0,
    trials: Annotated[
        int,
        typer.Option(
            "--trials", min=1, help="Configurations you tried before this one (deflated Sharpe)."
        ),
    ] = 1,
    store_trades: Annotated[
        bool,
        typer.Option(
            "--store",
            help="Store the closed virtual trades in the database for `slt model train` and "
            "retraining (only those newer than the symbol's newest stored one).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the overall result as JSON.")] = (
        False
    ),
) -> None:
    """Walk forward: each fold's model learns only from virtual trades closed before it.

    Writes REPORT_DIR/report.json and REPORT_DIR/report.html (both or neither).
    """
    import structlog

    from slt.adapters.report.report_json import json_safe
    from slt.adapters.report.walkforward_html import render_walkforward_html
    from slt.adapters.report.writer import write_report_pair
    from slt.adapters.strategy_file import check_strategy
    from slt.domain.features.config import FeatureConfig
    from slt.domain.features.matrix import compute_features
    from slt.domain.features.schema import build_schema
    from slt.domain.learning_records import FeatureSchemaRecord
    from slt.engine.walkforward import WalkForwardSettings, run_walkforward
    from slt.engine.walkforward_report import walkforward_report
    from slt.learning.model import ModelParams
    from slt.learning.validation import walk_forward_folds
    from slt.runtime.bootstrap import load_market, plan_run

    began = time.perf_counter()
    settings = app_context(ctx).settings()
    log = structlog.get_logger("slt.learning")
    chosen = plan_run(
        settings, [symbol], start, end, timeframe, strategy, strategy_file, config, market
    )
    walk_forward_folds(chosen.start_ms, chosen.end_ms, train_days, test_days)  # none: fail now
    trading, strat, relaxed = chosen.trading, chosen.strategy, chosen.relaxed
    chosen_file, key_symbol = chosen.strategy_file, chosen.symbol
    start_ms, end_ms = chosen.start_ms, chosen.end_ms
    feature_config = FeatureConfig.for_timeframe(timeframe)
    (data,), files = load_market(settings, chosen, build_schema(feature_config).warmup_ms())
    features = compute_features(data.candles, feature_config)
    signals = check_strategy(strat, data.candles, features)
    wf_settings = WalkForwardSettings(
        train_days=train_days, test_days=test_days, model=ModelParams(seed=seed), trials=trials
    )

    def progress(_event: str, fields: dict[str, Any]) -> None:
        log.info(f"Model learning count: {fields['learning_count']} samples", business=True,
                 fold=fields["fold"], of=fields["of"])  # fmt: skip
        log.info(f"Model cumulative score: {fields['cumulative_score']:.4f}", business=True,
                 fold=fields["fold"], of=fields["of"])  # fmt: skip

    result = run_walkforward(
        data, features, feature_config, signals, chosen.engine, wf_settings, end_ms, progress
    )
    run: dict[str, Any] = {
        "version": __version__,
        "symbol": key_symbol,
        "market": str(market),
        "timeframe": timeframe,
        "start": format_utc_ms(start_ms),
        "end": format_utc_ms(end_ms),
        "train_days": train_days,
        "test_days": test_days,
        "strategy": strat.name,
        "strategy_file": str(chosen_file) if chosen_file else None,
        "relaxed_signal_mode": relaxed,
        "seed": seed,
        "trials": trials,
        "feature_schema_hash": features.schema.hash,
        "model_params": wf_settings.model.__dict__,
        "config": trading.model_dump(mode="json"),
        "data_files": [f.__dict__ for f in files],
        "elapsed_s": round(time.perf_counter() - began, 3),
    }
    report = json_safe(walkforward_report(result, run))
    text = json.dumps(report, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    json_path, html_path = write_report_pair(
        report_dir, (text + "\n").encode(), render_walkforward_html(report).encode()
    )
    stored = None
    if store_trades:
        trades = result.outcomes.records(key_symbol, features.values, features.schema.hash, "none")
        schema = FeatureSchemaRecord.of(features.schema, time.time_ns() // 1_000_000)
        stored = asyncio.run(_store_new(settings, key_symbol, trades, schema))
    if as_json:
        out = {"overall": report["overall"], "report": str(json_path), "stored": stored}
        typer.echo(json.dumps(out, indent=2))
        return
    _print_summary(result, report, json_path, html_path)
    if stored is not None:
        stdout().print(f"{stored:,} new virtual trades stored; `slt model train` learns from them")


async def _store_new(
    settings: Settings, symbol: str, trades: list[VirtualTrade], schema: FeatureSchemaRecord
) -> int:
    """Virtual trades that closed after the newest one stored for ``symbol``, with their
    feature schema registered."""
    from slt.runtime.storage import open_storage

    storage = await open_storage(settings)
    try:
        newest = await storage.virtual_trades.latest_exit_ms(symbol)
        fresh = [t for t in trades if newest is None or t.exit_time_ms > newest]
        return await storage.virtual_trades.add_many(fresh, schema=schema)
    finally:
        await storage.close()


def _print_summary(
    result: WalkForwardResult, report: dict[str, Any], json_path: Path, html_path: Path
) -> None:
    from rich.table import Table

    overall = report["overall"]
    scores = overall["scores"]
    table = Table(title=f"Walk-forward {report['run']['strategy']} {report['run']['symbol']}")
    table.add_column("")
    for name in ("ML-filtered", "unfiltered", "buy & hold"):
        table.add_column(name, justify="right")
    rows = overall["strategies"]
    keys = ("ml_filtered", "unfiltered", "buy_and_hold")
    for label, field, fmt in (
        ("return", "return_pct", "{:+.2f} %"),
        ("Sharpe", "sharpe", "{:.2f}"),
        ("max drawdown", "max_drawdown_pct", "{:.2f} %"),
        ("trades", "trades", "{:,}"),
    ):
        table.add_row(label, *(_shown(rows[k][field], fmt) for k in keys))
    out = stdout()
    out.print(table)
    deflated = overall["deflated_sharpe_ml_filtered"]
    out.print(
        f"{len(result.folds)} folds, {overall['virtual_trades']:,} virtual trades; "
        f"out of sample: AUC {_shown(scores['auc'], '{:.3f}')}, "
        f"Brier {_shown(scores['brier'], '{:.4f}')}, "
        f"log-loss {_shown(scores['log_loss'], '{:.4f}')} on {scores['n']:,} signals"
    )
    verdict = "significant" if deflated["significant"] else "not significant"
    out.print(
        f"Deflated Sharpe of the ML-filtered result: "
        f"{_shown(deflated['deflated_sharpe'], '{:.3f}')} ({verdict})"
    )
    out.print(f"Report: {json_path}\n        {html_path}")


def _shown(value: object, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)
