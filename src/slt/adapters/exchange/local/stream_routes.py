"""The URLs of the local exchange's WebSocket streams (docs/exchange.md "WebSocket streams"):
``/market`` and ``/public`` (``/stream?streams=a/b``, ``/ws/<a>/<b>``), ``/private``
(``?listenKey=<key>[&events=A/B]``, ``/ws/<key>``) and the retired ``/stream``, ``/ws``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from slt.adapters.exchange.local.stream_connection import LEGACY, MARKET, PRIVATE, PUBLIC
from slt.adapters.exchange.local.streams import StreamHub


def _names(text: str) -> list[str]:
    return [n for n in text.split("/") if n]


def _private_keys(request: web.Request) -> tuple[list[str], dict[str, frozenset[str] | None]]:
    """listenKeys from the path and the query, each with the ``events=`` that follows it."""
    keys = _names(request.match_info.get("key", ""))
    events: dict[str, frozenset[str] | None] = {}
    for name, value in request.query.items():
        if name == "listenKey" and value:
            keys.append(value)
        elif name == "events" and keys:
            events[keys[-1]] = frozenset(_names(value))
    return keys, events


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def install(app: web.Application, hub: StreamHub) -> None:
    """Add the stream routes to ``app``; the hub's timer runs while the app does, and shutting
    the app down closes every connection."""

    def market(route: str, combined: bool) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            text = (
                request.query.get("streams", "")
                if combined
                else request.match_info.get("streams", "")
            )
            return await hub.serve(request, route, combined, _names(text), {})

        return handler

    def private(combined: bool) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            keys, events = _private_keys(request)
            return await hub.serve(request, PRIVATE, combined, keys, events)

        return handler

    for prefix, route in (("/market", MARKET), ("/public", PUBLIC), ("", LEGACY)):
        app.router.add_get(f"{prefix}/stream", market(route, True))
        app.router.add_get(f"{prefix}/ws", market(route, False))
        app.router.add_get(f"{prefix}/ws/{{streams:.+}}", market(route, False))
    app.router.add_get("/private/stream", private(True))
    app.router.add_get("/private/ws", private(False))
    app.router.add_get("/private/ws/{key:.+}", private(False))

    async def running(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(hub.run())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await hub.close_all()

    async def shutting_down(app: web.Application) -> None:
        await hub.close_all()

    app.cleanup_ctx.append(running)
    app.on_shutdown.append(shutting_down)
