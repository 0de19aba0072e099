"""``slt paper`` and ``slt live`` as three processes under the supervisor: the feed (market
streams), the brain (decisions) and, live, the executor (orders and the account), joined by
shared-memory rings (docs/trading.md, "Processes").

The main process takes the instance lock (one bot per account and database), creates the
rings, starts the children (executor, brain, feed: the executor reconciles first), watches
them, and stops them feed first, then the brain (its last looks need the executor), then the
executor. A brain that exits with ``EXIT_FINISHED`` (a rehearsal's last candle) or
``EXIT_REFUSED`` ends the runtime instead of being restarted.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slt.runtime.instance_lock import acquire_instance_lock
from slt.runtime.ring import Ring
from slt.runtime.ring_records import DEFAULT_RINGS
from slt.runtime.supervisor import (
    ChildEvent,
    ChildSpec,
    Supervisor,
    SupervisorSummary,
    Timings,
)
from slt.runtime.trading_spec import EXIT_FINISHED, EXIT_REFUSED, TradingSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RuntimeResult:
    supervisor: SupervisorSummary
    brain: dict[str, Any]  # the brain's summary (brain-summary.json); {} if it wrote none
    refused: bool


def account_identity(spec: TradingSpec) -> str:
    """What the instance lock is keyed by: the API key's digest (never the key), or paper."""
    if spec.paper or not spec.keys.key:
        return f"paper:{spec.rest_url}"
    return "key:" + hashlib.sha256(spec.keys.key.encode()).hexdigest()[:32]


def child_specs(spec: TradingSpec) -> list[ChildSpec]:
    names = [] if spec.paper else ["executor"]
    names += ["brain", "feed"]
    return [ChildSpec(n, f"slt.runtime.{n}_process:{n}_main", (spec,)) for n in names]


def run_trading(
    spec: TradingSpec,
    *,
    timings: Timings = Timings(),
    on_event: Callable[[ChildEvent], None] | None = None,
    supervisor_ready: Callable[[Supervisor], None] | None = None,
) -> RuntimeResult:
    """Until SIGINT/SIGTERM (or a rehearsal's end); the summary of what ran."""
    from slt.runtime.config import load_settings
    from slt.runtime.storage import configured_url

    url = configured_url(load_settings())
    lock = acquire_instance_lock(url, account_identity(spec))
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    rings = [Ring.create(spec.ring_name(r.name), r.capacity, r.slot_size, replace=True)
             for r in DEFAULT_RINGS]  # fmt: skip
    ended: list[int] = []
    try:
        supervisor: Supervisor

        def hook(event: ChildEvent) -> None:
            if event.kind == "crashed" and event.child == "brain" and event.exit_code in (
                EXIT_FINISHED, EXIT_REFUSED):  # fmt: skip
                ended.append(event.exit_code)
                supervisor.request_stop("finished" if event.exit_code == EXIT_FINISHED
                                        else "refused")  # fmt: skip
            if on_event is not None:
                on_event(event)

        supervisor = Supervisor(child_specs(spec), stop_order=_stop_order(spec),
                                timings=timings, on_event=hook)  # fmt: skip
        if supervisor_ready is not None:
            supervisor_ready(supervisor)
        summary = supervisor.run()
    finally:
        for ring in rings:
            ring.close()
            ring.unlink()
        lock.release()
    path = spec.run_dir / "brain-summary.json"
    brain = json.loads(path.read_text()) if path.exists() else {}
    return RuntimeResult(summary, brain, EXIT_REFUSED in ended)


def _stop_order(spec: TradingSpec) -> list[str]:
    return ["feed", "brain"] + ([] if spec.paper else ["executor"])
