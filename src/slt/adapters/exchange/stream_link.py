"""One combined-stream connection kept alive (issue 14 item 1): reconnected with jittered
backoff after a drop, replaced when one of its streams goes silent, and replaced before
Binance's 24-hour cut by a new connection opened first (both deliver until the new one has
spoken; the caller drops the duplicates). Pings are answered by aiohttp (``autoping``).

A stream is silent when it has sent nothing for ``silence_s`` plus its allowance: a kline
stream is allowed its candle's length, because on a quiet market (or on the local exchange,
whose forming candle changes once per stored candle) its only certain frame is the final."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 2.0
Frame = Callable[[str, dict[str, Any]], None]  # (stream name, payload)


class _Connection:
    """An open WebSocket and the task reading it; ``heard`` is set by its first frame."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, names: Sequence[str],
                 on_frame: Frame) -> None:  # fmt: skip
        loop = asyncio.get_running_loop()
        self.ws = ws
        self.opened = loop.time()
        self.last_frame = dict.fromkeys(names, self.opened)  # stream -> loop time
        self.heard = asyncio.Event()
        self._on_frame = on_frame
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        """Until the connection ends; a network error ends it too. An error of ``on_frame``
        (the consumer's) is not a network failure: it ends the reader with that error."""
        loop = asyncio.get_running_loop()
        try:
            async for msg in self.ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break  # an error frame: the connection is finished
                try:
                    frame = json.loads(msg.data)
                except ValueError:
                    log.warning("market stream: a frame that is not JSON: %.80s", msg.data)
                    continue
                if not isinstance(frame, dict):
                    continue
                stream, data = frame.get("stream"), frame.get("data")
                if not isinstance(stream, str) or not isinstance(data, dict):
                    continue  # a reply to a control message
                if stream in self.last_frame:
                    self.last_frame[stream] = loop.time()
                self.heard.set()
                self._on_frame(stream, data)
        except (aiohttp.ClientError, ConnectionError) as exc:
            log.debug("market stream: read ended: %s", type(exc).__name__)

    def silent_stream(self, silence_s: float, allowance_s: Mapping[str, float]) -> str | None:
        """A stream that has sent nothing for ``silence_s`` plus its allowance (None: all are
        talking)."""
        now = asyncio.get_running_loop().time()
        for name, last in self.last_frame.items():
            if now - last >= silence_s + allowance_s.get(name, 0.0):
                return name
        return None

    async def close(self) -> None:
        with contextlib.suppress(TimeoutError, aiohttp.ClientError, ConnectionError):
            await asyncio.wait_for(self.ws.close(), CLOSE_TIMEOUT_S)
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader


class StreamLink:
    """Keeps ``names`` subscribed on one ``{ws_base}/market/stream?streams=a/b`` connection
    until ``stop`` is set; every frame goes to ``on_frame``."""

    def __init__(
        self, session: aiohttp.ClientSession, ws_base_url: str, names: Sequence[str],
        on_frame: Frame, *, silence_s: float, max_connection_age_s: float,
        backoff_s: tuple[float, float], rng: random.Random,
        allowance_s: Mapping[str, float] | None = None,
    ) -> None:  # fmt: skip
        self.names = list(names)
        self.url = f"{ws_base_url.rstrip('/')}/market/stream?streams={'/'.join(self.names)}"
        self._session, self._on_frame = session, on_frame
        self.silence_s, self.max_age_s = silence_s, max_connection_age_s
        self.backoff_s, self._rng = backoff_s, rng
        self.allowance_s = dict(allowance_s or {})  # extra seconds of silence per stream
        self.connections = 0  # successful connects
        self.drops = 0  # connections that ended by themselves
        self.silent_reconnects = 0
        self.proactive_reconnects = 0
        self.live = False
        self._failures = 0
        self._current: _Connection | None = None

    async def run(self, stop: asyncio.Event) -> None:
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                conn = await self._open()
                if conn is None:
                    self._failures += 1
                    await self._backoff(stop)
                    continue
                ended = await self._keep(conn, stopping)
                if ended and not stop.is_set():
                    self._failures += 1
                    await self._backoff(stop)
        finally:
            stopping.cancel()

    async def _open(self) -> _Connection | None:
        try:
            ws = await asyncio.wait_for(
                self._session.ws_connect(self.url, autoping=True, heartbeat=None),
                CONNECT_TIMEOUT_S,
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("market stream: cannot connect (%s); retrying", type(exc).__name__)
            return None
        self.connections += 1
        return _Connection(ws, self.names, self._on_frame)

    async def _keep(self, conn: _Connection, stopping: asyncio.Task[Any]) -> bool:
        """Watch ``conn`` (replacing it before its age runs out) until it drops or goes silent
        (True: reconnect after a backoff) or ``stop`` is set (False)."""
        self.live, self._current = True, conn
        try:
            return await self._watch(conn, stopping)
        finally:
            self.live = False
            if self._current is not None:
                await self._current.close()
                self._current = None

    async def _watch(self, conn: _Connection, stopping: asyncio.Task[Any]) -> bool:
        loop = asyncio.get_running_loop()
        tick = max(0.05, min(1.0, self.silence_s / 4, self.max_age_s / 4))
        switch_after = self.max_age_s
        while True:
            await asyncio.wait({conn.reader, stopping}, timeout=tick,
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            if stopping.done():
                return False
            if conn.reader.done():
                conn.reader.result()  # the consumer's error, if that is what ended it
                self.drops += 1
                log.warning("market stream: connection dropped (%d streams); reconnecting",
                            len(self.names))  # fmt: skip
                return True
            if conn.heard.is_set():
                self._failures = 0
            silent = conn.silent_stream(self.silence_s, self.allowance_s)
            if silent is not None:
                self.silent_reconnects += 1
                log.warning("market stream: %s sent nothing for %.0f s; reconnecting", silent,
                            self.silence_s + self.allowance_s.get(silent, 0.0))  # fmt: skip
                return True
            if loop.time() - conn.opened >= switch_after:
                fresh = await self._successor(stopping)
                if fresh is None:  # keep the old one; try again a little later
                    switch_after = loop.time() - conn.opened + min(60.0, self.silence_s)
                    continue
                await conn.close()
                conn = self._current = fresh
                switch_after = self.max_age_s
                self.proactive_reconnects += 1
                log.info("market stream: switched to a new connection before the 24-hour cut")

    async def _successor(self, stopping: asyncio.Task[Any]) -> _Connection | None:
        """A new connection of the same streams, once it has delivered a frame."""
        fresh = await self._open()
        if fresh is None:
            return None
        heard = asyncio.create_task(fresh.heard.wait())
        try:
            await asyncio.wait({heard, fresh.reader, stopping}, timeout=self.silence_s,
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        except BaseException:
            await fresh.close()
            raise
        finally:
            heard.cancel()
        if fresh.heard.is_set() and not fresh.reader.done():
            return fresh
        log.warning("market stream: the new connection stayed silent; keeping the old one")
        await fresh.close()
        return None

    async def _backoff(self, stop: asyncio.Event) -> None:
        low, high = self.backoff_s
        delay = min(high, low * 2 ** (self._failures - 1)) * (0.5 + self._rng.random() / 2)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
