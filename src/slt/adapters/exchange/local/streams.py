"""The local exchange's WebSocket streams, on the same port as REST (reference §1 items 3-4,
§6, §7; docs/exchange.md "WebSocket streams").

- ``/market/stream?streams=a/b`` (combined frames ``{"stream":..,"data":..}``) and
  ``/market/ws/<a>/<b>`` (raw payloads): klines and mark prices.
- ``/public/...``, same layout: Binance routes only depth and book tickers there, which the
  replay has not, so nothing is pushed.
- ``/private/ws?listenKey=<key>[&events=A/B]``, ``/private/ws/<key>``,
  ``/private/stream?listenKey=..``: the account's user-data events.
- ``/stream``, ``/ws``, ``/ws/<..>``: retired on 2026-04-23; the handshake is accepted and
  nothing is ever pushed.

``StreamHub`` is the publishing side: ``publish_user``, ``wake`` and ``last_activity_wall_ms``
for the order code; its timer pushes klines and mark prices and enforces the connection rules
of ``StreamSettings``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSCloseCode, WSMsgType, web

from slt.adapters.exchange.local import stream_control as control
from slt.adapters.exchange.local import stream_frames as frames
from slt.adapters.exchange.local.listen_keys import ListenKeys
from slt.adapters.exchange.local.stream_channels import Channel, KlineChannel, open_channel
from slt.adapters.exchange.local.stream_connection import (
    MARKET,
    PRIVATE,
    Connection,
)

if TYPE_CHECKING:
    from slt.adapters.exchange.local.server import LocalExchange

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
_DONE = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)


@dataclass(frozen=True)
class StreamSettings:
    """Push periods and connection rules; the defaults are Binance's (reference §6, §7.1).
    Tests shrink them."""

    ping_interval_ms: int = 180_000  # the server pings every 3 minutes
    pong_timeout_ms: int = 600_000  # no pong for 10 minutes: disconnected
    max_inbound_per_s: int = 10  # more incoming messages in a second: disconnected
    max_streams: int = 1_024  # per connection
    lifetime_ms: int = 24 * HOUR_MS  # every connection is closed at 24 hours
    listen_key_ttl_ms: int = HOUR_MS  # after creation or the last PUT
    kline_push_ms: int = 250  # the forming candle at most this often; also the timer's period
    mark_price_ms: int = 3_000  # <symbol>@markPrice
    mark_price_fast_ms: int = 1_000  # <symbol>@markPrice@1s
    queue_limit: int = 10_000  # frames waiting for one client before it is cut off
    close_timeout_s: float = 1.0  # how long a closing client may take to answer the close


@dataclass
class _Subscribers:
    channel: Channel
    name_json: str
    connections: set[Connection] = field(default_factory=set)
    newcomers: set[Connection] = field(default_factory=set)


class StreamHub:
    """Every stream connection of one exchange and what it is subscribed to."""

    def __init__(self, ex: LocalExchange, settings: StreamSettings) -> None:
        self._ex = ex
        self.settings = settings
        self.listen_keys = ListenKeys(settings.listen_key_ttl_ms, ex.wall)
        self.last_activity_wall_ms = 0  # the latest inbound message or connect (wall time)
        self._connections: set[Connection] = set()
        self._channels: dict[str, _Subscribers] = {}
        self._private: dict[str, set[Connection]] = {}  # listenKey -> its connections
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._woken: asyncio.Event | None = None  # made by ``run``, in the server's loop
        self._held: tuple[str, dict[str, Any]] | None = None  # a reordered user event

    # -- the publishing API -------------------------------------------------------------

    def publish_user(self, api_key: str, event: dict[str, Any]) -> None:
        """Send ``event`` to every open private connection of the account's live listenKey;
        dropped when there is none. Never blocks; safe from any thread."""
        if self._other_thread():
            assert self._loop is not None
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody listens
                self._loop.call_soon_threadsafe(self.publish_user, api_key, event)
            return
        f = self._ex.faults
        if f.user_left > 0 and f.user_mode:  # a fault: late, twice, or out of order
            f.user_left -= 1
            self._misdeliver(f.user_mode, f.user_delay_ms, api_key, event)
            return
        if self._held is not None and self._held[0] == api_key:
            held, self._held = self._held, None
            self._deliver(api_key, event)
            self._deliver(*held)
            return
        self._deliver(api_key, event)

    def _misdeliver(self, mode: str, delay_ms: int, api_key: str, event: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        if mode == "duplicate":
            self._deliver(api_key, event)
            self._deliver(api_key, event)
        elif mode == "delay":
            loop.call_later(delay_ms / 1000, self._deliver, api_key, event)
        elif self._held is not None:  # reorder: pairs swap, the later event goes first
            held, self._held = self._held, None
            self._deliver(api_key, event)
            self._deliver(*held)
        else:  # held until the account's next event (or the delay, if none comes)
            self._held = (api_key, event)
            loop.call_later(delay_ms / 1000, self._release_held, api_key, event)

    def _release_held(self, api_key: str, event: dict[str, Any]) -> None:
        if self._held is not None and self._held[1] is event:
            self._held = None
            self._deliver(api_key, event)

    def _deliver(self, api_key: str, event: dict[str, Any]) -> None:
        key = self.listen_keys.live_key(api_key)
        if key is None:
            self.tell_ended_keys()
            return
        connections = self._private.get(key)
        if not connections:
            return
        text, kind = frames.dump(event), event.get("e")
        key_json = frames.dump(key)
        for conn in list(connections):
            wanted = conn.events.get(key)
            if wanted is not None and kind not in wanted:
                continue
            self._send(conn, frames.combined(key_json, text) if conn.combined else text)

    def wake(self) -> None:
        """Market time moved: push the klines and finals now due at once. Safe from any
        thread."""
        woken = self._woken
        if woken is None:
            return  # not running: the first tick will see everything
        if self._other_thread():
            assert self._loop is not None
            with contextlib.suppress(RuntimeError):  # the loop has closed: nothing to push
                self._loop.call_soon_threadsafe(woken.set)
        else:
            woken.set()

    def tell_ended_keys(self) -> None:
        """``listenKeyExpired`` to every connection of a key that expired or was closed; they
        hear nothing more of it."""
        for key in self.listen_keys.ended():
            connections = self._private.pop(key, None)
            if not connections:
                continue
            as_string = self._ex.faults.expired_e_as_string
            text = frames.dump(frames.listen_key_expired(key, self._ex.wire_now(), as_string))
            key_json = frames.dump(key)
            for conn in connections:
                self._send(conn, frames.combined(key_json, text) if conn.combined else text)

    def expire_listen_keys(self) -> int:
        """Every live listenKey expires now (a fault); how many did."""
        count = self.listen_keys.expire_all()
        self.tell_ended_keys()
        return count

    async def drop_connections(self, scope: str = "all") -> int:
        """Cut connections as a network failure would, without a close frame (a fault):
        ``all``, ``market`` (all but the private ones) or ``private``; how many were cut."""
        chosen = [
            c for c in self._connections
            if scope == "all" or (c.route == PRIVATE) == (scope == "private")
        ]  # fmt: skip
        for conn in chosen:
            conn.abort()
        await asyncio.sleep(0)  # their handlers see the end and detach
        return len(chosen)

    # -- the timer ------------------------------------------------------------------------

    async def run(self) -> None:
        """Push what is due every ``kline_push_ms`` of wall time, when a candle closes, and at
        once on ``wake``."""
        loop = self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        woken = self._woken = asyncio.Event()
        period = self.settings.kline_push_ms / 1000
        next_tick = loop.time()
        while True:
            timer = loop.call_at(min(next_tick, self._next_close(loop)), woken.set)
            await woken.wait()
            timer.cancel()
            woken.clear()
            ticked = loop.time() >= next_tick
            try:
                moment = self._moment()
                self.push_finals(moment)
                await asyncio.sleep(0)  # the writers send the finals while updates are built
                self.push_updates(moment, police=ticked)
            except Exception:  # a bug: logged, and the streams keep going
                log.exception("local exchange: pushing the streams failed")
            if ticked:
                next_tick = max(next_tick + period, loop.time())

    def _next_close(self, loop: asyncio.AbstractEventLoop) -> float:
        """The loop time at which the next final of any kline stream is due (inf: none)."""
        speed = self._ex.clock.speed
        closes = [
            s.channel.next_close_ms
            for s in self._channels.values()
            if isinstance(s.channel, KlineChannel)
        ]
        if not closes or not 0 < speed < math.inf:
            return math.inf
        ahead_ms = (min(closes) - self._ex.clock.history_now()) / speed
        return loop.time() + max(ahead_ms + 1, 0) / 1000  # + 1 ms: past the boundary

    def push_due(self, police: bool = True) -> None:
        """Push every channel's due frames; with ``police``, also ping, and close connections
        that broke a rule."""
        moment = self._moment()
        self.push_finals(moment)
        self.push_updates(moment, police)

    def _moment(self) -> tuple[int, int, int]:
        """(market time, wall time, wire shift) now: both passes push the same moment."""
        ex = self._ex
        return ex.clock.history_now(), ex.wall(), ex.clock.shift_ms

    def push_finals(self, moment: tuple[int, int, int]) -> None:
        """The finals now due, first and on their own: they are what clients wait for."""
        now, wall, shift = moment
        f = self._ex.faults
        for subs in list(self._channels.values()):
            texts = subs.channel.finals(now, shift)
            if not texts or f.silent_until_wall_ms > wall:
                continue  # a silent-stream fault: the candle closes unseen
            if f.late_final_left > 0 and isinstance(subs.channel, KlineChannel):
                f.late_final_left -= 1  # a fault: the final comes late, as Binance's can
                asyncio.get_running_loop().call_later(
                    f.late_final_ms / 1000, self._fan_out, subs, texts, set(subs.connections)
                )
                continue
            self._fan_out(subs, texts, subs.connections)

    def push_updates(self, moment: tuple[int, int, int], police: bool) -> None:
        """The forming candles and mark prices now due; with ``police`` the connection rules."""
        now, wall, shift = moment
        push_ms = self.settings.kline_push_ms
        silent = self._ex.faults.silent_until_wall_ms > wall
        for subs in list(self._channels.values()):
            texts = subs.channel.update(now, wall, push_ms, shift)
            if silent:
                subs.newcomers.clear()
                continue
            if texts:
                self._fan_out(subs, texts, subs.connections)
            if subs.newcomers:
                snapshot = subs.channel.snapshot
                if snapshot is not None and not (texts and texts[-1] is snapshot):
                    self._fan_out(subs, [snapshot], subs.newcomers)
                subs.newcomers.clear()
        self.tell_ended_keys()
        if police:
            self._police(wall)

    def _fan_out(self, subs: _Subscribers, texts: list[str], to: set[Connection]) -> None:
        wrapped: list[str] | None = None
        for conn in list(to):
            if conn.combined:
                if wrapped is None:
                    wrapped = [frames.combined(subs.name_json, t) for t in texts]
                batch = wrapped
            else:
                batch = texts
            for text in batch:
                if not self._send(conn, text):
                    break

    def _police(self, wall: int) -> None:
        s = self.settings
        for conn in list(self._connections):
            if conn.closing:
                continue
            if wall - conn.opened_wall_ms >= s.lifetime_ms:
                self._close_later(conn, WSCloseCode.GOING_AWAY, "Connection lifetime reached")
            elif wall - conn.last_pong_wall_ms >= s.pong_timeout_ms:
                self._close_later(conn, WSCloseCode.POLICY_VIOLATION, "No pong received")
            elif wall - conn.last_ping_wall_ms >= s.ping_interval_ms:
                conn.ping(wall)

    def _send(self, conn: Connection, text: str) -> bool:
        if conn.send(text):
            return True
        log.warning(
            "local exchange: a stream client at %s fell %d frames behind; disconnected as a slow "
            "consumer", conn.peer, self.settings.queue_limit,
        )  # fmt: skip
        self._close_later(conn, WSCloseCode.POLICY_VIOLATION, "Slow consumer", flush=False)
        return False

    def _close_later(self, conn: Connection, code: int, reason: str, flush: bool = True) -> None:
        if conn.closing:
            return
        conn.closing = True  # from now on nothing more is queued for it
        task = asyncio.create_task(
            conn.close(code, reason, self.settings.close_timeout_s, flush=flush)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _other_thread(self) -> bool:
        return self._thread is not None and threading.get_ident() != self._thread

    async def close_all(self) -> None:
        """Close every connection (server shutdown), each within ``close_timeout_s``."""
        timeout_s = self.settings.close_timeout_s
        closing = [
            c.close(WSCloseCode.GOING_AWAY, "Server shutdown", timeout_s, flush=False)
            for c in list(self._connections)
        ]
        await asyncio.gather(*closing, *list(self._tasks), return_exceptions=True)

    # -- one connection -----------------------------------------------------------------

    async def serve(
        self, request: web.Request, route: str, combined: bool, names: list[str],
        events: dict[str, frozenset[str] | None],
    ) -> web.StreamResponse:  # fmt: skip
        names = list(dict.fromkeys(names))
        if len(names) > self.settings.max_streams:
            return web.Response(status=400, text=self._too_many_streams(None).frame())
        ws = web.WebSocketResponse(
            autoping=False, timeout=self.settings.close_timeout_s, max_msg_size=1 << 20
        )
        await ws.prepare(request)
        wall = self._ex.wall()
        self.last_activity_wall_ms = wall
        conn = Connection(ws, request, route, combined, wall, self.settings.queue_limit)
        self._connections.add(conn)
        conn.start()
        self._subscribe(conn, names, events, None)
        try:
            await self._read(conn)
        finally:
            self._detach(conn)
            await conn.stop_writer()
        return ws

    async def _read(self, conn: Connection) -> None:
        while True:
            msg = await conn.ws.receive()
            if msg.type in _DONE:
                return
            wall = self._ex.wall()
            self.last_activity_wall_ms = wall
            if not conn.inbound(wall, self.settings.max_inbound_per_s):
                log.info("local exchange: a stream client at %s sent too many messages; "
                         "disconnected", conn.peer)  # fmt: skip
                await conn.close(
                    WSCloseCode.POLICY_VIOLATION, "Too many messages",
                    self.settings.close_timeout_s,
                )  # fmt: skip
                return
            if msg.type == WSMsgType.TEXT:
                self._send(conn, self._control(conn, msg.data))
            elif msg.type == WSMsgType.BINARY:
                text = msg.data.decode("utf-8", "replace")
                self._send(conn, self._control(conn, text))
            elif msg.type == WSMsgType.PING:
                conn.pong(msg.data)
            elif msg.type == WSMsgType.PONG:
                conn.last_pong_wall_ms = wall

    def _control(self, conn: Connection, text: str) -> str:
        """The reply to one control message."""
        try:
            request = control.parse(text)
            if request.method in (control.SUBSCRIBE, control.UNSUBSCRIBE):
                names = control.stream_names(request)
                if request.method == control.SUBSCRIBE:
                    self._subscribe(conn, names, {}, request.id)
                else:
                    self._unsubscribe(conn, names)
                return frames.result(None, request.id)
            if request.method == control.LIST_SUBSCRIPTIONS:
                control.no_params(request)
                return frames.result(list(conn.streams), request.id)
            if request.method == control.SET_PROPERTY:
                control.property_name(request, 2)
                conn.combined = control.property_value(request)
                return frames.result(None, request.id)
            control.property_name(request, 1)
            return frames.result(conn.combined, request.id)
        except control.BadRequest as exc:
            return exc.frame()

    def _too_many_streams(self, request_id: control.RequestId) -> control.BadRequest:
        return control.BadRequest(
            2,
            f"Invalid request: too many streams, at most {self.settings.max_streams} per "
            "connection",
            request_id,
        )

    def _subscribe(
        self, conn: Connection, names: list[str], events: dict[str, frozenset[str] | None],
        request_id: control.RequestId,
    ) -> None:  # fmt: skip
        new = [n for n in names if n not in conn.streams]
        if len(conn.streams) + len(new) > self.settings.max_streams:
            raise self._too_many_streams(request_id)
        ex = self._ex
        for name in new:
            conn.streams[name] = None
            if conn.route == PRIVATE:
                self._private.setdefault(name, set()).add(conn)
                conn.events[name] = events.get(name)
            elif conn.route == MARKET:
                subs = self._channels.get(name)
                if subs is None:
                    channel = open_channel(
                        name, ex.tapes, ex.clock.history_now(), self.settings.mark_price_ms,
                        self.settings.mark_price_fast_ms,
                    )  # fmt: skip
                    if channel is None:
                        log.debug("local exchange: stream %s is not pushed", name)
                        continue
                    subs = self._channels[name] = _Subscribers(channel, frames.dump(name))
                subs.connections.add(conn)
                subs.newcomers.add(conn)

    def _unsubscribe(self, conn: Connection, names: list[str]) -> None:
        for name in names:
            if name not in conn.streams:
                continue
            del conn.streams[name]
            conn.events.pop(name, None)
            private = self._private.get(name)
            if private is not None:
                private.discard(conn)
                if not private:
                    del self._private[name]
            subs = self._channels.get(name)
            if subs is not None and conn in subs.connections:
                subs.connections.discard(conn)
                subs.newcomers.discard(conn)
                if not subs.connections:
                    del self._channels[name]

    def _detach(self, conn: Connection) -> None:
        self._unsubscribe(conn, list(conn.streams))
        self._connections.discard(conn)
