"""The local exchange on 127.0.0.1 in a background thread, for tests: a real HTTP server on a
free port, over a store that holds real Binance futures data."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from slt.adapters.exchange.local.auth import ApiAccount, Authenticator
from slt.adapters.exchange.local.clock import ReplayClock, wall_ms
from slt.adapters.exchange.local.faults import Scheduled
from slt.adapters.exchange.local.limits import RateLimits
from slt.adapters.exchange.local.market import SymbolTape
from slt.adapters.exchange.local.server import LocalExchange, build_app, open_site
from slt.adapters.exchange.local.streams import StreamSettings
from slt.adapters.importers.importer import apply_import, plan_import
from slt.adapters.store.parquet_store import ParquetStore
from slt.engine.symbol_venue import symbol_venue

ACCOUNT = ApiAccount("testKey0123456789", "testSecret0123456789abcdef")


def real_store(root: Path, files: list[Path]) -> ParquetStore:
    store = ParquetStore(root)
    apply_import(store, plan_import(files))
    return store


@dataclass
class Running:
    exchange: LocalExchange
    url: str
    loop: asyncio.AbstractEventLoop | None = None  # the server's own loop (its thread's)


@contextmanager
def serving(
    tapes: dict[str, SymbolTape],
    replay_start_ms: int,
    *,
    speed: float = 1.0,
    limits: RateLimits | None = None,
    wall: Callable[[], int] = wall_ms,
    accounts: list[ApiAccount] | None = None,
    stream_settings: StreamSettings | None = None,
    control: bool = False,
    fault_plan: list[Scheduled] | None = None,
) -> Iterator[Running]:
    """Serve ``tapes`` on a free port until the block ends; the server's loop runs in its own
    thread, so blocking clients (ccxt, Binance's SDK) can call it from the test."""
    clock = ReplayClock.start(replay_start_ms, speed, wall)
    exchange = LocalExchange(
        tapes, clock, Authenticator(accounts or [ACCOUNT], wall), limits or RateLimits(),
        wall=wall, stream_settings=stream_settings or StreamSettings(), control=control,
        fault_plan=fault_plan or [], venues=symbol_venue,
    )  # fmt: skip
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict[str, object] = {}

    async def start() -> None:
        runner = web.AppRunner(build_app(exchange), access_log=None)
        await runner.setup()
        state["port"] = await open_site(exchange, runner, "127.0.0.1", 0)
        state["runner"] = runner
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the local exchange did not start within 10 s")
    try:
        yield Running(exchange, f"http://127.0.0.1:{state['port']}", loop)
    finally:
        runner = state["runner"]
        assert isinstance(runner, web.AppRunner)
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
