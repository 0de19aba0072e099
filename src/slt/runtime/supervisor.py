"""The main process of the live runtime: starts named child processes, watches their
heartbeats, restarts the dead and the stuck (with a backoff after repeated crashes) and stops
them in a fixed order.

Children are started with the ``spawn`` method, explicitly (Python 3.14 changes the default):
a child gets a fresh interpreter, never a copy of the parent's threads, locks or connections.
A child is ``function(heartbeat, *args, **kwargs)``, named by ``"package.module:function"``.

Rules (docs/trading.md, "Processes and the supervisor"):

- Heartbeat: the child's main loop calls ``heartbeat.beat()``, which writes the monotonic time
  into shared memory; no background thread beats for it, so a beat proves the loop turned.
- Stuck: no beat for ``stuck_after_s`` (before the first beat: ``startup_grace_s`` since the
  start). A stuck child gets SIGTERM, SIGKILL after ``stuck_grace_s``, and counts as a crash.
- Crash: any exit the supervisor did not ask for (whatever the code), or stuck. The child is
  started again at once, except after ``crashes_before_backoff`` crashes in a row: then each
  further start waits ``crash_backoff_s``. A run that lasted ``healthy_after_s`` and beat at
  least once resets the count.
- Shutdown (SIGINT, SIGTERM, ``request_stop`` or ``stop``): one child at a time in
  ``stop_order``, SIGTERM then SIGKILL after ``stop_grace_s``. Children ignore SIGINT (a
  terminal's Ctrl-C reaches the whole process group; only the supervisor decides the order),
  and a child whose supervisor died stops itself as if it got SIGTERM, and exits after
  ``stop_grace_s`` at the latest, so no orphan keeps trading.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import importlib.util
import multiprocessing
import os
import pickle
import select
import signal
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_for
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any, Literal, Protocol

import structlog

log = structlog.get_logger("slt.runtime")

EXIT_ORPHANED = 70  # a child's exit code when its supervisor died and it did not stop in time
_REAP_S = 5.0  # wait for the kernel to reap a SIGKILLed child


class _SharedFloat(Protocol):
    value: float


# --- the child's side -------------------------------------------------------------------------


class Heartbeat:
    """A child's link to its supervisor: ``beat()`` from the main loop, ``wait()`` as its
    sleep, and ``stop_requested`` to end cleanly (set by SIGTERM or a dead supervisor).

    An asyncio child that installs its own SIGTERM handler (``loop.add_signal_handler``)
    replaces the supervisor's: its handler should call ``request_stop``."""

    def __init__(self, name: str, beat_at: _SharedFloat | None = None) -> None:
        self.name = name
        self._beat_at: _SharedFloat = beat_at if beat_at is not None else ctypes.c_double(0.0)
        self._stop = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    def beat(self) -> None:
        """Tell the supervisor the main loop made progress (about a microsecond)."""
        self._beat_at.value = time.monotonic()

    @property
    def stop_requested(self) -> bool:
        return self._stop

    def request_stop(self) -> None:
        """Ask the main loop to finish; safe from a signal handler or another thread."""
        self._stop = True
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"\0")

    def wait(self, timeout_s: float) -> bool:
        """Sleep up to ``timeout_s``, waking early on a stop request; True when asked to stop."""
        if not self._stop and timeout_s > 0:
            select.select([self._wake_r], [], [], timeout_s)
        return self._stop

    def _on_sigterm(self, _signum: int, _frame: FrameType | None) -> None:
        self.request_stop()


def _watch_parent(heartbeat: Heartbeat, grace_s: float) -> None:
    """When the supervisor dies, stop as on SIGTERM, and exit after ``grace_s`` at the latest."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait_for([parent.sentinel])
        log.error("supervisor_gone", child=heartbeat.name, exit_after_s=grace_s)
        heartbeat.request_stop()
        time.sleep(grace_s)
        os._exit(EXIT_ORPHANED)

    threading.Thread(target=watch, name="slt-parent-watch", daemon=True).start()


def _resolve(target: str) -> Callable[..., object]:
    module_name, _, function_name = target.partition(":")
    function: Callable[..., object] = getattr(importlib.import_module(module_name), function_name)
    return function


def _child_main(
    name: str,
    target: str,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    beat_at: _SharedFloat,
    orphan_grace_s: float,
) -> None:
    """The first code a child runs: signals, the parent watch, then its function."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    heartbeat = Heartbeat(name, beat_at)
    signal.signal(signal.SIGTERM, heartbeat._on_sigterm)
    _watch_parent(heartbeat, orphan_grace_s)
    _resolve(target)(heartbeat, *args, **dict(kwargs))


