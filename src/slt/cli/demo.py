"""``slt demo``: the quickstart's main job on embedded defaults, no network and no keys.

It generates a deterministic synthetic market, writes it in the formats traders already have,
imports it, shows what the store holds and what the quality check finds, backtests the default
strategy on it with the default trading configuration, then runs a short walk-forward learning
run (virtual trades, a model per fold), then paper-trades one replayed day against a local
exchange started in the same process and compares it with the backtest of that day.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from slt.adapters.importers.writers import write_binance_archive, write_freqtrade
from slt.cli import backtest, data, walkforward
from slt.cli.context import app_context
from slt.cli.output import stdout
from slt.domain.series import Market
from slt.domain.synthetic import random_funding, random_walk_candles

DEMO_DAYS = 120
DEMO_START = "2024-01-01"
DEMO_END = "2024-04-30"
PAPER_DAY = ("2024-04-28", "2024-04-29")

app = typer.Typer(
    help="Run the quickstart demo on a synthetic market.", invoke_without_command=True
)


def write_demo_sources(folder: Path) -> list[Path]:
    """120 days of synthetic BTCUSDT futures (a 2-hour outage on day 4), funding, ETHUSDT spot."""
    btc = random_walk_candles(
        "BTCUSDT", Market.FUTURES, "5m", n=DEMO_DAYS * 288, seed=7, outage=(1_000, 24)
    )
    eth = random_walk_candles(
        "ETHUSDT", Market.SPOT, "1m", n=10_080, start_price=2_300.0, volatility=0.001, seed=11
    )
    archive = folder / "binance" / "data" / "spot" / "monthly" / "klines" / "ETHUSDT" / "1m"
    return [
        write_freqtrade(btc, folder / "freqtrade"),
        write_freqtrade(random_funding("BTCUSDT", n=DEMO_DAYS * 3), folder / "freqtrade"),
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
    out.print("The 2-hour outage in BTCUSDT is reported as a gap, never filled.")
    out.rule("5. slt backtest (strategy smc, default trading configuration)")
    report_dir = settings.data_dir / "reports" / "demo"
    ctx.invoke(
        backtest.backtest,
        ctx=ctx,
        symbol="BTCUSDT",
        start=DEMO_START,
        end=DEMO_END,
        report_dir=report_dir,
    )
    out.rule("6. slt walkforward (strategy ema_cross: learn from virtual trades, fold by fold)")
    learning_dir = settings.data_dir / "reports" / "demo-walkforward"
    ctx.invoke(
        walkforward.walkforward,
        ctx=ctx,
        symbol="BTCUSDT",
        start=DEMO_START,
        end=DEMO_END,
        report_dir=learning_dir,
        train_days=30,
        test_days=14,
        strategy="ema_cross",
    )
    out.rule("7. slt paper against a local exchange (one replayed day at --speed max)")
    _paper_day(ctx, out)
    out.print(
        f"\nDone. Open {report_dir / 'report.html'} and {learning_dir / 'report.html'} in a "
        "browser (they work offline); each report.json holds the same numbers. The market is a "
        "random walk: any profit or loss here is luck and costs, not edge, and the model's "
        "out-of-sample AUC should sit near 0.5."
    )


def _paper_day(ctx: typer.Context, out: Console) -> None:
    """A paper session on one replayed day, against the backtest of the same day."""
    import asyncio

    from slt.runtime.bootstrap import (
        load_market,
        open_store,
        plan_run,
        run_backtest_mode,
        strategy_signals,
        warmup_ms,
    )
    from slt.runtime.rehearsal import rehearse_paper

    settings = app_context(ctx).settings()
    plan = plan_run(settings, ["BTCUSDT"], *PAPER_DAY, "5m", "ema_cross", None, None)
    session = asyncio.run(rehearse_paper(
        open_store(settings), ["BTCUSDT"], "5m", plan.start_ms, plan.end_ms, plan.strategy,
        plan.engine, warmup_ms(plan.strategy, "5m"),
    ))  # fmt: skip
    datas, _ = load_market(settings, plan)
    signals, _ = strategy_signals(plan, datas)
    backtest = [t for t in run_backtest_mode(plan, datas, signals).result.trades
                if t.exit_reason != "end_of_data"]  # fmt: skip
    paper = session.counts.trades
    c = session.counts
    out.print(f"Paper session on {PAPER_DAY[0]}: {c.candles['stream'] + c.candles['warmup']:,} "
              f"candles by WebSocket and REST warm-up, {c.signals} signals, {len(c.fills)} "
              f"simulated fills, {len(paper)} closed positions.")  # fmt: skip
    # The synthetic prices carry more decimals than Binance's 0.1 tick, and the exchange
    # quotes candles on the tick: the same trades, priced a few hundredths apart.
    shape = [(t.symbol, t.side, t.entry_time_ms, t.exit_time_ms, t.quantity, t.exit_reason)
             for t in paper] == [(t.symbol, t.side, t.entry_time_ms, t.exit_time_ms,
                                  t.quantity, t.exit_reason) for t in backtest]  # fmt: skip
    pairs = zip(paper, backtest, strict=False)
    apart = max((abs(a.entry_price - b.entry_price) for a, b in pairs), default=0.0)
    if shape:
        out.print(f"The backtest of the same day closes the same {len(backtest)} positions (same "
                  f"times, sides, sizes and exits; prices at most {apart:.2f} USDT apart, because "
                  "the exchange quotes the synthetic prices on Binance's 0.1 tick).")  # fmt: skip
    else:
        out.print(f"The backtest of the same day closes {len(backtest)} positions: they DIFFER "
                  "from the paper session's (please report this).")  # fmt: skip
