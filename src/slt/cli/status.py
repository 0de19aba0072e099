"""``slt status``: what a running or stopped paper or live session recorded in the database.

Open positions and orders, the UTC day's closed PnL and the last equity of one session (the
most recently active by default), the champion model, and the newest stored candle of each
series. It only reads: an empty or absent database is reported, never created or migrated.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from slt.cli.context import app_context
from slt.cli.output import stdout
from slt.domain.clock import format_utc_ms, parse_utc_ms
from slt.errors import SltError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL
    from sqlalchemy.ext.asyncio import AsyncEngine

    from slt.runtime.config import Settings

DAY_MS = 86_400_000


class SessionMode(StrEnum):
    paper = "paper"
    live = "live"


def status(
    ctx: typer.Context,
    mode: Annotated[
        SessionMode | None,
        typer.Option("--mode", help="paper or live (default: the most recently active)."),
    ] = None,
    run_id: Annotated[
        str | None,
        typer.Option("--run-id", help="The session to show (default: the most recent one)."),
    ] = None,
    day: Annotated[
        str | None, typer.Option("--day", help="UTC day of the closed PnL (default: today).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Open positions and orders, the day's PnL, the model in use and the last candles, as a
    paper or live session recorded them."""
    settings = app_context(ctx).settings()
    day_ms = _day_start(parse_utc_ms(day) if day else time.time_ns() // 1_000_000)
    report = asyncio.run(read_status(settings, mode.value if mode else None, run_id, day_ms))
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        show(report)


def _day_start(ms: int) -> int:
    return ms - ms % DAY_MS


async def read_status(
    settings: Settings, mode: str | None, run_id: str | None, day_ms: int
) -> dict[str, Any]:
    """Everything ``slt status`` shows, as plain data (the ``--json`` output)."""
    from slt.adapters.db import migrate
    from slt.adapters.db.connect import create_engine
    from slt.adapters.db.urls import shown
    from slt.runtime.storage import configured_url

    url = configured_url(settings)
    report: dict[str, Any] = {"database": shown(url), "recorded": False, "session": None,
                              "other_runs": [], "model": None, "last_candles": []}  # fmt: skip
    if _absent(url) or (await migrate.status(url)).current is None:
        return report
    await migrate.ensure_schema(url, auto_migrate=False)  # an old schema: say what to run
    engine = create_engine(url)
    try:
        return await _read(engine, report, mode, run_id, day_ms)
    finally:
        await engine.dispose()


def _absent(url: URL) -> bool:
    """A SQLite file that does not exist: nothing recorded, and nothing to create."""
    database = url.database or ""
    sqlite = url.get_backend_name() == "sqlite"
    return sqlite and database != ":memory:" and not Path(database).is_file()


async def _read(
    engine: AsyncEngine, report: dict[str, Any], mode: str | None, run_id: str | None,
    day_ms: int,
) -> dict[str, Any]:  # fmt: skip
    from slt.adapters.db.ledger import TradingLedger
    from slt.adapters.db.trading_status import TradingStatus

    reads, ledger = TradingStatus(engine), TradingLedger(engine)
    champion = await reads.champion()
    report["model"] = dataclasses.asdict(champion) if champion else None
    report["last_candles"] = [dataclasses.asdict(c) for c in await reads.last_candles()]
    runs = [r for r in await reads.runs(mode) if run_id is None or r.run_id == run_id]
    if not runs:
        if run_id is not None:
            raise SltError(f"no {mode or 'paper or live'} session {run_id!r} is recorded in "
                           f"{report['database']}; `slt status` shows the latest")  # fmt: skip
        return report
    run = runs[0]
    closed = await reads.closed_pnl(run.mode, run.run_id, day_ms, day_ms + DAY_MS)
    equity = await reads.latest_equity(run.mode, run.run_id)
    held = await ledger.positions(run.mode, "open", run_id=run.run_id)
    working = await ledger.open_orders(run.mode, run_id=run.run_id)
    report["recorded"] = True
    report["session"] = {
        **dataclasses.asdict(run),
        "equity": dataclasses.asdict(equity) if equity else None,
        "open_positions": [dataclasses.asdict(p) for p in held],
        "open_orders": [dataclasses.asdict(o) for o in working],
        "day": {"date": format_utc_ms(day_ms)[:10], **dataclasses.asdict(closed)},
    }
    report["other_runs"] = [dataclasses.asdict(r) for r in await reads.runs() if r != run]
    return report


# -- the tables ----------------------------------------------------------------------------


def show(report: dict[str, Any]) -> None:
    out = stdout()
    session = report["session"]
    if session is None:
        out.print(f"Nothing recorded yet in {report['database']}: `slt paper` and `slt live` "
                  "record their orders, fills, positions and equity there.")  # fmt: skip
    else:
        out.print(f"{session['mode']} session {session['run_id']}: recorded "
                  f"{format_utc_ms(session['first_ms'])} → {format_utc_ms(session['last_ms'])} "
                  f"UTC ({report['database']})")  # fmt: skip
        equity = session["equity"]
        if equity:
            out.print(f"Equity {equity['equity']:,.2f} USDT (cash {equity['cash']:,.2f}, "
                      f"unrealised {equity['unrealized_pnl']:+,.2f}) at "
                      f"{format_utc_ms(equity['time_ms'])} UTC")  # fmt: skip
        d = session["day"]
        out.print(f"Positions closed on {d['date']} (UTC): {d['closed']}, {d['won']} won, PnL "
                  f"{d['realized_pnl']:+,.2f} USDT after fees {d['fees']:,.2f} and funding "
                  f"{d['funding']:+,.2f}")  # fmt: skip
        out.print(_positions(session["open_positions"]))
        out.print(_orders(session["open_orders"]))
        others = report.get("other_runs") or []
        if others:
            names = ", ".join(f"{r['mode']} {r['run_id'] or '(unnamed)'}" for r in others[:5])
            out.print(f"Other sessions: {names} (--mode, --run-id)")
    model = report["model"]
    out.print(f"Model in use: {model['version']} (champion since "
              f"{format_utc_ms(model['promoted_ms'] or model['created_ms'])} UTC)"
              if model else "Model in use: none (no champion stored)")  # fmt: skip
    if report["last_candles"]:
        out.print(_candles(report["last_candles"]))


def _positions(rows: list[dict[str, Any]]) -> Table | str:
    if not rows:
        return "Open positions: none"
    table = Table(title="Open positions")
    for col in ("symbol", "side", "quantity", "entry", "leverage", "margin", "opened (UTC)"):
        table.add_column(col, justify="left" if col in ("symbol", "side") else "right")
    for p in rows:
        table.add_row(p["symbol"], "long" if p["side"] > 0 else "short", f"{p['quantity']:g}",
                      f"{p['entry_price']:g}", f"{p['leverage']:g}x", f"{p['margin']:,.2f}",
                      format_utc_ms(p["opened_ms"]))  # fmt: skip
    return table


def _orders(rows: list[dict[str, Any]]) -> Table | str:
    if not rows:
        return "Open orders: none"
    table = Table(title="Open orders")
    for col in ("order", "symbol", "purpose", "kind", "side", "quantity", "price", "status",
                "placed (UTC)"):  # fmt: skip
        table.add_column(col, justify="right" if col in ("quantity", "price") else "left")
    for o in rows:
        price = "market" if o["price"] is None else f"{o['price']:g}"
        table.add_row(o["order_id"], o["symbol"], o["purpose"], o["kind"],
                      "buy" if o["side"] > 0 else "sell", f"{o['quantity']:g}", price,
                      o["status"], format_utc_ms(o["created_ms"]))  # fmt: skip
    return table


def _candles(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Last candle seen")
    for col in ("symbol", "market", "timeframe", "open (UTC)", "close"):
        table.add_column(col, justify="right" if col == "close" else "left")
    for c in rows:
        table.add_row(c["symbol"], c["market"], c["timeframe"], format_utc_ms(c["open_time_ms"]),
                      f"{c['close']:g}")  # fmt: skip
    return table