# --- the supervisor's side --------------------------------------------------------------------


@dataclass(frozen=True)
class ChildSpec:
    """One child: ``target`` is ``"package.module:function"``, called in the child as
    ``function(heartbeat, *args, **kwargs)``; ``args`` and ``kwargs`` must pickle."""

    name: str
    target: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Timings:
    """Every delay of the supervisor, in seconds; tests shrink them."""

    stuck_after_s: float = 60.0
    startup_grace_s: float = 120.0
    stuck_grace_s: float = 10.0
    crashes_before_backoff: int = 3
    crash_backoff_s: float = 60.0
    healthy_after_s: float = 300.0
    stop_grace_s: float = 30.0
    poll_interval_s: float = 0.5


EventKind = Literal["started", "crashed", "stuck", "backoff", "healthy", "stopped"]


@dataclass(frozen=True)
class ChildEvent:
    """What happened to a child, for the runtime's log and notifier.

    started: a run began (``starts`` counts them, the first included). crashed: it exited
    unasked (``exit_code``: negative for a signal). stuck: its heartbeat went silent, it is
    being killed. backoff: the next start waits ``delay_s``. healthy: its crash count was
    reset. stopped: it ended during shutdown (``killed``: it needed SIGKILL)."""

    kind: EventKind
    child: str
    pid: int | None
    starts: int
    crashes_in_row: int
    exit_code: int | None = None
    delay_s: float = 0.0
    killed: bool = False


@dataclass(frozen=True)
class ChildSummary:
    name: str
    starts: int
    crashes: int
    stuck: int
    exit_codes: tuple[int, ...]  # every run's, in order; the last is the shutdown's
    killed_at_stop: bool

    @property
    def restarts(self) -> int:
        return max(self.starts - 1, 0)


@dataclass(frozen=True)
class SupervisorSummary:
    stopped_by: str  # "SIGTERM", "SIGINT", "request_stop", "stop" or "error"
    stop_order: tuple[str, ...]
    children: Mapping[str, ChildSummary]


@dataclass
class _Child:
    spec: ChildSpec
    beat_at: _SharedFloat
    process: BaseProcess | None = None
    started_at: float = 0.0
    starts: int = 0
    crashes: int = 0
    crashes_in_row: int = 0
    stuck: int = 0
    exit_codes: list[int] = field(default_factory=list)
    next_start_at: float | None = None
    killed_at_stop: bool = False


