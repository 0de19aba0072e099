"""The supervisor with real spawned children (tests/support/children.py): restarts after a
kill, a silent heartbeat or a crash, the backoff after three crashes in a row, the ordered
shutdown on a signal, and no process left behind, even when the supervisor itself is killed.

Timings are shrunk (``FAST``); every wait has a deadline, and whatever a test started is
killed by pid at its end if it is still there.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from types import TracebackType

import pytest

from slt.runtime.supervisor import (
    ChildEvent,
    ChildSpec,
    Supervisor,
    SupervisorSummary,
    Timings,
)
from tests.support.children import supervise

STEADY = "tests.support.children:steady"
HANG = "tests.support.children:hang_after_beats"
CRASH = "tests.support.children:crash"
FAST = Timings(
    stuck_after_s=5.0,
    startup_grace_s=20.0,
    stuck_grace_s=0.3,
    crashes_before_backoff=3,
    crash_backoff_s=1.5,
    healthy_after_s=60.0,
    stop_grace_s=2.0,
    poll_interval_s=0.05,
)
SPAWN = multiprocessing.get_context("spawn")


def starts(folder: Path, name: str) -> list[tuple[int, float]]:
    """Every run of child ``name``: (pid, monotonic start time)."""
    path = folder / f"{name}.starts"
    if not path.exists():
        return []
    rows = (line.split() for line in path.read_text().splitlines() if line)
    return [(int(pid), float(at)) for pid, at in rows]


def wait_until(predicate: Callable[[], bool], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {within_s} s")
        time.sleep(0.02)


def alive(pid: int) -> bool:
    """Running; a zombie (dead, not yet reaped by whoever adopted it) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return True
    return state != "Z"


def all_pids(folder: Path) -> list[int]:
    return [pid for path in folder.glob("*.starts") for pid, _ in starts(folder, path.stem)]


