"""Stream faults of the local exchange, seen by a WebSocket client: a silent stream, a late
final kline, user-data events twice / late / out of order, listenKeys expiring, connections
dropped without a close frame."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from slt.adapters.exchange.local.market import SymbolTape
from slt.adapters.exchange.local.streams import StreamSettings
from slt.adapters.exchange.local.tapes import load_tapes
from slt.domain.clock import parse_utc_ms
from tests.conftest import CATMAN_BTC_5M
from tests.support.binance_calls import SystemWall, Wall, call
from tests.support.local_exchange import ACCOUNT, Running, real_store, serving

START = parse_utc_ms("2024-01-01")
WALL_13H = parse_utc_ms("2026-12-07") + 13 * 3_600_000
FAST = StreamSettings(kline_push_ms=50)


@pytest.fixture(scope="module")
def tapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SymbolTape]:
    store = real_store(tmp_path_factory.mktemp("stream-faults-store"), [CATMAN_BTC_5M])
    return load_tapes(store, ["BTCUSDT"], START, None)


async def inject(session: aiohttp.ClientSession, ex: Running, **fault: Any) -> Any:
    async with session.post(f"{ex.url}/_sim/faults", json=fault) as answer:
        assert answer.status == 200, await answer.text()
        return await answer.json()


async def frames(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> list[tuple[float, Any]]:
    """(monotonic arrival, frame) for ``seconds``; stops early if the connection ends."""
    got: list[tuple[float, Any]] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            msg = await asyncio.wait_for(ws.receive(), left)
        except TimeoutError:
            break
        if msg.type != aiohttp.WSMsgType.TEXT:
            got.append((time.monotonic(), msg.type))
            break
        got.append((time.monotonic(), json.loads(msg.data)))
    return got


def test_a_late_final_comes_after_the_next_candle_has_begun(
    tapes: dict[str, SymbolTape],
) -> None:
    async def scenario(ex: Running) -> list[Any]:
        async with aiohttp.ClientSession() as session:
            url = ex.url.replace("http://", "ws://") + "/market/ws/btcusdt@kline_5m"
            async with session.ws_connect(url) as ws:
                await inject(session, ex, kind="late_final", ms=1_500, count=1)
                return [f for _, f in await frames(ws, 3.0)]

    with serving(tapes, START, speed=600, control=True, stream_settings=FAST) as ex:
        got = asyncio.run(scenario(ex))
    klines = [f["k"] for f in got if isinstance(f, dict)]
    finals = [k for k in klines if k["x"]]
    times = [k["t"] for k in finals]
    assert len(times) == len(set(times)) >= 3  # each final once
    # The delayed final: updates of a later candle reached the client before it did.
    late = [k for k in finals if any(u["t"] > k["t"] and not u["x"]
                                     for u in klines[: klines.index(k)])]  # fmt: skip
    assert len(late) == 1 and late[0]["t"] == min(times)
    assert sorted(times) == list(range(min(times), max(times) + 1, 300_000))  # none missing


def test_a_silent_stream_keeps_the_connection_but_sends_nothing_for_a_while(
    tapes: dict[str, SymbolTape],
) -> None:
    async def scenario(ex: Running) -> tuple[list[Any], list[Any]]:
        async with aiohttp.ClientSession() as session:
            url = ex.url.replace("http://", "ws://") + "/market/ws/btcusdt@kline_5m"
            async with session.ws_connect(url) as ws:
                await frames(ws, 0.3)
                await inject(session, ex, kind="silent_streams", seconds=1.0)
                during = await frames(ws, 0.9)
                after = await frames(ws, 1.0)
                return during, after

    with serving(tapes, START, speed=600, control=True, stream_settings=FAST) as ex:
        during, after = asyncio.run(scenario(ex))
    assert len(during) <= 1  # at most a frame already on its way
    assert after and all(isinstance(f, dict) for _, f in after)


async def _private(session: aiohttp.ClientSession, ex: Running) -> tuple[str, Any]:
    async with session.post(f"{ex.url}/fapi/v1/listenKey",
                            headers={"X-MBX-APIKEY": ACCOUNT.key}) as answer:  # fmt: skip
        key = (await answer.json())["listenKey"]
    url = ex.url.replace("http://", "ws://") + f"/private/ws?listenKey={key}"
    return key, await session.ws_connect(url)


def _kinds(got: list[tuple[float, Any]]) -> list[str]:
    return [
        f"{f['e']}:{f['o']['x']}" if f["e"] == "ORDER_TRADE_UPDATE" else f["e"]
        for _, f in got
        if isinstance(f, dict)
    ]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("duplicate", ["ORDER_TRADE_UPDATE:NEW", "ORDER_TRADE_UPDATE:NEW", "TRADE_LITE",
                       "ORDER_TRADE_UPDATE:TRADE", "ACCOUNT_UPDATE"]),
        ("reorder", ["TRADE_LITE", "ORDER_TRADE_UPDATE:NEW", "ORDER_TRADE_UPDATE:TRADE",
                     "ACCOUNT_UPDATE"]),
        ("delay", ["TRADE_LITE", "ORDER_TRADE_UPDATE:TRADE", "ACCOUNT_UPDATE",
                   "ORDER_TRADE_UPDATE:NEW"]),
    ],
)  # fmt: skip
def test_user_events_can_come_twice_late_or_out_of_order(
    tapes: dict[str, SymbolTape], mode: str, expected: list[str]
) -> None:
    wall = Wall(WALL_13H)

    async def scenario(ex: Running) -> list[tuple[float, Any]]:
        async with aiohttp.ClientSession() as session:
            _, ws = await _private(session, ex)
            await inject(session, ex, kind="user_events", mode=mode, count=1, delay_ms=300)
            answer = await asyncio.to_thread(
                call, ex.url, "POST", "/fapi/v1/order", wall, symbol="BTCUSDT", side="BUY",
                type="MARKET", quantity="0.010",
            )  # fmt: skip
            assert answer[0] == 200
            got = await frames(ws, 1.0)
            await ws.close()
            return got

    with serving(tapes, START, wall=wall, control=True) as ex:
        got = asyncio.run(scenario(ex))
    assert _kinds(got) == expected


@pytest.mark.parametrize("e_as_string", [False, True])
def test_expired_listen_keys_are_told_and_a_keepalive_then_needs_a_new_key(
    tapes: dict[str, SymbolTape], e_as_string: bool
) -> None:
    async def scenario(ex: Running) -> tuple[str, list[Any], int, Any]:
        async with aiohttp.ClientSession() as session:
            key, ws = await _private(session, ex)
            await inject(session, ex, kind="expire_listen_keys", e_as_string=e_as_string)
            got = [f for _, f in await frames(ws, 1.0)]
            async with session.put(f"{ex.url}/fapi/v1/listenKey",
                                   headers={"X-MBX-APIKEY": ACCOUNT.key}) as answer:  # fmt: skip
                return key, got, answer.status, await answer.json()

    with serving(tapes, START, wall=SystemWall(), control=True) as ex:
        key, got, status, body = asyncio.run(scenario(ex))
    assert got[0]["e"] == "listenKeyExpired" and got[0]["listenKey"] == key
    assert isinstance(got[0]["E"], str if e_as_string else int)  # Binance's seen variant
    assert status == 400 and body["code"] == -1125


def test_dropped_connections_end_without_a_close_frame_and_others_keep_streaming(
    tapes: dict[str, SymbolTape],
) -> None:
    async def scenario(ex: Running) -> tuple[Any, list[Any], Any]:
        async with aiohttp.ClientSession() as session:
            _, private = await _private(session, ex)
            url = ex.url.replace("http://", "ws://") + "/market/ws/btcusdt@kline_5m"
            async with session.ws_connect(url) as market:
                answer = await inject(session, ex, kind="drop_connections", scope="private")
                ended = await frames(private, 2.0)
                still = await frames(market, 0.5)
                return answer, ended, still

    with serving(tapes, START, speed=600, control=True, stream_settings=FAST) as ex:
        answer, ended, still = asyncio.run(scenario(ex))
    assert answer["applied"][0]["dropped"] == 1
    assert ended and ended[-1][1] in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    assert still and all(isinstance(f, dict) for _, f in still)
