"""The local exchange's WebSocket streams over real BTCUSDT futures candles, on a real server
on 127.0.0.1, with aiohttp's WebSocket client: klines and mark prices, control messages and
their error frames, the connection rules, the retired URLs, listenKeys and the user-data
stream."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp
import pytest

from slt.adapters.exchange.local.auth import ApiAccount
from slt.adapters.exchange.local.market import SymbolTape
from slt.adapters.exchange.local.streams import StreamSettings
from slt.adapters.exchange.local.tapes import load_tapes
from slt.domain.clock import parse_utc_ms
from tests.conftest import CATMAN, CATMAN_BTC_5M
from tests.support.local_exchange import ACCOUNT, Running, real_store, serving

START = parse_utc_ms("2024-01-01")
# A fixed wall clock (2026-12-07 13:47:12.345 UTC): market time stands still, answers are exact.
WALL = parse_utc_ms("2026-12-07") + 13 * 3_600_000 + 47 * 60_000 + 12_345
KLINES = "btcusdt@kline_5m"
OTHER = ApiAccount("otherKey0123456789", "otherSecret0123456789abcdef")
FAST = StreamSettings(kline_push_ms=50)


@pytest.fixture(scope="module")
def tapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SymbolTape]:
    root = tmp_path_factory.mktemp("streams-store")
    store = real_store(root, [CATMAN_BTC_5M, CATMAN / "BTC_USDT_USDT-8h-funding_rate.feather"])
    return load_tapes(store, ["BTCUSDT"], START, None)


def run(scenario: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(scenario, 30))


def ws_url(ex: Running, path: str) -> str:
    return ex.url.replace("http://", "ws://") + path


def rest(
    ex: Running, method: str, path: str, api_key: str | None = None
) -> tuple[int, dict[str, str], Any]:
    headers = {"X-MBX-APIKEY": api_key} if api_key else {}
    request = urllib.request.Request(ex.url + path, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), json.loads(error.read())


async def receive_json(ws: aiohttp.ClientWebSocketResponse, seconds: float = 5) -> Any:
    msg = await asyncio.wait_for(ws.receive(), seconds)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)


async def collect(
    ws: aiohttp.ClientWebSocketResponse, seconds: float, enough: Callable[[list[Any]], bool]
) -> list[Any]:
    """Frames until ``enough`` of them arrived, or ``seconds`` passed."""
    got: list[Any] = []
    deadline = time.monotonic() + seconds
    while not enough(got):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            got.append(await receive_json(ws, left))
        except TimeoutError:
            break
    return got


async def request(ws: aiohttp.ClientWebSocketResponse, body: Any) -> Any:
    """Send a control message; its reply (frames pushed meanwhile are skipped)."""
    await ws.send_str(body if isinstance(body, str) else json.dumps(body))
    while True:
        frame = await receive_json(ws)
        if "result" in frame or "error" in frame:
            return frame


async def close_code(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> int | None:
    """The code the server closed with (None: still open after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:  # not receive(timeout=): aiohttp restarts that timeout at every ping it answers
            msg = await asyncio.wait_for(ws.receive(), left)
        except TimeoutError:
            return None
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            return code_of(msg, ws)
    return None


def code_of(msg: aiohttp.WSMessage, ws: aiohttp.ClientWebSocketResponse) -> int | None:
    """The server's close code: the CLOSE frame's (aiohttp's ``close_code`` may already hold
    what its own closing handshake ended with)."""
    return int(msg.data) if msg.type == aiohttp.WSMsgType.CLOSE else ws.close_code


def finals(frames: list[Any]) -> list[dict[str, Any]]:
    return [f["data"]["k"] for f in frames if f.get("data", {}).get("k", {}).get("x")]


# -- klines -------------------------------------------------------------------------------


def test_a_combined_kline_stream_sends_updates_then_every_final_once_in_order_at_rest_prices(
    tapes: dict[str, SymbolTape],
) -> None:
    async def scenario(ex: Running) -> list[Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(ws_url(ex, f"/market/stream?streams={KLINES}")) as ws,
        ):
            return await collect(ws, 15, lambda got: len(finals(got)) >= 4)

    with serving(tapes, START, speed=600) as ex:  # a 5m candle lasts half a second
        frames = run(scenario(ex))
        closed = finals(frames)
        status, _, rows = rest(
            ex, "GET", f"/fapi/v1/klines?symbol=BTCUSDT&interval=5m&startTime={closed[0]['t']}"
            f"&limit={len(closed)}",
        )  # fmt: skip
    assert status == 200 and len(closed) >= 4
    assert all(f["stream"] == KLINES and f["data"]["e"] == "kline" for f in frames)
    assert [b["t"] - a["t"] for a, b in itertools.pairwise(closed)] == [300_000] * (len(closed) - 1)
    fields = ["t", "o", "h", "l", "c", "v", "T", "q", "n", "V", "Q", "B"]
    assert [[k[f] for f in fields] for k in closed] == rows
    updates = [f["data"]["k"] for f in frames if not f["data"]["k"]["x"]]
    for k in closed:  # each candle was announced while it formed, with its real open
        assert any(u["t"] == k["t"] and u["o"] == k["o"] for u in updates)
    events = [f["data"]["E"] for f in frames]
    assert events == sorted(events)


def test_a_late_timer_sends_every_final_that_closed_since_oldest_first(
    tapes: dict[str, SymbolTape],
) -> None:
    async def scenario(ex: Running) -> list[Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(ws_url(ex, f"/market/ws/{KLINES}")) as ws,
        ):
            return await collect(ws, 15, lambda got: sum(k["k"]["x"] for k in got) >= 20)

    # At speed 6000 five 5m candles close between two ticks of 250 ms.
    with serving(tapes, START, speed=6000) as ex:
        frames = run(scenario(ex))
    assert all(f["e"] == "kline" and "stream" not in f for f in frames)  # raw: payloads alone
    closed = [f["k"] for f in frames if f["k"]["x"]]
    starts = [k["t"] for k in closed]
    assert starts == list(range(starts[0], starts[0] + 300_000 * len(starts), 300_000))
    candles = tapes["BTCUSDT"].candles
    first = int(list(candles.open_time_ms).index(starts[0]))
    assert [float(k["c"]) for k in closed] == pytest.approx(
        candles.close[first : first + len(closed)].tolist()
    )


def test_wake_pushes_the_due_final_at_once_without_waiting_for_the_timer(
    tapes: dict[str, SymbolTape],
) -> None:
    wall = [WALL]
    slow = StreamSettings(kline_push_ms=60_000)  # the timer alone would wait a minute

    async def scenario(ex: Running) -> tuple[Any, float]:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(ws_url(ex, f"/market/ws/{KLINES}")) as ws,
        ):
            await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 1})
            ex.exchange.hub.wake()
            forming = await receive_json(ws)
            wall[0] += 300_000  # five minutes of market time pass
            began = time.monotonic()
            ex.exchange.hub.wake()
            final = await receive_json(ws)
            return (forming, final), time.monotonic() - began

    with serving(tapes, START, wall=lambda: wall[0], stream_settings=slow) as ex:
        (forming, final), took_s = run(scenario(ex))
    assert not forming["k"]["x"] and final["k"]["x"] and final["k"]["t"] == forming["k"]["t"]
    assert took_s < 1.0


