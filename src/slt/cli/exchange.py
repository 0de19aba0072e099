"""``slt exchange serve``: a local Binance USDT-M futures exchange replaying the store."""

from __future__ import annotations

import asyncio
import math
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
        str,
        typer.Option(
            help="Market time per wall second: 1 is real time (times shifted to now); max moves "
            "one candle at a time as soon as clients are quiet."
        ),
    ] = "1",
    settle_ms: Annotated[
        int, typer.Option(help="--speed max: how long clients must be quiet before it moves.")
    ] = 100,
    control: Annotated[
        bool, typer.Option(help="Answer the fault-injection API under /_sim/ (tests, rehearsals).")
    ] = False,
    faults: Annotated[
        Path | None, typer.Option(help="A TOML file of faults to inject at scheduled moments.")
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option(help="Keep balances, positions, orders and the clock here across restarts."),
    ] = None,
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
    from slt.adapters.exchange.local import state_file
    from slt.adapters.exchange.local.auth import (
        ACCOUNTS_ENV,
        Authenticator,
        demo_account,
        parse_accounts,
    )
    from slt.adapters.exchange.local.clock import ReplayClock
    from slt.adapters.exchange.local.faults import load_scenario
    from slt.adapters.exchange.local.limits import RateLimits
    from slt.adapters.exchange.local.server import LocalExchange
    from slt.adapters.exchange.local.tapes import load_tapes
    from slt.domain.clock import parse_utc_ms
    from slt.engine.symbol_venue import symbol_venue
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
    pace = _speed(speed)
    plan = load_scenario(faults) if faults is not None else []
    if settle_ms < 1:
        raise ConfigError(f"--settle-ms must be at least 1, got {settle_ms}")
    tapes = load_tapes(open_store(settings), names, start_ms, end_ms)
    out = stdout()
    configured = os.environ.get(ACCOUNTS_ENV, "").strip()
    if configured:
        accounts = parse_accounts(configured)
        out.print(f"Accounts from {ACCOUNTS_ENV}: {len(accounts)}")
    else:
        # With --state the demo account is kept beside its balances, so it survives too.
        keep = (state or settings.data_dir / "local-exchange") / "demo-account"
        if state is not None and keep.exists():
            accounts = parse_accounts(keep.read_text().strip())
        else:
            accounts = [demo_account()]
            _write_private(keep, f"{accounts[0].key}:{accounts[0].secret}\n")
        out.print(f"Demo account API key: {accounts[0].key}")
        out.print(f"Key and secret: {keep} (export {ACCOUNTS_ENV}=$(cat {keep}) to reuse them)")
    clock = ReplayClock.start(start_ms, pace)
    exchange = LocalExchange(
        tapes, clock, Authenticator(accounts, clock.wall), RateLimits(weight_limit),
        balance=balance, wall=clock.wall, settle_ms=settle_ms, state_dir=state,
        control=control, fault_plan=plan, venues=symbol_venue,
    )  # fmt: skip
    if state is not None and state_file.load(exchange, state):
        out.print(f"Restored balances, positions, orders and the clock from {state}")
    asyncio.run(_serve(exchange, host, port))


def _speed(text: str) -> float:
    if text.strip().lower() == "max":
        return math.inf
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value >= 1 or math.isinf(value):
        from slt.errors import ConfigError

        raise ConfigError(f"--speed must be a number of 1 or more, or max; got {text!r}")
    return value


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.replace(temporary, path)


async def _serve(exchange: object, host: str, port: int) -> None:
    from aiohttp import web

    from slt.adapters.exchange.local.server import LocalExchange, build_app, open_site

    assert isinstance(exchange, LocalExchange)
    runner = web.AppRunner(build_app(exchange), access_log=None)
    await runner.setup()
    bound = await open_site(exchange, runner, host, port)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    out = stdout()
    out.print(
        f"Local Binance USDT-M exchange on http://{host}:{bound} replaying "
        f"{', '.join(exchange.tapes)} at speed "
        f"{'max' if exchange.clock.is_max else f'{exchange.clock.speed:g}'} (Ctrl-C stops it)"
    )
    if exchange.control:
        out.print(f"Fault control API on http://{host}:{bound}/_sim/faults (--control)")
    if exchange.fault_plan:
        out.print(f"Scheduled faults: {len(exchange.fault_plan)} (--faults)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        out.print(f"warning: bound to {host}: anyone who can reach it can use the demo keys")
    await stopped.wait()
    await runner.cleanup()
    out.print("Stopped.")
