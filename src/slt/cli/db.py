"""``slt db``: schema migrations of the configured database (SQLite by default)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from slt.cli.context import app_context
from slt.cli.output import stdout

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

app = typer.Typer(help="Database migrations (SQLite by default, PostgreSQL via DATABASE_URL).")


def _url(ctx: typer.Context) -> URL:
    from slt.runtime.storage import configured_url

    return configured_url(app_context(ctx).settings())


def _migrate(ctx: typer.Context, action: str, revision: str) -> None:
    from slt.adapters.db import migrate
    from slt.adapters.db.urls import shown

    url = _url(ctx)
    step = migrate.upgrade if action == "upgrade" else migrate.downgrade
    asyncio.run(step(url, revision))
    found = asyncio.run(migrate.status(url))
    stdout().print(f"{shown(url)}: schema at {found.current or 'base (empty)'}")


@app.command()
def upgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Migrate the schema forward (to the newest revision by default)."""
    _migrate(ctx, "upgrade", revision)


@app.command()
def downgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision; `base` empties the schema.")],
) -> None:
    """Migrate the schema back to REVISION (`base` removes every table)."""
    _migrate(ctx, "downgrade", revision)


@app.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The schema version of the database and the one this program needs."""
    from slt.adapters.db import migrate
    from slt.adapters.db.urls import shown

    url = _url(ctx)
    found = asyncio.run(migrate.status(url))
    result = {
        "database": shown(url),
        "current": found.current,
        "head": found.head,
        "up_to_date": found.up_to_date,
    }
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    state = "up to date" if found.up_to_date else "needs `slt db upgrade`"
    stdout().print(f"{result['database']}: at {found.current or 'base (empty)'}, "
                   f"needs {found.head}: {state}")  # fmt: skip


@app.command()
def export(
    ctx: typer.Context,
    table: Annotated[str, typer.Option("--table", help="Table to export, e.g. virtual_trades.")],
    out: Annotated[Path, typer.Option("--out", help="Parquet file to write.")],
) -> None:
    """Write a table to Parquet for analysis (feature snapshots become lists of floats)."""
    from slt.adapters.db import migrate
    from slt.adapters.db.connect import create_engine
    from slt.adapters.db.export import export_table

    url = _url(ctx)
    asyncio.run(migrate.ensure_schema(url, app_context(ctx).settings().db_auto_migrate))

    async def run() -> int:
        engine = create_engine(url)
        try:
            return await export_table(engine, table, out)
        finally:
            await engine.dispose()

    rows = asyncio.run(run())
    stdout().print(f"{table}: {rows:,} rows written to {out}")