# -- mark price ---------------------------------------------------------------------------


def test_the_mark_price_stream_carries_the_premium_index_values(
    tapes: dict[str, SymbolTape],
) -> None:
    async def scenario(ex: Running) -> Any:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(ws_url(ex, "/market/ws/btcusdt@markPrice@1s")) as ws,
        ):
            return await receive_json(ws)

    with serving(tapes, START, wall=lambda: WALL) as ex:
        event = run(scenario(ex))
        _, _, premium = rest(ex, "GET", "/fapi/v1/premiumIndex?symbol=BTCUSDT")
    assert event == {
        "e": "markPriceUpdate", "E": premium["time"], "s": "BTCUSDT",
        "p": premium["markPrice"], "i": premium["indexPrice"],
        "P": premium["estimatedSettlePrice"], "r": premium["lastFundingRate"],
        "T": premium["nextFundingTime"],
    }  # fmt: skip
    assert event["E"] == WALL  # at speed 1 market time is the wall clock


def test_mark_prices_come_every_second_on_at_1s_and_every_three_seconds_otherwise(
    tapes: dict[str, SymbolTape],
) -> None:
    async def scenario(ex: Running) -> list[Any]:
        streams = "btcusdt@markPrice/btcusdt@markPrice@1s"
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(ws_url(ex, f"/market/stream?streams={streams}")) as ws,
        ):
            return await collect(ws, 3.6, lambda got: False)

    with serving(tapes, START, speed=60) as ex:
        frames = run(scenario(ex))
    counts = {name: sum(f["stream"] == name for f in frames) for name in
              ("btcusdt@markPrice", "btcusdt@markPrice@1s")}  # fmt: skip
    assert counts == {"btcusdt@markPrice": 2, "btcusdt@markPrice@1s": 4}


