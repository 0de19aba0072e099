"""Subcommand groups that later capabilities fill; each says plainly that it is not built yet."""

from __future__ import annotations

import typer

GROUPS = {
    "serve": "HTTP API and dashboard (not built yet).",
}


def group(name: str, text: str) -> typer.Typer:
    sub = typer.Typer(help=text, invoke_without_command=True)

    @sub.callback()
    def _not_built(ctx: typer.Context) -> None:
        if ctx.invoked_subcommand is None:
            typer.echo(f"slt {name}: not available in this version yet.", err=True)
            raise typer.Exit(1)

    return sub
