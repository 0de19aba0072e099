"""``slt data download``: fetch Binance candles into the store, continuing where the store ends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from slt.cli.context import app_context
from slt.cli.output import stderr, stdout
from slt.domain.clock import format_utc_ms, parse_utc_ms
from slt.domain.series import Market
from slt.domain.symbols import exchange_symbol
from slt.errors import SltError

if TYPE_CHECKING:  # ccxt takes a quarter of a second to import: only `download` pays for it
    from slt.adapters.exchange.binance_klines import DownloadProgress, DownloadResult


def download(
    ctx: typer.Context,
    symbol: Annotated[str, typer.Option("--symbol", help="BTCUSDT or BTC/USDT:USDT.")],
    market: Annotated[Market, typer.Option("--market", help="futures or spot.")] = Market.FUTURES,
    timeframe: Annotated[str, typer.Option("--timeframe", help="e.g. 1m, 5m, 1h.")] = "5m",
    start: Annotated[
        str | None,
        typer.Option("--start", help="First open time, UTC (default: continue the stored series)."),
    ] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="Stop before this open time, UTC (default: now).")
    ] = None,
    fill_gaps: Annotated[
        bool, typer.Option("--fill-gaps", help="Also re-request holes inside the stored range.")
    ] = False,
    weight_budget: Annotated[
        int | None,
        typer.Option("--weight-budget", help="Binance request weight per minute to stay under."),
    ] = None,
) -> None:
    """Download closed candles from Binance (public data, no API key).

    Only what the store lacks is requested: the part before its first candle and after its last.
    Each page is stored as it arrives, so an interrupted download continues on the next run.
    """
    from slt.adapters.exchange.binance_klines import (
        DEFAULT_WEIGHT_BUDGET,
        WEIGHT_LIMIT_PER_MINUTE,
        BinanceKlineClient,
        Pacing,
        download_candles,
    )

    settings = app_context(ctx).settings()
    name = exchange_symbol(symbol)
    start_ms = parse_utc_ms(start) if start else None
    end_ms = parse_utc_ms(end) if end else None
    budget = weight_budget or DEFAULT_WEIGHT_BUDGET[market]
    if not 0 < budget <= WEIGHT_LIMIT_PER_MINUTE[market]:
        limit = WEIGHT_LIMIT_PER_MINUTE[market]
        raise SltError(f"--weight-budget must be between 1 and Binance's limit of {limit}")
    pacing = Pacing(budget, settings.rate_limit_requests, settings.rate_limit_period)
    base_url = (
        settings.binance_futures_url if market is Market.FUTURES else settings.binance_spot_url
    )
    from slt.runtime.bootstrap import open_store

    store = open_store(settings)
    err = stderr()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("candles"),
        TimeRemainingColumn(),
    )
    with (
        BinanceKlineClient(market, base_url, pacing) as client,
        Progress(*columns, console=err, disable=not err.is_terminal) as bar,
    ):
        task = bar.add_task(f"{name} {market} {timeframe}", total=None)

        def show(p: DownloadProgress) -> None:
            at = format_utc_ms(p.last_open_ms) if p.last_open_ms is not None else ""
            bar.update(task, completed=p.done, total=p.total, description=f"{name} {at}")

        result = download_candles(
            store, client, name, market, timeframe, start_ms, end_ms, show, fill_gaps=fill_gaps
        )
    stdout().print(summary(result))


def summary(result: DownloadResult) -> str:
    """One line: what was added and the span the store now holds."""
    key = result.key
    if not result.ranges:
        return f"{key}: already up to date, nothing requested ({result.stored:,} candles stored)"
    span = (
        f"{format_utc_ms(result.first_ms)} .. {format_utc_ms(result.last_ms)}"
        if result.first_ms is not None and result.last_ms is not None
        else "nothing"
    )
    requests = f"{result.requests} request{'' if result.requests == 1 else 's'}"
    return (
        f"{key}: {result.added:,} candles added in {requests}; "
        f"store holds {result.stored:,} candles, {span}"
    )


def register(app: typer.Typer) -> None:
    """Add ``download`` to the ``slt data`` group."""
    app.command("download")(download)