# -- control messages ---------------------------------------------------------------------


def test_subscribe_unsubscribe_and_list_subscriptions_answer_as_binance_documents(
    tapes: dict[str, SymbolTape],
) -> None:
    async def scenario(ex: Running) -> list[Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(ws_url(ex, "/market/ws")) as ws,
        ):
            return [
                await request(
                    ws, {"method": "SUBSCRIBE", "params": [KLINES, "btcusdt@markPrice"], "id": 1}
                ),
                await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 3}),
                await request(ws, {"method": "UNSUBSCRIBE", "params": [KLINES], "id": 312}),
                await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 4}),
                await request(ws, {"method": "GET_PROPERTY", "params": ["combined"], "id": 2}),
            ]

    with serving(tapes, START, wall=lambda: WALL) as ex:
        replies = run(scenario(ex))
    assert replies == [
        {"result": None, "id": 1},
        {"result": [KLINES, "btcusdt@markPrice"], "id": 3},
        {"result": None, "id": 312},
        {"result": ["btcusdt@markPrice"], "id": 4},
        {"result": False, "id": 2},
    ]


def test_set_property_combined_switches_a_raw_connection_to_combined_frames(
    tapes: dict[str, SymbolTape],
) -> None:
    async def scenario(ex: Running) -> tuple[Any, Any, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(ws_url(ex, "/market/ws")) as ws,
        ):
            reply = await request(
                ws, {"method": "SET_PROPERTY", "params": ["combined", True], "id": 5}
            )
            got = await request(ws, {"method": "GET_PROPERTY", "params": ["combined"], "id": 2})
            await request(ws, {"method": "SUBSCRIBE", "params": [KLINES], "id": 6})
            return reply, got, await receive_json(ws)

    with serving(tapes, START, wall=lambda: WALL, stream_settings=FAST) as ex:
        reply, got, frame = run(scenario(ex))
    assert reply == {"result": None, "id": 5} and got == {"result": True, "id": 2}
    assert frame["stream"] == KLINES and frame["data"]["e"] == "kline"


def test_garbage_gets_binance_error_frames_and_the_connection_keeps_working(
    tapes: dict[str, SymbolTape],
) -> None:
    garbage: list[Any] = [
        "not json at all",
        {"method": "FLY", "params": [], "id": 7},
        {"method": "SUBSCRIBE", "params": "btcusdt@kline_5m", "id": 8},
        {"method": "SUBSCRIBE", "params": [1, 2], "id": 9},
        {"method": "LIST_SUBSCRIPTIONS", "id": -1},
        {"method": "LIST_SUBSCRIPTIONS", "id": 1.5},
        {"params": [], "id": 10},
        {"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 11},
        {"method": "GET_PROPERTY", "params": ["colour"], "id": 12},
        [1, 2, 3],
    ]

    async def scenario(ex: Running) -> tuple[list[Any], Any, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(ws_url(ex, "/market/ws")) as ws,
        ):
            replies = []
            for body in garbage:
                replies.append(await request(ws, body))
                await asyncio.sleep(0.2)  # well under the 10 messages a second, even under load
            await ws.send_bytes(b"\xff\xfe binary junk")
            binary = await receive_json(ws)
            still = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 13})
            return replies, binary, still

    with serving(tapes, START) as ex:  # the real wall clock: the messages are spread out
        replies, binary, still = run(scenario(ex))
    codes = [(r["error"]["code"], r["id"]) for r in replies]
    assert codes == [(3, None), (2, 7), (2, 8), (2, 9), (2, None), (2, None), (2, 10), (1, 11),
                     (0, 12), (2, None)]  # fmt: skip
    messages = [r["error"]["msg"] for r in replies]
    assert messages[0].startswith("Invalid JSON: expected value at line 1 column 1")
    assert messages[1].startswith("Invalid request: unknown variant FLY, expected one of SUBSCRIBE")
    assert messages[4] == "Invalid request: request ID must be an unsigned integer"
    assert messages[7] == "Invalid value type: expected Boolean"
    assert messages[8] == "Unknown property"
    assert binary["error"]["code"] == 3
    assert still == {"result": [], "id": 13}


