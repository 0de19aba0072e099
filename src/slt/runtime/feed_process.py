"""The feed: market streams in, closed candles, gaps and mark prices out on the market ring.

It warms up by REST (the last ``warmup_candles`` of each symbol, or from a rehearsal's start),
then streams. A restarted feed warms up again: the candles the brain already took are repeats
it drops, the ones it missed while the feed was down reach it as warm-up (features only, not
traded: they are old). Mark prices are conflated when the brain lags; closed candles and gaps
never are (``ConflatingWriter``).
"""

from __future__ import annotations

import asyncio
import contextlib

from slt.adapters.exchange.binance_rest import BinanceRest
from slt.adapters.exchange.market_stream import MarketData, MarketStream
from slt.domain.timeframes import TIMEFRAME_MS
from slt.runtime.event_loop import run_async
from slt.runtime.ring import Ring
from slt.runtime.ring_records import ConflatingWriter
from slt.runtime.supervisor import Heartbeat
from slt.runtime.trading_spec import TradingSpec


def feed_main(heartbeat: Heartbeat, spec: TradingSpec) -> None:
    run_async(_feed(heartbeat, spec))


async def _feed(heartbeat: Heartbeat, spec: TradingSpec) -> None:
    ring = Ring.attach(spec.ring_name("market"))
    writer = ConflatingWriter(ring)

    def on_data(items: list[MarketData]) -> None:
        for item in items:
            writer.put_message(item)

    tf_ms = TIMEFRAME_MS[spec.timeframe]
    async with BinanceRest(spec.rest_url, spec.keys.key, spec.keys.secret) as rest:
        await rest.sync_clock()
        if spec.warmup_from_ms is not None:
            first = spec.warmup_from_ms
        else:
            answer = await rest.public("GET", "/fapi/v1/premiumIndex", {"symbol": spec.symbols[0]})
            now = int(answer.body["time"])
            first = now - now % tf_ms - spec.warmup_candles * tf_ms
        pairs = [(s, spec.timeframe) for s in spec.symbols]
        market = MarketStream(rest, spec.ws_url, pairs, on_data,
                              warmup_from={p: first for p in pairs},
                              **spec.market_options)  # fmt: skip
        stop = asyncio.Event()
        task = asyncio.create_task(market.run(stop))
        try:
            while not heartbeat.stop_requested and not task.done():
                heartbeat.beat()
                writer.flush()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(task), 0.2)
            if task.done() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)
            while writer.pending and writer.flush():
                pass
            ring.close()
