"""One WebSocket connection of the local exchange: its subscriptions, a bounded queue of
outgoing frames drained by its own writer task (so publishing never waits on a slow client),
and the inbound-message rule."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from aiohttp import web

log = logging.getLogger(__name__)

MARKET, PUBLIC, PRIVATE, LEGACY = "market", "public", "private", "legacy"
_PING, _PONG = "ping", "pong"
Outgoing = str | tuple[str, bytes]


class Connection:
    """``streams``: the names subscribed, in order; on /private each is a listenKey, and
    ``events`` holds its ``events=`` filter (None: every event)."""

    def __init__(
        self, ws: web.WebSocketResponse, request: web.Request, route: str, combined: bool,
        opened_wall_ms: int, queue_limit: int,
    ) -> None:  # fmt: skip
        self.ws = ws
        self.route = route
        self.combined = combined
        self.opened_wall_ms = opened_wall_ms
        self.last_ping_wall_ms = opened_wall_ms
        self.last_pong_wall_ms = opened_wall_ms
        self.streams: dict[str, None] = {}
        self.events: dict[str, frozenset[str] | None] = {}
        self.peer = request.remote or "?"
        self.closing = False  # set when a close begins: nothing more is queued
        self._close_started = False
        self._transport = request.transport
        self._queue: deque[Outgoing] = deque()
        self._queue_limit = queue_limit
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()  # the queue is empty and nothing is being written
        self._idle.set()
        self._inbound: deque[int] = deque()
        self._writer: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write())

    def send(self, text: str) -> bool:
        """Queue a text frame; False when the queue is full (the caller cuts the client off)."""
        if self.closing:
            return True
        if len(self._queue) >= self._queue_limit:
            return False
        self._queue.append(text)
        self._idle.clear()
        self._ready.set()
        return True

    def ping(self, wall_ms: int) -> None:
        self.last_ping_wall_ms = wall_ms
        self._control(_PING, b"")

    def pong(self, payload: bytes) -> None:
        self._control(_PONG, payload)

    def inbound(self, wall_ms: int, per_second: int) -> bool:
        """Count one incoming message; False when more than ``per_second`` arrived within one
        second."""
        self._inbound.append(wall_ms)
        while self._inbound and self._inbound[0] <= wall_ms - 1000:
            self._inbound.popleft()
        return len(self._inbound) <= per_second

    async def close(self, code: int, message: str, timeout_s: float, flush: bool = True) -> None:
        """Close with ``code``, after the frames already queued unless ``flush`` is False; a
        client that takes longer than ``timeout_s`` for either is cut off."""
        if self._close_started:
            return
        self._close_started = self.closing = True
        if flush:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout_s)
        if self._writer is not None:
            self._writer.cancel()
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=message.encode()), timeout_s)
        except (TimeoutError, ConnectionError, RuntimeError):
            if self._transport is not None:
                self._transport.abort()

    def abort(self) -> None:
        """Cut the connection as a network failure would: no close frame."""
        self.closing = self._close_started = True
        if self._writer is not None:
            self._writer.cancel()
        if self._transport is not None:
            self._transport.abort()

    async def stop_writer(self) -> None:
        self.closing = True
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    def _control(self, kind: str, payload: bytes) -> None:
        if not self.closing:
            self._queue.append((kind, payload))  # never refused: control frames are tiny
            self._idle.clear()
            self._ready.set()

    async def _write(self) -> None:
        try:
            while True:
                await self._ready.wait()
                self._ready.clear()
                self._idle.clear()
                while self._queue:
                    item = self._queue.popleft()
                    if isinstance(item, str):
                        await self.ws.send_str(item)
                    elif item[0] == _PING:
                        await self.ws.ping(item[1])
                    else:
                        await self.ws.pong(item[1])
                self._idle.set()
        except (ConnectionError, RuntimeError) as exc:  # the client went away mid-write
            log.debug("local exchange: stream to %s ended while writing: %s", self.peer, exc)
        finally:
            self._idle.set()