# -- connection rules ---------------------------------------------------------------------


def test_more_than_ten_messages_in_a_second_close_the_connection_and_others_keep_streaming(
    tapes: dict[str, SymbolTape],
) -> None:
    async def scenario(ex: Running) -> tuple[int | None, int, list[Any]]:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(ws_url(ex, f"/market/ws/{KLINES}")) as calm,
            session.ws_connect(ws_url(ex, "/market/ws")) as noisy,
        ):
            for i in range(11):
                await noisy.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
            replies = 0
            while True:
                msg = await noisy.receive(timeout=5)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                replies += 1
            code = code_of(msg, noisy)
            later = await collect(calm, 5, lambda got: len(got) >= 4)
            return code, replies, later

    with serving(tapes, START, speed=6000) as ex:
        code, replies, later = run(scenario(ex))
    assert code == 1008 and replies == 10
    assert len(later) >= 4 and all(f["e"] == "kline" for f in later)


def test_a_subscription_beyond_the_stream_cap_is_refused_and_so_is_such_a_connect(
    tapes: dict[str, SymbolTape],
) -> None:
    capped = StreamSettings(max_streams=3)

    async def scenario(ex: Running) -> tuple[Any, Any, int]:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ws_url(ex, "/market/stream?streams=a/b")) as ws:
                refused = await request(ws, {"method": "SUBSCRIBE", "params": ["c", "d"], "id": 1})
                listed = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 2})
            with pytest.raises(aiohttp.WSServerHandshakeError) as handshake:
                await session.ws_connect(ws_url(ex, "/market/stream?streams=a/b/c/d"))
            return refused, listed, handshake.value.status

    with serving(tapes, START, wall=lambda: WALL, stream_settings=capped) as ex:
        refused, listed, status = run(scenario(ex))
    assert refused["error"]["code"] == 2 and "too many streams" in refused["error"]["msg"]
    assert refused["id"] == 1 and listed == {"result": ["a", "b"], "id": 2}
    assert status == 400


def test_the_server_pings_and_closes_a_client_that_never_answers(
    tapes: dict[str, SymbolTape],
) -> None:
    rules = StreamSettings(ping_interval_ms=150, pong_timeout_ms=600, kline_push_ms=50)

    async def scenario(ex: Running) -> tuple[int, int | None, int | None]:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(ws_url(ex, "/market/ws"), autoping=False) as silent,
            session.ws_connect(ws_url(ex, "/market/ws")) as polite,  # aiohttp answers pings
        ):
            # aiohttp answers a ping while the client reads: the polite one keeps reading.
            polite_watch = asyncio.create_task(close_code(polite, 1.5))
            pings = 0
            while True:
                msg = await silent.receive(timeout=5)
                if msg.type == aiohttp.WSMsgType.PING:
                    pings += 1
                    continue
                break
            return pings, code_of(msg, silent), await polite_watch

    with serving(tapes, START, stream_settings=rules) as ex:
        pings, code, polite_code = run(scenario(ex))
    assert pings >= 3 and code == 1008
    assert polite_code is None  # its pongs keep it connected


def test_a_connection_is_closed_when_its_lifetime_ends(tapes: dict[str, SymbolTape]) -> None:
    rules = StreamSettings(lifetime_ms=300, kline_push_ms=50)

    async def scenario(ex: Running) -> tuple[int | None, float]:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(ws_url(ex, "/market/ws")) as ws,
        ):
            began = time.monotonic()
            return await close_code(ws, 5), time.monotonic() - began

    with serving(tapes, START, stream_settings=rules) as ex:
        code, took_s = run(scenario(ex))
    assert code == 1001 and 0.2 < took_s < 2


