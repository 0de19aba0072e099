"""``slt exchange serve``: a local Binance USDT-M futures exchange replaying the store."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Annotated

import typer

from slt.cli.context import app_context
from slt.cli.output import stdout

app = typer.Typer(help="A local Binance USDT-M futures exchange on this machine.")


@app.command()
def serve(
    ctx: typer.Context,
    symbols: Annotated[str, typer.Option(help="Comma-separated symbols to replay.")] = "BTCUSDT",
    replay_start: Annotated[
        str, typer.Option(help="The day (UTC) the replay starts, e.g. 2024-01-01.")
    ] = ...,  # type: ignore[assignment]
    replay_end: Annotated[
        str | None, typer.Option(help="Stop the replay here (default: the end of the data).")
    ] = None,
    speed: Annotated[
        float,
        typer.Option(help="Market time per wall second: 1 is real time (times shifted to now)."),
    ] = 1.0,
    balance: Annotated[float, typer.Option(help="USDT in each account at the start.")] = 10_000.0,
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0: any free one).")] = 8090,
    weight_limit: Annotated[
        int, typer.Option(help="Request weight per IP per minute (Binance's: 2,400).")
    ] = 2_400,
) -> None:
    """Serve Binance's REST protocol on HOST:PORT over the stored market, replayed from
    --replay-start. Accounts come from SLT_EXCHANGE_ACCOUNTS="KEY:SECRET[,...]"; without it one
    demo account is created, its key printed and the pair written to a file only you can read.
    """
    from slt.adapters.exchange.local.auth import (
        ACCOUNTS_ENV,
        Authenticator,
        demo_account,
        parse_accounts,
    )
    from slt.adapters.exchange.local.clock import ReplayClock
    from slt.adapters.exchange.local.limits import RateLimits
    from slt.adapters.exchange.local.server import LocalExchange
    from slt.adapters.exchange.local.tapes import load_tapes
    from slt.domain.clock import parse_utc_ms
    from slt.errors import ConfigError
    from slt.runtime.bootstrap import open_store

    settings = app_context(ctx).settings()
    names = [s.strip().upper() for s in symbols.split(",") if s.strip()]
    if not names:
        raise ConfigError("--symbols: give at least one symbol")
    if weight_limit < 1:
        raise ConfigError(f"--weight-limit must be at least 1, got {weight_limit}")
    if not balance > 0:
        raise ConfigError(f"--balance must be a positive amount of USDT, got {balance:g}")
    start_ms = parse_utc_ms(replay_start)
    end_ms = parse_utc_ms(replay_end) if replay_end else None
    if end_ms is not None and end_ms <= start_ms:
        raise ConfigError("--replay-end must come after --replay-start")
    tapes = load_tapes(open_store(settings), names, start_ms, end_ms)
    out = stdout()
    configured = os.environ.get(ACCOUNTS_ENV, "").strip()
    if configured:
        accounts = parse_accounts(configured)
        out.print(f"Accounts from {ACCOUNTS_ENV}: {len(accounts)}")
    else:
        accounts = [demo_account()]
        keep = settings.data_dir / "local-exchange" / "demo-account"
        _write_private(keep, f"{accounts[0].key}:{accounts[0].secret}\n")
        out.print(f"Demo account API key: {accounts[0].key}")
        out.print(f"Key and secret: {keep} (export {ACCOUNTS_ENV}=$(cat {keep}) to reuse them)")
    clock = ReplayClock.start(start_ms, speed)
    exchange = LocalExchange(
        tapes, clock, Authenticator(accounts, clock.wall), RateLimits(weight_limit),
        balance=balance, wall=clock.wall,
    )  # fmt: skip
    asyncio.run(_serve(exchange, host, port))


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.replace(temporary, path)


async def _serve(exchange: object, host: str, port: int) -> None:
    from aiohttp import web

    from slt.adapters.exchange.local.server import LocalExchange, build_app

    assert isinstance(exchange, LocalExchange)
    runner = web.AppRunner(build_app(exchange), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    out = stdout()
    out.print(
        f"Local Binance USDT-M exchange on http://{host}:{bound} replaying "
        f"{', '.join(exchange.tapes)} at speed {exchange.clock.speed:g} (Ctrl-C stops it)"
    )
    if host not in ("127.0.0.1", "localhost", "::1"):
        out.print(f"warning: bound to {host}: anyone who can reach it can use the demo keys")
    await stopped.wait()
    await runner.cleanup()
    out.print("Stopped.")
