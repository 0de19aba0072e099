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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import URL

from slt.errors import SltError
from slt.runtime.instance_lock import InstanceLock, InstanceLockedError, acquire_instance_lock
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


# The brain's clean stop (its last looks with the executor) may wait on REST held back by
# the weight budget: it gets two minutes before SIGKILL; its stops are on the exchange anyway.
RUNTIME_TIMINGS = Timings(stop_grace_s=120.0)


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
    timings: Timings = RUNTIME_TIMINGS,
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
    watch: LockWatch | None = None
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
        watch = LockWatch(lock, url, account_identity(spec), supervisor)
        watch.start()
        try:
            summary = supervisor.run()
        finally:
            watch.stop()
    finally:
        for ring in rings:
            ring.close()
            ring.unlink()
        (watch.lock if watch is not None else lock).release()  # the lock held last
    path = spec.run_dir / "brain-summary.json"
    brain = json.loads(path.read_text()) if path.exists() else {}
    return RuntimeResult(summary, brain, EXIT_REFUSED in ended)


def _stop_order(spec: TradingSpec) -> list[str]:
    return ["feed", "brain"] + ([] if spec.paper else ["executor"])


class LockWatch(threading.Thread):
    """A PostgreSQL restart drops the advisory lock with the connection that held it. The bot
    keeps trading only if it can take the lock again (within ``regain_s``); if another
    instance took it meanwhile, or the server stays away, the runtime stops."""

    def __init__(self, lock: InstanceLock, url: URL, account: str, supervisor: Supervisor,
                 *, every_s: float = 5.0, regain_s: float = 120.0) -> None:  # fmt: skip
        super().__init__(name="slt-lock-watch", daemon=True)
        self.lock, self.url, self.account = lock, url, account
        self.supervisor, self.every_s, self.regain_s = supervisor, every_s, regain_s
        self._halt = threading.Event()
        self.regained = 0

    def stop(self) -> None:
        self._halt.set()
        self.join(10)

    def run(self) -> None:
        while not self._halt.wait(self.every_s):
            try:
                held = self.lock.is_held()
            except SltError:
                held = False
            if held:
                continue
            log.warning("the instance lock was lost (database restarted?); taking it again")
            try:
                self.lock.release()
            except Exception:  # its connection is gone already
                log.debug("releasing the lost lock failed", exc_info=True)
            if not self._regain():
                self.supervisor.request_stop("instance lock lost")
                return

    def _regain(self) -> bool:
        """Take the lock again while the database comes back; False if another instance
        holds it, or the database stays away for ``regain_s``."""
        deadline = time.monotonic() + self.regain_s
        while not self._halt.is_set():
            try:
                self.lock = acquire_instance_lock(self.url, self.account)
                self.regained += 1
                log.warning("the instance lock is held again")
                return True
            except InstanceLockedError as exc:
                log.error("another instance took the lock (%s): stopping", exc)
                return False
            except SltError as exc:
                if time.monotonic() >= deadline:
                    log.error("the instance lock could not be taken again (%s): stopping", exc)
                    return False
            self._halt.wait(1.0)
        return True