def test_pings_from_the_client_are_answered_with_pongs(tapes: dict[str, SymbolTape]) -> None:
    async def scenario(ex: Running) -> Any:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(ws_url(ex, "/market/ws"), autoping=False) as ws,
        ):
            await ws.ping(b"are you there")
            return await ws.receive(timeout=5)

    with serving(tapes, START, wall=lambda: WALL) as ex:
        msg = run(scenario(ex))
    assert msg.type == aiohttp.WSMsgType.PONG and msg.data == b"are you there"


def test_a_slow_consumer_is_cut_off_and_logged(
    tapes: dict[str, SymbolTape], caplog: pytest.LogCaptureFixture
) -> None:
    small = StreamSettings(queue_limit=50)

    async def scenario(ex: Running) -> int | None:
        _, _, opened = rest(ex, "POST", "/fapi/v1/listenKey", ACCOUNT.key)
        url = ws_url(ex, f"/private/ws?listenKey={opened['listenKey']}")
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            hub = ex.exchange.hub
            # 500 events in one go: the queue overflows before the writer can drain it.
            flood = [{"e": "ACCOUNT_UPDATE", "E": i} for i in range(500)]
            await asyncio.sleep(0.1)
            assert ex.loop is not None
            ex.loop.call_soon_threadsafe(lambda: [hub.publish_user(ACCOUNT.key, e) for e in flood])
            return await close_code(ws, 5)

    with caplog.at_level(logging.WARNING), serving(tapes, START, stream_settings=small) as ex:
        code = run(scenario(ex))
    assert code == 1008
    assert "slow consumer" in caplog.text


def test_shutting_the_server_down_closes_every_websocket_at_once(
    tapes: dict[str, SymbolTape],
) -> None:
    async def scenario() -> tuple[list[int | None], float]:
        server = serving(tapes, START, speed=600)
        ex = server.__enter__()
        async with aiohttp.ClientSession() as session:
            sockets = [
                await session.ws_connect(ws_url(ex, path))
                for path in (f"/market/ws/{KLINES}", "/stream", "/private/ws?listenKey=x")
            ]
            watching = [asyncio.create_task(close_code(ws, 5)) for ws in sockets]
            began = time.monotonic()
            # What leaving ``serving`` does: the server's runner cleans up, in its thread.
            await asyncio.get_running_loop().run_in_executor(
                None, server.__exit__, None, None, None
            )
            took = time.monotonic() - began
            codes = [await w for w in watching]
            return codes, took

    codes, took_s = run(scenario())
    assert codes == [1001, 1001, 1001] and took_s < 3


# -- URLs that push nothing -----------------------------------------------------------------


def test_retired_urls_and_streams_the_exchange_lacks_accept_the_handshake_and_stay_silent(
    tapes: dict[str, SymbolTape],
) -> None:
    silent_paths = [
        f"/stream?streams={KLINES}",  # retired on 2026-04-23
        f"/ws/{KLINES}",
        "/ws",
        f"/public/stream?streams={KLINES}",  # klines are routed to /market only
        "/market/ws/ethusdt@kline_5m",  # a symbol not replayed
        "/market/ws/btcusdt@kline_1m",  # finer than the stored 5m candles
        "/market/ws/btcusdt@aggTrade",  # a stream the replay cannot give
    ]

    async def scenario(ex: Running) -> tuple[list[Any], list[Any], list[Any]]:
        async with aiohttp.ClientSession() as session:
            sockets = [await session.ws_connect(ws_url(ex, p)) for p in silent_paths]
            live = await session.ws_connect(ws_url(ex, f"/market/ws/{KLINES}"))
            subscribe = {"method": "SUBSCRIBE", "params": [KLINES], "id": 1}
            acks = [await request(sockets[2], subscribe)]
            heard = await collect(live, 1.0, lambda got: False)
            silence = [await collect(ws, 0.05, lambda got: False) for ws in sockets]
            for ws in [*sockets, live]:
                await ws.close()
            return acks, heard, silence

    with serving(tapes, START, speed=6000) as ex:
        acks, heard, silence = run(scenario(ex))
    assert acks == [{"result": None, "id": 1}]
    assert len(heard) > 10
    assert silence == [[]] * len(silent_paths)


