"""``--speed max``: the market moves one candle at a time once clients are quiet, so a bot that
answers each closed candle with a market order is filled at the next candle's open, exactly as
the backtest assumes."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from typing import Any

import aiohttp
import numpy as np
import pytest

from slt.adapters.exchange.local.market import SymbolTape
from slt.adapters.exchange.local.tapes import load_tapes
from slt.domain.clock import parse_utc_ms
from tests.conftest import CATMAN_BTC_5M
from tests.support.binance_calls import SystemWall, call, ok
from tests.support.local_exchange import Running, real_store, serving

START = parse_utc_ms("2024-01-01")
SLIP = 0.0001


@pytest.fixture(scope="module")
def tapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SymbolTape]:
    store = real_store(tmp_path_factory.mktemp("max-store"), [CATMAN_BTC_5M])
    return load_tapes(store, ["BTCUSDT"], START, None)


def test_a_bot_answering_closed_candles_is_filled_at_the_next_open(
    tapes: dict[str, SymbolTape],
) -> None:
    c = tapes["BTCUSDT"].candles
    wall = SystemWall()

    async def bot(ex: Running) -> tuple[list[int], float]:
        finals: list[int] = []
        began = time.monotonic()
        url = ex.url.replace("http://", "ws://") + "/market/ws/btcusdt@kline_5m"
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            while len(finals) < 6:
                msg = await asyncio.wait_for(ws.receive(), 10)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                k = json.loads(msg.data)["k"]
                if not k["x"]:
                    continue
                finals.append(int(k["t"]))
                side = "BUY" if len(finals) % 2 else "SELL"
                answer = await asyncio.to_thread(
                    call, ex.url, "POST", "/fapi/v1/order", wall, symbol="BTCUSDT", side=side,
                    type="MARKET", quantity="0.010",
                )  # fmt: skip
                assert answer[0] == 200, answer
        return finals, time.monotonic() - began

    with serving(tapes, START, speed=math.inf, wall=wall) as ex:
        ex.exchange.settle_ms = 30
        finals, seconds = asyncio.run(asyncio.wait_for(bot(ex), 60))
        trades: list[dict[str, Any]] = ok(
            call(ex.url, "GET", "/fapi/v1/userTrades", wall, symbol="BTCUSDT")
        )
    # Every candle closed once, in order, none skipped.
    assert all(b - a == 300_000 for a, b in itertools.pairwise(finals))
    assert len(trades) == 6
    for final, trade in zip(finals, trades, strict=True):
        nxt = int(np.searchsorted(c.open_time_ms, final + 300_000))
        sign = 1 if trade["side"] == "BUY" else -1
        assert float(trade["price"]) == pytest.approx(float(c.open[nxt]) * (1 + sign * SLIP),
                                                       abs=0.05)  # fmt: skip
        assert trade["time"] == final + 300_000  # market time: the next candle's open
    assert seconds < 20  # six 5-minute candles, far faster than real time
