"""``slt data``: import, list and check market data in the store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from slt.adapters.importers.importer import (
    Overrides,
    apply_import,
    check_file,
    plan_import,
)
from slt.adapters.store.parquet_store import ParquetStore
from slt.cli import data_download
from slt.cli.context import app_context
from slt.cli.output import stderr, stdout
from slt.domain.clock import format_utc_ms
from slt.domain.quality import QualityReport, check_series
from slt.domain.series import Kind, Market, SeriesKey
from slt.domain.symbols import exchange_symbol
from slt.domain.timeframes import timeframe_ms
from slt.errors import UnknownSeriesError

app = typer.Typer(help="Import, download, list and check market data.", no_args_is_help=True)

SymbolOpt = Annotated[str | None, typer.Option("--symbol", help="BTCUSDT or BTC/USDT:USDT.")]
MarketOpt = Annotated[Market | None, typer.Option("--market", help="spot or futures.")]
TimeframeOpt = Annotated[str | None, typer.Option("--timeframe", help="e.g. 1m, 5m, 1h.")]
KindOpt = Annotated[Kind | None, typer.Option("--kind", help="candles, mark or funding.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def store_for(ctx: typer.Context) -> ParquetStore:
    from slt.runtime.bootstrap import open_store

    return open_store(app_context(ctx).settings())


@app.command("import")
def import_(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to import.")],
    symbol: SymbolOpt = None,
    market: MarketOpt = None,
    timeframe: TimeframeOpt = None,
) -> None:
    """Import freqtrade files (feather, parquet, json, json.gz) and Binance archive files.

    Every file is checked before anything is written: one bad file stops the command and the
    store stays as it was. Re-importing is harmless; overlapping data merges, newest file wins.
    """
    store = store_for(ctx)
    overrides = Overrides(exchange_symbol(symbol) if symbol else None, market, timeframe)
    if timeframe:
        timeframe_ms(timeframe)
    plan = plan_import(paths, overrides)
    imported = apply_import(store, plan)
    err = stderr()
    for path, reason in plan.skipped:
        err.print(f"skipped {path}: {reason}")
    table = Table(title=f"Imported into {store.root}")
    for col in ("file", "series", "rows", "added", "changed", "total"):
        table.add_column(
            col, justify="right" if col in ("rows", "added", "changed", "total") else "left"
        )
    for item in imported:
        planned, merge = item.planned, item.merge
        for warning in planned.warnings:
            err.print(f"warning: {planned.path}: {warning}")
        table.add_row(
            planned.path.name,
            str(merge.key),
            f"{merge.incoming:,}",
            f"{merge.added:,}",
            f"{merge.changed:,}",
            f"{merge.total:,}",
        )
    stdout().print(table)


def _report(store: ParquetStore, key: SeriesKey) -> QualityReport:
    return check_series(store.load(key))


def _selected(
    store: ParquetStore,
    symbol: str | None,
    market: Market | None,
    timeframe: str | None,
    kind: Kind | None,
) -> list[SeriesKey]:
    wanted_symbol = exchange_symbol(symbol) if symbol else None
    keys = [
        k
        for k in store.series_keys()
        if (wanted_symbol is None or k.symbol == wanted_symbol)
        and (market is None or k.market == market)
        and (timeframe is None or k.timeframe == timeframe)
        and (kind is None or k.kind == kind)
    ]
    if not keys and (symbol or market or timeframe or kind):
        asked = " ".join(str(x) for x in (wanted_symbol, market, timeframe, kind) if x)
        held = sorted({str(k) for k in store.series_keys()})
        raise UnknownSeriesError(
            f"the store holds no {asked} data; it holds: {', '.join(held) or 'nothing yet'}"
        )
    return keys


@app.command("list")
def list_(
    ctx: typer.Context,
    symbol: SymbolOpt = None,
    market: MarketOpt = None,
    timeframe: TimeframeOpt = None,
    kind: KindOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every stored series: rows, first and last time, and how many gaps it has."""
    store = store_for(ctx)
    rows = []
    for key in _selected(store, symbol, market, timeframe, kind):
        report = _report(store, key)
        rows.append(
            {
                "symbol": key.symbol,
                "market": str(key.market),
                "timeframe": key.timeframe,
                "kind": str(key.kind),
                "rows": report.rows,
                "first": format_utc_ms(report.first_ms) if report.first_ms is not None else None,
                "last": format_utc_ms(report.last_ms) if report.last_ms is not None else None,
                "gaps": report.n_gaps,
                "missing": report.missing,
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        stdout().print(f"The store at {store.root} is empty: run `slt data import PATH`.")
        return
    table = Table(title=f"Market data in {store.root}")
    for col in (
        "symbol",
        "market",
        "timeframe",
        "kind",
        "rows",
        "first",
        "last",
        "gaps",
        "missing",
    ):
        table.add_column(col, justify="right" if col in ("rows", "gaps", "missing") else "left")
    for row in rows:
        table.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in row.values()))
    stdout().print(table)