# -- listenKeys and the user-data stream ----------------------------------------------------


def test_listen_key_post_put_delete_as_binance(tapes: dict[str, SymbolTape]) -> None:
    with serving(tapes, START, wall=lambda: WALL) as ex:
        first = rest(ex, "POST", "/fapi/v1/listenKey", ACCOUNT.key)
        again = rest(ex, "POST", "/fapi/v1/listenKey", ACCOUNT.key)
        kept = rest(ex, "PUT", "/fapi/v1/listenKey", ACCOUNT.key)
        closed = rest(ex, "DELETE", "/fapi/v1/listenKey", ACCOUNT.key)
        gone = rest(ex, "PUT", "/fapi/v1/listenKey", ACCOUNT.key)
        fresh = rest(ex, "POST", "/fapi/v1/listenKey", ACCOUNT.key)
        no_key = rest(ex, "POST", "/fapi/v1/listenKey")
    status, headers, body = first
    key = body["listenKey"]
    assert status == 200 and len(key) == 64 and key.isalnum()
    assert headers["X-MBX-USED-WEIGHT-1M"] == "1"
    assert again[2] == {"listenKey": key} and kept[2] == {"listenKey": key}
    assert closed[:1] == (200,) and closed[2] == {}
    assert gone[0] == 400 and gone[2] == {"code": -1125, "msg": "This listenKey does not exist."}
    assert fresh[2]["listenKey"] != key
    assert no_key[0] == 401 and no_key[2]["code"] == -2014


def test_a_private_connection_receives_its_accounts_events_only(
    tapes: dict[str, SymbolTape],
) -> None:
    mine = {"e": "ORDER_TRADE_UPDATE", "E": 1, "T": 1, "o": {"s": "BTCUSDT", "i": 7}}
    theirs = {"e": "ORDER_TRADE_UPDATE", "E": 2, "T": 2, "o": {"s": "BTCUSDT", "i": 8}}
    balance = {"e": "ACCOUNT_UPDATE", "E": 3, "T": 3, "a": {"m": "ORDER", "B": [], "P": []}}

    async def scenario(ex: Running) -> tuple[list[Any], list[Any], str]:
        key = rest(ex, "POST", "/fapi/v1/listenKey", ACCOUNT.key)[2]["listenKey"]
        other = rest(ex, "POST", "/fapi/v1/listenKey", OTHER.key)[2]["listenKey"]
        async with aiohttp.ClientSession() as session:
            raw = await session.ws_connect(ws_url(ex, f"/private/ws?listenKey={key}"))
            combined = await session.ws_connect(ws_url(ex, f"/private/stream?listenKey={key}"))
            only_orders = await session.ws_connect(
                ws_url(ex, f"/private/ws/{key}?events=ORDER_TRADE_UPDATE")
            )
            stranger = await session.ws_connect(ws_url(ex, f"/private/ws?listenKey={other}"))
            await asyncio.sleep(0.1)
            hub = ex.exchange.hub
            hub.publish_user(ACCOUNT.key, mine)  # from this thread: handed to the server's loop
            hub.publish_user(ACCOUNT.key, balance)
            hub.publish_user(OTHER.key, theirs)
            hub.publish_user("nobodyKey0123456", theirs)  # no live key: dropped
            got = [await collect(ws, 0.5, lambda g: False) for ws in (raw, combined, only_orders)]
            heard = await collect(stranger, 0.3, lambda g: False)
            for ws in (raw, combined, only_orders, stranger):
                await ws.close()
            return got, heard, key

    with serving(tapes, START, accounts=[ACCOUNT, OTHER]) as ex:
        (raw, combined, only_orders), heard, key = run(scenario(ex))
    assert raw == [mine, balance]
    assert combined == [{"stream": key, "data": mine}, {"stream": key, "data": balance}]
    assert only_orders == [mine]
    assert heard == [theirs]