class Supervisor:
    """Starts ``specs`` in their order, watches them, stops them in ``stop_order`` (default:
    the reverse of the start order). ``run()`` does it all until SIGINT/SIGTERM; ``start``,
    ``poll`` and ``stop`` are its steps, for a caller with its own loop."""

    def __init__(
        self,
        specs: Sequence[ChildSpec],
        *,
        stop_order: Sequence[str] | None = None,
        timings: Timings = Timings(),
        on_event: Callable[[ChildEvent], None] | None = None,
    ) -> None:
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names) or not names:
            raise ValueError(f"child names must be unique and at least one: {names}")
        order = list(stop_order) if stop_order is not None else names[::-1]
        if sorted(order) != sorted(names):
            raise ValueError(f"stop_order {order} must name every child once: {names}")
        for spec in specs:
            _check_spec(spec)
        self._context = multiprocessing.get_context("spawn")
        self._children = {
            spec.name: _Child(spec, self._context.RawValue(ctypes.c_double, 0.0)) for spec in specs
        }
        self._stop_order = tuple(order)
        self.timings = timings
        self._on_event = on_event
        self._stop_reason: str | None = None
        self._stopped: SupervisorSummary | None = None
        # Woken by signals and request_stop; closed only with the object, so a late signal
        # never writes into a descriptor number that something else reuses.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        weakref.finalize(self, _close_fds, self._wake_r, self._wake_w)

    # -- steps --

    def start(self) -> None:
        """Start every child, in the order of the specs."""
        for child in self._children.values():
            self._start(child)

    def poll(self) -> None:
        """One watchdog pass: restart the dead and the stuck, start those whose backoff ended."""
        for child in self._children.values():
            if self._stopped is not None or self._stop_reason is not None:
                return
            now = time.monotonic()
            process = child.process
            if process is None:
                if child.next_start_at is not None and now >= child.next_start_at:
                    self._start(child)
            elif process.exitcode is not None:
                self._crashed(child, process.exitcode)
            elif self._is_stuck(child, now):
                child.stuck += 1
                self._emit("stuck", child)
                log.warning("child_stuck", child=child.spec.name, pid=process.pid)
                code, _ = _end(process, self.timings.stuck_grace_s)
                self._crashed(child, code)
            else:
                self._reset_if_healthy(child, now)

    def request_stop(self, reason: str = "request_stop") -> None:
        """Make ``run()`` stop the children and return; safe from a signal handler or thread."""
        if self._stop_reason is None:
            self._stop_reason = reason
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"\0")

    def stop(self) -> SupervisorSummary:
        """Stop every child in ``stop_order``: SIGTERM, then SIGKILL after ``stop_grace_s``.

        Idempotent: a second call returns the first summary."""
        if self._stopped is not None:
            return self._stopped
        if self._stop_reason is None:
            self._stop_reason = "stop"
        for name in self._stop_order:
            child = self._children[name]
            child.next_start_at = None
            process = child.process
            if process is None:
                continue
            code, killed = _end(process, self.timings.stop_grace_s)
            child.exit_codes.append(code)
            child.killed_at_stop = killed
            child.process = None
            self._emit("stopped", child, pid=process.pid, exit_code=code, killed=killed)
            log.info("child_stopped", child=name, exit_code=code, killed=killed)
            _close(process)
        self._stopped = SupervisorSummary(
            stopped_by=self._stop_reason,
            stop_order=self._stop_order,
            children={name: _summary(child) for name, child in self._children.items()},
        )
        return self._stopped

    def run(self) -> SupervisorSummary:
        """Start, watch until SIGINT/SIGTERM (or ``request_stop``), stop; the summary.

        Signal handlers are installed only when called from the main thread."""
        previous = self._install_signal_handlers()
        try:
            try:
                self.start()
                while self._stop_reason is None:
                    self.poll()
                    self._sleep()
            except BaseException:
                self._stop_reason = self._stop_reason or "error"
                raise
            finally:
                summary = self.stop()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return summary

    def pids(self) -> dict[str, int | None]:
        """The running children's pids (None: not running now)."""
        return {
            name: child.process.pid if child.process is not None else None
            for name, child in self._children.items()
        }

    # -- internals --

    def _start(self, child: _Child) -> None:
        child.next_start_at = None
        child.beat_at.value = 0.0
        spec = child.spec
        process = self._context.Process(
            target=_child_main,
            args=(
                spec.name,
                spec.target,
                spec.args,
                dict(spec.kwargs),
                child.beat_at,
                self.timings.stop_grace_s,
            ),
            name=f"slt-{spec.name}",
        )
        process.start()
        child.process = process
        child.started_at = time.monotonic()
        child.starts += 1
        self._emit("started", child)
        log.info("child_started", child=spec.name, pid=process.pid, starts=child.starts)

    def _is_stuck(self, child: _Child, now: float) -> bool:
        last_beat = child.beat_at.value
        if last_beat < child.started_at:  # no beat from this run yet
            return now - child.started_at > self.timings.startup_grace_s
        return now - last_beat > self.timings.stuck_after_s

    def _reset_if_healthy(self, child: _Child, now: float) -> None:
        ran_s = now - child.started_at
        beat = child.beat_at.value >= child.started_at
        if child.crashes_in_row and beat and ran_s >= self.timings.healthy_after_s:
            child.crashes_in_row = 0
            self._emit("healthy", child)

    def _crashed(self, child: _Child, exit_code: int) -> None:
        process = child.process
        assert process is not None
        pid = process.pid
        process.join(_REAP_S)
        _close(process)
        child.process = None
        self._reset_if_healthy(child, time.monotonic())
        child.crashes += 1
        child.crashes_in_row += 1
        child.exit_codes.append(exit_code)
        self._emit("crashed", child, pid=pid, exit_code=exit_code)
        log.error(
            "child_crashed", child=child.spec.name, exit_code=exit_code, in_row=child.crashes_in_row
        )
        if self._stop_reason is not None:
            return  # the hook asked to stop (the child finished the runtime's work)
        if child.crashes_in_row >= self.timings.crashes_before_backoff:
            delay_s = self.timings.crash_backoff_s
            child.next_start_at = time.monotonic() + delay_s
            self._emit("backoff", child, pid=None, delay_s=delay_s)
        else:
            self._start(child)

    def _emit(
        self,
        kind: EventKind,
        child: _Child,
        *,
        pid: int | None = None,
        exit_code: int | None = None,
        delay_s: float = 0.0,
        killed: bool = False,
    ) -> None:
        if self._on_event is None:
            return
        if pid is None and kind in ("started", "stuck", "healthy") and child.process is not None:
            pid = child.process.pid
        event = ChildEvent(
            kind, child.spec.name, pid, child.starts, child.crashes_in_row, exit_code, delay_s,
            killed,
        )  # fmt: skip
        try:
            self._on_event(event)
        except Exception:
            # A failing notifier must not end supervision (children would go unwatched).
            log.exception("supervisor_hook_failed", event_kind=kind, child=child.spec.name)

    def _sleep(self) -> None:
        """Until the poll interval ends, a child exits, a backoff ends or a stop is asked."""
        timeout_s = self.timings.poll_interval_s
        now = time.monotonic()
        waiting: list[Any] = [self._wake_r]
        for child in self._children.values():
            if child.process is not None:
                waiting.append(child.process.sentinel)
            elif child.next_start_at is not None:
                timeout_s = min(timeout_s, max(child.next_start_at - now, 0.0))
        if self._wake_r in wait_for(waiting, timeout_s):
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake_r, 4096)

    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}

        def handler(signum: int, _frame: FrameType | None) -> None:
            self.request_stop(signal.Signals(signum).name)

        return {
            signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)
        }


