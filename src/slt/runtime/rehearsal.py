"""A paper session against a local exchange started in the same process: the demo's last step
and the quickest way to see ``slt paper`` run offline. The exchange replays the store at
``--speed max`` on 127.0.0.1 (a real HTTP and WebSocket server on a free port); the session
warms up on the history before ``start_ms`` and trades every candle from there, so it makes
the trades a backtest of the same span makes.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

from aiohttp import web

from slt.adapters.exchange.binance_rest import BinanceRest
from slt.adapters.exchange.local.auth import Authenticator, demo_account
from slt.adapters.exchange.local.clock import ReplayClock
from slt.adapters.exchange.local.limits import RateLimits
from slt.adapters.exchange.local.server import LocalExchange, build_app, open_site
from slt.adapters.exchange.local.tapes import load_tapes
from slt.adapters.store.parquet_store import ParquetStore
from slt.domain.strategies.base import Strategy
from slt.domain.timeframes import TIMEFRAME_MS
from slt.engine.config import EngineConfig
from slt.engine.symbol_venue import symbol_venue
from slt.runtime.live_session import LiveSession

SETTLE_MS = 20  # paper sends nothing back to the exchange: it need not wait long


async def rehearse_paper(
    store: ParquetStore,
    symbols: Sequence[str],
    timeframe: str,
    start_ms: int,
    end_ms: int,
    strategy: Strategy,
    config: EngineConfig,
    warmup_ms: int,
) -> LiveSession:
    """Replay ``start_ms`` to ``end_ms`` and paper-trade it; the finished session."""
    tapes = load_tapes(store, list(symbols), start_ms, end_ms)
    clock = ReplayClock.start(start_ms, math.inf)
    exchange = LocalExchange(
        tapes, clock, Authenticator([demo_account()], clock.wall), RateLimits(),
        wall=clock.wall, settle_ms=SETTLE_MS, venues=symbol_venue,
    )  # fmt: skip
    runner = web.AppRunner(build_app(exchange), access_log=None)
    await runner.setup()
    try:
        port = await open_site(exchange, runner, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{port}"
        async with BinanceRest(url) as rest:
            session = LiveSession(
                rest, url.replace("http://", "ws://"), symbols, timeframe, strategy, config,
                run_id="paper", paper=True, warmup_from_ms=start_ms - warmup_ms,
                trade_from_ms=start_ms, until_ms=end_ms - TIMEFRAME_MS[timeframe],
            )  # fmt: skip
            await asyncio.wait_for(session.run(asyncio.Event()), 600)
            return session
    finally:
        await runner.cleanup()
