"""The fault plan of the chaos tests: faults at market moments, every few minutes, several
kinds overlapping, and one restart of the exchange."""

from __future__ import annotations

from typing import Any

from slt.adapters.exchange.local.faults import Scheduled, parse_fault

MINUTE = 60_000


def storm(start_ms: int, hours: float, restart_at: float = 35 / 60) -> list[Scheduled]:
    """``restart_at``: when the exchange restarts, as a fraction of the span."""
    every: list[tuple[int, str, dict[str, Any]]] = [
        (5, "drop_connections", {"scope": "market"}),
        (11, "drop_connections", {"scope": "private"}),
        (9, "unknown_outcome", {"status": 503, "count": 1}),
        (13, "rate_limit", {"status": 429, "count": 3}),
        (11, "transient_unknown_order", {"seconds": 1.0}),
        (17, "unknown_outcome", {"status": 502, "count": 1}),
        (20, "expire_listen_keys", {"e_as_string": True}),
    ]
    plan = [
        Scheduled(parse_fault({"kind": kind, **params}, kind), start_ms + minute * MINUTE)
        for step, kind, params in every
        for minute in range(step, int(hours * 60), step)
    ]
    restart = parse_fault({"kind": "restart", "seconds": 2.0}, "restart")
    plan.append(Scheduled(restart, start_ms + int(hours * 60 * restart_at) * MINUTE))
    return sorted(plan, key=lambda s: s.at_history_ms or 0)