def _check_spec(spec: ChildSpec) -> None:
    """Fail at construction, not in a restart loop: the target's module exists and the
    arguments pickle (spawn sends them to the child)."""
    module_name, colon, function_name = spec.target.partition(":")
    if not colon or not module_name or not function_name.isidentifier():
        raise ValueError(f"child {spec.name}: target {spec.target!r} is not 'module:function'")
    if importlib.util.find_spec(module_name) is None:
        raise ValueError(f"child {spec.name}: no module {module_name!r}")
    try:
        pickle.dumps((spec.args, dict(spec.kwargs)))
    except Exception as exc:
        raise ValueError(f"child {spec.name}: arguments do not pickle ({exc})") from None


def _end(process: BaseProcess, grace_s: float) -> tuple[int, bool]:
    """SIGTERM, SIGKILL after ``grace_s``; the exit code and whether SIGKILL was needed."""
    killed = False
    if process.exitcode is None:
        process.terminate()
        process.join(grace_s)
    if process.exitcode is None:
        killed = True
        process.kill()
        process.join(_REAP_S)
    code = process.exitcode
    return (code if code is not None else -signal.SIGKILL), killed


def _close_fds(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _close(process: BaseProcess) -> None:
    """Free the process object's descriptors (not possible while the kernel has not reaped it)."""
    if process.exitcode is not None:
        process.close()


def _summary(child: _Child) -> ChildSummary:
    return ChildSummary(
        name=child.spec.name,
        starts=child.starts,
        crashes=child.crashes,
        stuck=child.stuck,
        exit_codes=tuple(child.exit_codes),
        killed_at_stop=child.killed_at_stop,
    )
