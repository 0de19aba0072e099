"""The ``slt`` command: global options, subcommand groups, and where errors become exit codes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from slt import __version__
from slt.runtime.numba_cache import configure_numba_cache

# Before any command imports a kernel: compiled kernels are cached per kernel source.
configure_numba_cache()

from slt.cli.context import AppContext  # noqa: E402
from slt.errors import IntegrityError, SltError  # noqa: E402

app = typer.Typer(
    name="slt",
    help="SelfLearningTrader: self-learning crypto futures trading (Binance USDT-M).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

EXIT_BAD_INPUT = 2
EXIT_INTEGRITY = 3  # the engine refused an event: a bug or a diverged exchange, not the user


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", envvar="SLT_CONFIG", help="TOML configuration file."),
    ] = None,
) -> None:
    """Settings come from defaults, then the TOML file, then environment variables."""
    ctx.obj = AppContext(config_path=config)


@app.command()
def version() -> None:
    """Print the installed version."""
    typer.echo(f"slt {__version__}")


def _register_groups() -> None:
    from slt.cli import (
        backtest,
        config_cmd,
        data,
        db,
        demo,
        exchange,
        features,
        model,
        placeholders,
        replay,
        status,
        trade,
        walkforward,
    )

    app.add_typer(data.app, name="data")
    app.add_typer(demo.app, name="demo")
    app.add_typer(config_cmd.app, name="config")
    app.add_typer(db.app, name="db")
    app.add_typer(model.app, name="model")
    app.add_typer(exchange.app, name="exchange")
    app.command("features")(features.features)
    app.command("backtest")(backtest.backtest)
    app.command("walkforward")(walkforward.walkforward)
    app.command("replay")(replay.replay)
    app.command("paper")(trade.paper)
    app.command("live")(trade.live)
    app.command("status")(status.status)
    for name, text in placeholders.GROUPS.items():
        app.add_typer(placeholders.group(name, text), name=name)


_register_groups()


def run() -> None:
    """Console entry point: expected errors print one line to stderr and exit with code 2.

    Typer's standalone mode already turns usage errors into exit code 2 and ``Exit`` into its
    code. An ``IntegrityError`` (the engine refused an event it cannot account for) stops the
    run with code 3 and nothing half-written: a report is written whole or not at all, and a
    journal ends with the refused event (a replay stops at the same place). Everything else is
    a bug and keeps its traceback.
    """
    try:
        app()
    except SltError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except IntegrityError as exc:
        typer.echo(f"integrity error, stopped safely: {exc}", err=True)
        sys.exit(EXIT_INTEGRITY)