def kill_leftovers(folder: Path) -> list[int]:
    """SIGKILL every recorded child still alive (the test failed); the ones it found."""
    left = [pid for pid in all_pids(folder) if alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return left


class InBackground:
    """``supervisor.run()`` in a thread (no signal handlers there), stopped on exit."""

    def __init__(self, supervisor: Supervisor, folder: Path) -> None:
        self.supervisor = supervisor
        self.folder = folder
        self.summary: SupervisorSummary | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.summary = self.supervisor.run()

    def __enter__(self) -> InBackground:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.supervisor.request_stop()
        self._thread.join(15)
        left = kill_leftovers(self.folder)
        assert not self._thread.is_alive(), "the supervisor did not stop within 15 s"
        assert left == [], f"children left running after stop: {left}"


def supervisor(
    folder: Path, *children: tuple[str, str, tuple[object, ...]], timings: Timings = FAST
) -> tuple[Supervisor, list[tuple[float, ChildEvent]]]:
    events: list[tuple[float, ChildEvent]] = []
    specs = [ChildSpec(name, target, (str(folder), *args)) for name, target, args in children]
    found = Supervisor(
        specs, timings=timings, on_event=lambda e: events.append((time.monotonic(), e))
    )
    return found, events


def kinds(events: list[tuple[float, ChildEvent]]) -> list[str]:
    return [event.kind for _, event in events]


def test_a_child_killed_with_sigkill_is_started_again(tmp_path: Path) -> None:
    sup, events = supervisor(tmp_path, ("feed", STEADY, ()))
    with InBackground(sup, tmp_path) as running:
        wait_until(lambda: len(starts(tmp_path, "feed")) == 1, 20, "first start")
        first_pid = starts(tmp_path, "feed")[0][0]
        os.kill(first_pid, signal.SIGKILL)
        wait_until(lambda: len(starts(tmp_path, "feed")) == 2, 10, "restart after SIGKILL")
    assert running.summary is not None
    feed = running.summary.children["feed"]
    assert (feed.restarts, feed.crashes, feed.exit_codes) == (1, 1, (-signal.SIGKILL, 0))
    assert kinds(events) == ["started", "crashed", "started", "stopped"]
    assert not alive(first_pid)


def test_a_child_whose_heartbeat_stops_is_killed_and_restarted_within_the_stuck_time(
    tmp_path: Path,
) -> None:
    timings = replace(FAST, stuck_after_s=0.5, stop_grace_s=0.3)
    sup, events = supervisor(tmp_path, ("brain", HANG, ()), timings=timings)
    with InBackground(sup, tmp_path) as running:
        wait_until(lambda: len(starts(tmp_path, "brain")) >= 2, 20, "restart of the stuck child")
    last_beat = float((tmp_path / "brain.last_beat").read_text().split()[0])
    stuck_at = next(at for at, event in events if event.kind == "stuck")
    assert timings.stuck_after_s <= stuck_at - last_beat <= timings.stuck_after_s + 0.5
    assert running.summary is not None
    brain = running.summary.children["brain"]
    # Deaf to SIGTERM, it needed the SIGKILL that follows the grace.
    assert brain.stuck >= 1 and brain.exit_codes[0] == -signal.SIGKILL
    assert not alive(starts(tmp_path, "brain")[0][0])


def test_the_fourth_start_after_three_crashes_in_a_row_waits_for_the_backoff(
    tmp_path: Path,
) -> None:
    sup, events = supervisor(tmp_path, ("executor", CRASH, ()))
    with InBackground(sup, tmp_path):
        wait_until(lambda: len(starts(tmp_path, "executor")) >= 4, 20, "four starts")
    at = [t for _, t in starts(tmp_path, "executor")]
    assert at[1] - at[0] < FAST.crash_backoff_s and at[2] - at[1] < FAST.crash_backoff_s
    assert at[3] - at[2] >= FAST.crash_backoff_s
    backoffs = [e for _, e in events if e.kind == "backoff"]
    assert backoffs[0].crashes_in_row == 3 and backoffs[0].delay_s == FAST.crash_backoff_s
    assert kinds(events)[:6] == ["started", "crashed", "started", "crashed", "started", "crashed"]


def test_a_child_that_ran_healthily_before_each_crash_is_restarted_without_backoff(
    tmp_path: Path,
) -> None:
    timings = replace(FAST, healthy_after_s=0.2, crash_backoff_s=60.0)
    sup, events = supervisor(tmp_path, ("feed", CRASH, (0.35,)), timings=timings)
    with InBackground(sup, tmp_path) as running:
        wait_until(lambda: len(starts(tmp_path, "feed")) >= 4, 20, "four starts, no backoff")
    assert "backoff" not in kinds(events)
    assert running.summary is not None and running.summary.children["feed"].crashes >= 3
    assert all(e.crashes_in_row == 1 for _, e in events if e.kind == "crashed")


def test_a_child_deaf_to_sigterm_is_killed_after_the_grace_at_shutdown(tmp_path: Path) -> None:
    timings = replace(FAST, stop_grace_s=0.3)
    sup, _ = supervisor(tmp_path, ("executor", HANG, (1_000_000,)), timings=timings)
    sup.start()
    try:
        wait_until(lambda: len(starts(tmp_path, "executor")) == 1, 20, "start")
        began = time.monotonic()
        summary = sup.stop()
        took_s = time.monotonic() - began
    finally:
        kill_leftovers(tmp_path)
    executor = summary.children["executor"]
    assert executor.killed_at_stop and executor.exit_codes == (-signal.SIGKILL,)
    assert timings.stop_grace_s <= took_s < timings.stop_grace_s + 2
    assert not alive(starts(tmp_path, "executor")[0][0])


def _pipeline(folder: Path) -> list[tuple[str, str, tuple[object, ...]]]:
    """Started executor first; stopped feed first. The first stopped is the slowest to stop,
    so children stopped all at once would note their stops in the reverse order."""
    return [
        ("executor", STEADY, (str(folder), 0.0)),
        ("brain", STEADY, (str(folder), 0.15)),
        ("feed", STEADY, (str(folder), 0.3)),
    ]


def _start_supervisor_process(
    folder: Path, children: Sequence[tuple[str, str, tuple[object, ...]]], timings: Timings
) -> multiprocessing.process.BaseProcess:
    process = SPAWN.Process(target=supervise, args=(str(folder), children, asdict(timings)))
    process.start()
    return process


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_the_main_process_stops_feed_then_brain_then_executor(
    tmp_path: Path, signum: signal.Signals
) -> None:
    main = _start_supervisor_process(tmp_path, _pipeline(tmp_path), FAST)
    try:
        wait_until(lambda: len(all_pids(tmp_path)) == 3, 20, "three children started")
        os.kill(main.pid or 0, signum)
        main.join(15)
        assert main.exitcode == 0
    finally:
        if main.exitcode is None:
            main.kill()
        left = kill_leftovers(tmp_path)
    assert left == []
    assert (tmp_path / "stop_order").read_text().split() == ["feed", "brain", "executor"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["stopped_by"] == signum.name
    assert summary["stop_order"] == ["feed", "brain", "executor"]
    assert all(
        c == {"exit_codes": [0], "killed_at_stop": False} for c in summary["children"].values()
    )


def test_children_of_a_killed_supervisor_stop_by_themselves(tmp_path: Path) -> None:
    timings = replace(FAST, stop_grace_s=0.5)
    children = [
        ("feed", STEADY, (str(tmp_path), 0.0)),
        ("brain", HANG, (str(tmp_path), 1_000_000)),
    ]
    main = _start_supervisor_process(tmp_path, children, timings)
    try:
        wait_until(lambda: len(all_pids(tmp_path)) == 2, 20, "two children started")
        pids = all_pids(tmp_path)
        os.kill(main.pid or 0, signal.SIGKILL)
        main.join(5)
        # The steady one stops at once; the deaf one exits after the grace (EXIT_ORPHANED: both
        # now belong to init, which reaps them, so their codes are not ours to see).
        wait_until(lambda: not any(alive(pid) for pid in pids), 5, "orphans gone")
    finally:
        left = kill_leftovers(tmp_path)
    assert left == []
    assert (tmp_path / "stop_order").read_text().split() == ["feed"]


def test_a_target_that_does_not_exist_is_refused_before_anything_starts() -> None:
    with pytest.raises(ValueError, match="no module"):
        Supervisor([ChildSpec("feed", "tests.support.no_such_module:run")])
    with pytest.raises(ValueError, match="stop_order"):
        Supervisor([ChildSpec("feed", STEADY)], stop_order=["feed", "brain"])