def test_an_expired_listen_key_says_so_once_and_then_nothing_more_arrives(
    tapes: dict[str, SymbolTape],
) -> None:
    short = StreamSettings(listen_key_ttl_ms=400, kline_push_ms=50)

    async def scenario(ex: Running) -> tuple[str, list[Any], float, Any]:
        key = rest(ex, "POST", "/fapi/v1/listenKey", ACCOUNT.key)[2]["listenKey"]
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(ws_url(ex, f"/private/ws?listenKey={key}")) as ws,
        ):
            began = time.monotonic()
            expired = await receive_json(ws, 5)
            took = time.monotonic() - began
            ex.exchange.hub.publish_user(ACCOUNT.key, {"e": "ACCOUNT_UPDATE", "E": 1})
            after = await collect(ws, 0.5, lambda g: False)
            put = rest(ex, "PUT", "/fapi/v1/listenKey", ACCOUNT.key)
            return key, [expired, *after], took, put

    with serving(tapes, START, stream_settings=short) as ex:
        key, frames, took_s, put = run(scenario(ex))
    assert len(frames) == 1 and 0.2 < took_s < 1.5
    assert frames[0]["e"] == "listenKeyExpired" and frames[0]["listenKey"] == key
    assert isinstance(frames[0]["E"], int)
    assert put[2]["code"] == -1125


def test_deleting_a_listen_key_tells_its_connections_it_expired(
    tapes: dict[str, SymbolTape],
) -> None:
    async def scenario(ex: Running) -> list[Any]:
        key = rest(ex, "POST", "/fapi/v1/listenKey", ACCOUNT.key)[2]["listenKey"]
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(ws_url(ex, f"/private/stream?listenKey={key}")) as ws,
        ):
            await asyncio.sleep(0.1)
            rest(ex, "DELETE", "/fapi/v1/listenKey", ACCOUNT.key)
            frames = await collect(ws, 0.5, lambda g: False)
            return [key, frames, await close_code(ws, 0.1)]

    with serving(tapes, START, wall=lambda: WALL) as ex:
        key, frames, code = run(scenario(ex))
    assert frames == [
        {"stream": key, "data": {"e": "listenKeyExpired", "E": WALL, "listenKey": key}}
    ]
    assert code is None  # the connection stays open, silent (Binance does not disconnect)


def test_dropping_connections_cuts_them_without_a_close_frame_by_scope(
    tapes: dict[str, SymbolTape],
) -> None:
    async def scenario(ex: Running) -> tuple[int, Any, Any, int | None]:
        async with aiohttp.ClientSession() as session:
            market = await session.ws_connect(ws_url(ex, f"/market/ws/{KLINES}"))
            private = await session.ws_connect(ws_url(ex, "/private/ws?listenKey=x"))
            await asyncio.sleep(0.1)
            assert ex.loop is not None
            dropped = asyncio.run_coroutine_threadsafe(
                ex.exchange.hub.drop_connections("market"), ex.loop
            ).result(5)
            while (msg := await asyncio.wait_for(market.receive(), 5)).type == (
                aiohttp.WSMsgType.TEXT
            ):
                pass  # frames sent before the cut
            still = await close_code(private, 0.3)
            await private.close()
            return dropped, msg.type, market.close_code, still

    with serving(tapes, START, speed=600) as ex:
        dropped, kind, code, still = run(scenario(ex))
    assert dropped == 1
    assert kind in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)  # no CLOSE frame
    assert code == 1006 and still is None


def test_expiring_every_listen_key_at_once_tells_each_connection(
    tapes: dict[str, SymbolTape],
) -> None:
    async def scenario(ex: Running) -> tuple[str, int, Any]:
        key = rest(ex, "POST", "/fapi/v1/listenKey", ACCOUNT.key)[2]["listenKey"]
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(ws_url(ex, f"/private/ws?listenKey={key}")) as ws,
        ):
            await asyncio.sleep(0.1)
            assert ex.loop is not None
            future = asyncio.run_coroutine_threadsafe(_expire(ex), ex.loop)
            count = future.result(5)
            return key, count, await receive_json(ws)

    with serving(tapes, START, wall=lambda: WALL) as ex:
        key, count, event = run(scenario(ex))
    assert count == 1
    assert event == {"e": "listenKeyExpired", "E": WALL, "listenKey": key}


async def _expire(ex: Running) -> int:
    return ex.exchange.hub.expire_listen_keys()