def _report_dict(label: str, report: QualityReport) -> dict[str, object]:
    return {
        "series": label,
        "rows": report.rows,
        "first": format_utc_ms(report.first_ms) if report.first_ms is not None else None,
        "last": format_utc_ms(report.last_ms) if report.last_ms is not None else None,
        "gaps": report.n_gaps,
        "missing": report.missing,
        "longest_gaps": [
            {
                "after": format_utc_ms(g.after_ms),
                "next": format_utc_ms(g.next_ms),
                "missing": g.missing,
            }
            for g in report.longest_gaps
        ],
        "problems": report.problems,
    }


@app.command("check")
def check(
    ctx: typer.Context,
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files to check before import (default: the store).")
    ] = None,
    symbol: SymbolOpt = None,
    market: MarketOpt = None,
    timeframe: TimeframeOpt = None,
    kind: KindOpt = None,
    as_json: JsonOpt = False,
    fail_on_gaps: Annotated[bool, typer.Option(help="Exit 1 when any gap is found.")] = False,
) -> None:
    """Gaps (with lengths), duplicates, order, OHLC consistency, non-positive prices, NaN.

    Exit code 0 when clean, 1 when integrity problems (or, with --fail-on-gaps, gaps) are found.
    Gaps are reported, never filled.
    """
    results: list[tuple[str, QualityReport]] = []
    if paths:
        overrides = Overrides(exchange_symbol(symbol) if symbol else None, market, timeframe)
        results = [check_file(path, overrides) for path in paths]
    else:
        store = store_for(ctx)
        results = [
            (str(k), _report(store, k)) for k in _selected(store, symbol, market, timeframe, kind)
        ]
    reports = [_report_dict(label, report) for label, report in results]
    failed = any(r.problems or (fail_on_gaps and r.n_gaps) for _, r in results)
    if as_json:
        typer.echo(json.dumps(reports, indent=2))
    else:
        _print_check(reports)
    if failed:
        raise typer.Exit(1)


def _print_check(reports: list[dict[str, object]]) -> None:
    out = stdout()
    if not reports:
        out.print("Nothing to check: the store is empty.")
        return
    for r in reports:
        problems = r["problems"]
        status = "[red]problems[/red]" if problems else "[green]ok[/green]"
        out.print(
            f"[bold]{r['series']}[/bold]: {r['rows']:,} rows, {r['first']} → {r['last']}, "
            f"{r['gaps']:,} gaps, {r['missing']:,} missing — {status}"
        )
        for name, count in problems.items():  # type: ignore[attr-defined]
            out.print(f"    {name.replace('_', ' ')}: {count:,}")
        for gap in r["longest_gaps"]:  # type: ignore[attr-defined]
            out.print(
                f"    gap after {gap['after']} until {gap['next']}: {gap['missing']:,} missing"
            )


data_download.register(app)
