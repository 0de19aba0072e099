"""``slt demo``: the quickstart's main job on embedded defaults, no network and no keys.

It generates a deterministic synthetic market, writes it in the formats traders already have,
imports it, and shows what the store holds and what the quality check finds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from slt.adapters.importers.writers import write_binance_archive, write_freqtrade
from slt.cli import data
from slt.cli.context import app_context
from slt.cli.output import stdout
from slt.domain.series import Market
from slt.domain.synthetic import random_funding, random_walk_candles

app = typer.Typer(
    help="Run the quickstart demo on a synthetic market.", invoke_without_command=True
)


def write_demo_sources(folder: Path) -> list[Path]:
    """A month of synthetic BTCUSDT futures (with a 2-hour outage), funding, and ETHUSDT spot."""
    btc = random_walk_candles("BTCUSDT", Market.FUTURES, "5m", n=8_640, seed=7, outage=(4_000, 24))
    eth = random_walk_candles(
        "ETHUSDT", Market.SPOT, "1m", n=10_080, start_price=2_300.0, volatility=0.001, seed=11
    )
    archive = folder / "binance" / "data" / "spot" / "monthly" / "klines" / "ETHUSDT" / "1m"
    return [
        write_freqtrade(btc, folder / "freqtrade"),
        write_freqtrade(random_funding("BTCUSDT", n=90), folder / "freqtrade"),
        write_binance_archive(eth, archive / "ETHUSDT-1m-2024-01.zip", header=False),
    ]


@app.callback()
def demo(
    ctx: typer.Context,
    source: Annotated[
        Path | None, typer.Option(help="Where to write the synthetic source files.")
    ] = None,
) -> None:
    """Generate, import, list and check a synthetic market (deterministic: seed 7)."""
    settings = app_context(ctx).settings()
    folder = source or settings.data_dir / "demo_source"
    out = stdout()
    out.rule("1. Writing a synthetic market in freqtrade and Binance-archive formats")
    for path in write_demo_sources(folder):
        out.print(f"  {path}")
    out.rule("2. slt data import")
    ctx.invoke(data.import_, ctx=ctx, paths=[folder])
    out.rule("3. slt data list")
    ctx.invoke(data.list_, ctx=ctx)
    out.rule("4. slt data check")
    try:
        ctx.invoke(data.check, ctx=ctx, paths=None)
    except typer.Exit as exc:
        if exc.exit_code:
            raise
    out.print("\nDone. The 2-hour outage in BTCUSDT is reported as a gap, never filled.")
