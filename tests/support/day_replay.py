"""A replayed trading session against the local exchange at ``--speed max``: ``symbols`` 1m
tapes (``minute_tapes``), traded by ``ema_cross`` through ``runtime.live_session`` in one
process; what it did, and the exchange's own record of its fills and positions. Used by the
proof test and by ``benchmarks/bench_day_replay.py``."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slt.adapters.exchange.binance_rest import BinanceRest
from slt.adapters.exchange.local.tapes import load_tapes
from slt.domain.clock import parse_utc_ms
from slt.domain.strategies.registry import builtin_strategy
from slt.engine.config import EngineConfig
from slt.runtime.live_session import LiveSession
from tests.support.local_exchange import ACCOUNT, serving
from tests.support.minute_tapes import many_symbols, minute_store

DAY = parse_utc_ms("2025-06-16")
MINUTE = 60_000
Fill = tuple[str, int, float, float, float]  # symbol, trade id, price, quantity, fee


@dataclass
class DayReplay:
    session: LiveSession
    seconds: float  # the session's run, from start-up to the last candle
    weight: dict[str, int]  # the governor's summary
    exchange_fills: set[Fill]  # GET /fapi/v1/userTrades of every symbol, after the run
    exchange_trades: int  # the exchange's own count of its fills
    exchange_positions: dict[str, float]  # signed amounts
    end_ms: int
    symbols: list[str]


async def exchange_fills(
    rest: BinanceRest, symbols: list[str], until_ms: int | None = None
) -> set[Fill]:
    """The exchange's fills as its clients read them (``GET /fapi/v1/userTrades``), those up
    to ``until_ms`` (market time) if given."""
    listed: set[Fill] = set()
    for symbol in symbols:
        query = {"symbol": symbol, "limit": 1000}
        trades = (await rest.signed("GET", "/fapi/v1/userTrades", query, weight=5)).body
        listed |= {(symbol, int(t["id"]), float(t["price"]), float(t["qty"]),
                    float(t["commission"])) for t in trades
                   if until_ms is None or int(t["time"]) <= until_ms}  # fmt: skip
    return listed


def replay_day(root: Path, hours: float, count: int = 20) -> DayReplay:
    symbols = many_symbols(count)
    end = DAY + int(hours * 3_600_000)
    tapes = load_tapes(minute_store(root, symbols), list(symbols), DAY, end)

    async def scenario(url: str) -> tuple[LiveSession, float, dict[str, int], set[Fill]]:
        async with BinanceRest(url, ACCOUNT.key, ACCOUNT.secret) as rest:
            session = LiveSession(
                rest, url.replace("http://", "ws://"), list(symbols), "1m",
                builtin_strategy("ema_cross"), EngineConfig(), run_id="day",
                warmup_candles=120, until_ms=end - MINUTE,
                market_options={"backoff_s": (0.2, 1.0)},
            )  # fmt: skip
            began = time.perf_counter()
            await asyncio.wait_for(session.run(asyncio.Event()), 3_600)
            took = time.perf_counter() - began
            weight = rest.governor.summary()
            return session, took, weight, await exchange_fills(rest, list(symbols))

    with serving(tapes, DAY, speed=math.inf) as ex:
        session, took, weight, listed = asyncio.run(scenario(ex.url))
        account = ex.exchange.accounts[ACCOUNT.key]
        trades = sum(len(account.desk(s).trades) for s in symbols)
        positions = {s: account.desk(s).amt for s in symbols if account.desk(s).side}
    return DayReplay(session, took, weight, listed, trades, positions, end, list(symbols))


def summary(r: DayReplay) -> dict[str, Any]:
    market = r.session.market
    assert market is not None
    c = r.session.counts
    return {
        "seconds": round(r.seconds, 1), "candles": dict(c.candles), "gaps": c.gaps,
        "rest": r.weight, "kline_requests_warmup": market.rest_kline_requests_warmup,
        "kline_requests_backfill": market.rest_kline_requests_backfill,
        "fills": len(c.fills), "commands": dict(c.commands),
    }  # fmt: skip
