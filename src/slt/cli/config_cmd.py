"""``slt config``: inspect the effective configuration without ever revealing a secret."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from slt.cli.context import app_context
from slt.runtime.config import (
    config_file,
    env_name,
    masked_settings,
    settings_sources,
)

app = typer.Typer(
    help="Inspect the effective configuration (secrets masked).", no_args_is_help=True
)


@app.callback()
def config() -> None:
    """Inspect the effective configuration (secrets masked)."""


@app.command()
def show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Print every setting, its environment name and where its value came from."""
    settings = app_context(ctx).settings()
    values = masked_settings(settings)
    sources = settings_sources(settings)
    path = config_file(settings)
    if as_json:
        document = {
            "config_file": str(path) if path else None,
            "settings": values,
            "sources": sources,
        }
        typer.echo(json.dumps(document, indent=2))
        return

    title = f"slt configuration (file: {path if path else 'none'})"
    caption = "TOML file keys are these names in lower case, without SLT_."
    table = Table(title=title, caption=caption, box=box.SIMPLE_HEAD)
    table.add_column("setting", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_column("source", no_wrap=True)
    for name, value in values.items():
        shown = "-" if value is None else str(value)
        table.add_row(env_name(name), Text(shown), sources[name])
    Console().print(table)
