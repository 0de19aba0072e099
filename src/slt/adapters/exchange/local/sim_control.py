"""The control API under ``/_sim/`` (only with ``--control``) and the scheduler of
``--faults`` scenarios: both turn a ``Fault`` into a change of the exchange's behaviour.

- ``GET /_sim/faults``: what is active and what was applied.
- ``POST /_sim/faults`` with a JSON fault (or a list): apply now; answers what each did.
- ``DELETE /_sim/faults``: everything back to normal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from slt.adapters.exchange.local.faults import (
    Fault,
    FaultState,
    Scheduled,
    _Countdown,
    parse_fault,
    price_gap,
)
from slt.errors import ConfigError

if TYPE_CHECKING:
    from slt.adapters.exchange.local.server import LocalExchange

log = logging.getLogger(__name__)


async def apply(ex: LocalExchange, fault: Fault) -> dict[str, Any]:
    """Apply ``fault`` now; what it did, for the answer and the log."""
    p, f, wall = fault.params, ex.faults, ex.wall()
    done: dict[str, Any] = {"kind": fault.kind, **p}
    if fault.kind == "drop_connections":
        done["dropped"] = await ex.hub.drop_connections(p["scope"])
    elif fault.kind == "silent_streams":
        f.silent_until_wall_ms = wall + int(p["seconds"] * 1000)
    elif fault.kind == "user_events":
        f.user_mode, f.user_left, f.user_delay_ms = p["mode"], p["count"], p["delay_ms"]
    elif fault.kind == "late_final":
        f.late_final_ms, f.late_final_left = p["ms"], p["count"]
    elif fault.kind == "rate_limit":
        f.rate_limit = _Countdown(p["status"], p["count"])
    elif fault.kind == "unknown_outcome":
        f.unknown_outcome = _Countdown(p["status"], p["count"], p["delay_ms"])
    elif fault.kind == "transient_unknown_order":
        f.hide_new_orders_ms = int(p["seconds"] * 1000)
    elif fault.kind == "expire_listen_keys":
        f.expired_e_as_string = p["e_as_string"]
        done["expired"] = ex.hub.expire_listen_keys()
    elif fault.kind == "clock_skew":
        f.skew_ms = p["ms"]
        ex.auth.skew_ms = p["ms"]
    elif fault.kind == "restart":
        if ex.restart is None:
            raise ConfigError("restart: this server was not started with a restartable site")
        restart = ex.restart
        # After the answer has gone out: the site closes, then opens again.
        asyncio.get_running_loop().call_later(0.05, lambda: _spawn(restart(p["seconds"])))
    elif fault.kind == "price_gap":
        tape = ex.tapes.get(str(p["symbol"]).upper())
        if tape is None:
            raise ConfigError(f"price_gap: {p['symbol']} is not replayed here")
        done["candle_open_time"] = price_gap(tape, ex.clock.history_now(), p["pct"])
    f.applied.append(done | {"wall_ms": wall})
    log.warning("local exchange fault: %s", done)
    return done


_BACKGROUND: set[asyncio.Task[None]] = set()


def _spawn(coro: Any) -> None:
    task = asyncio.ensure_future(coro)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


def _answer(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


def routes(ex: LocalExchange) -> list[web.RouteDef]:
    async def guarded(request: web.Request) -> web.StreamResponse:
        if not ex.control:
            return _answer({"msg": "the control API is off: start the server with --control"}, 403)
        try:
            if request.method == "GET":
                return _answer(_summary(ex))
            if request.method == "DELETE":
                applied = ex.faults.applied
                ex.faults = FaultState(applied=applied)
                ex.auth.skew_ms = 0
                return _answer(_summary(ex))
            try:
                raw = json.loads(await request.text())
            except ValueError:
                return _answer({"msg": "the body must be a JSON fault or a list of them"}, 400)
            items = raw if isinstance(raw, list) else [raw]
            if not items or not all(isinstance(i, dict) for i in items):
                return _answer({"msg": "the body must be a JSON fault or a list of them"}, 400)
            faults = [parse_fault(item, f"fault {i}") for i, item in enumerate(items, 1)]
            return _answer({"applied": [await apply(ex, fault) for fault in faults]})
        except ConfigError as exc:
            return _answer({"msg": str(exc)}, 400)

    return [web.route(method, "/_sim/faults", guarded) for method in ("GET", "POST", "DELETE")]


def _summary(ex: LocalExchange) -> dict[str, Any]:
    f = ex.faults
    return {
        "rate_limit": {"status": f.rate_limit.status, "left": f.rate_limit.left},
        "unknown_outcome": {"status": f.unknown_outcome.status, "left": f.unknown_outcome.left},
        "hide_new_orders_ms": f.hide_new_orders_ms, "skew_ms": f.skew_ms,
        "silent_until_wall_ms": f.silent_until_wall_ms, "late_final_ms": f.late_final_ms,
        "user_events": {"mode": f.user_mode, "left": f.user_left},
        "applied": f.applied,
    }  # fmt: skip


def scheduler(
    ex: LocalExchange, plan: list[Scheduled]
) -> Callable[[web.Application], AsyncIterator[None]]:
    """Applies ``--faults`` entries when their moment comes (market time or wall time since
    the start), each once, in time order."""

    async def run() -> None:
        started = ex.wall()
        pending = list(plan)
        while pending:
            now_h, waited = ex.clock.history_now(), ex.wall() - started
            due = [
                s
                for s in pending
                if (s.at_history_ms is not None and s.at_history_ms <= now_h)
                or (s.after_wall_ms is not None and s.after_wall_ms <= waited)
            ]
            for s in due:
                pending.remove(s)
                try:
                    await apply(ex, s.fault)
                except ConfigError as exc:
                    log.error("local exchange: scheduled fault refused: %s", exc)
            await asyncio.sleep(0.05)

    async def context(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(run())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context
