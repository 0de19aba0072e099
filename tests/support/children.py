"""Child processes for the supervisor and instance-lock tests, importable by spawned children.

Each child appends ``<pid> <monotonic time>`` to ``FOLDER/<name>.starts`` when it starts, so
a test sees every run, its pid and when it began (``time.monotonic`` is one clock for every
process of the machine). Heavy imports stay inside the functions that need them: every child
start re-imports this module.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from slt.runtime.supervisor import Heartbeat

_BEAT_EVERY_S = 0.02


def note(folder: str | Path, file: str, line: str) -> None:
    """Append one line with one write (O_APPEND: lines of several processes do not mix)."""
    fd = os.open(Path(folder) / file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


def _started(heartbeat: Heartbeat, folder: str) -> None:
    note(folder, f"{heartbeat.name}.starts", f"{os.getpid()} {time.monotonic()!r}")


def steady(heartbeat: Heartbeat, folder: str, stop_delay_s: float = 0.0) -> None:
    """Beat until asked to stop; then take ``stop_delay_s`` (a flush) and note the stop."""
    _started(heartbeat, folder)
    while not heartbeat.wait(_BEAT_EVERY_S):
        heartbeat.beat()
    time.sleep(stop_delay_s)
    note(folder, "stop_order", heartbeat.name)


def hang_after_beats(heartbeat: Heartbeat, folder: str, beats: int = 3) -> None:
    """Beat a few times, note the last beat, then loop forever without beating and deaf to
    stop requests: a deadlocked main loop."""
    _started(heartbeat, folder)
    for _ in range(beats):
        heartbeat.beat()
        time.sleep(_BEAT_EVERY_S)
    heartbeat.beat()
    note(folder, f"{heartbeat.name}.last_beat", repr(time.monotonic()))
    while True:
        time.sleep(0.05)


def crash(heartbeat: Heartbeat, folder: str, after_s: float = 0.0, exit_code: int = 3) -> None:
    """Beat for ``after_s``, then exit with ``exit_code``."""
    _started(heartbeat, folder)
    deadline = time.monotonic() + after_s
    while time.monotonic() < deadline:
        heartbeat.beat()
        time.sleep(_BEAT_EVERY_S)
    raise SystemExit(exit_code)


def supervise(
    folder: str,
    children: Sequence[tuple[str, str, tuple[Any, ...]]],
    timings: dict[str, Any],
) -> None:
    """A supervisor process (the runtime's main) over ``(name, target, args)`` children; it
    runs until a signal and writes its summary to ``FOLDER/summary.json``."""
    from slt.runtime.supervisor import ChildSpec, Supervisor, Timings

    specs = [ChildSpec(name, target, args) for name, target, args in children]
    summary = Supervisor(specs, timings=Timings(**timings)).run()
    found = {
        "stopped_by": summary.stopped_by,
        "stop_order": list(summary.stop_order),
        "children": {
            name: {"exit_codes": list(c.exit_codes), "killed_at_stop": c.killed_at_stop}
            for name, c in summary.children.items()
        },
    }
    (Path(folder) / "summary.json").write_text(json.dumps(found))


def hold_instance_lock(url: str, account: str, folder: str) -> None:
    """Take the instance lock, say so in ``FOLDER/locked``, and hold it until killed."""
    from sqlalchemy.engine import make_url

    from slt.runtime.instance_lock import acquire_instance_lock

    lock = acquire_instance_lock(make_url(url), account)
    (Path(folder) / "locked").write_text(str(os.getpid()))
    while lock.is_held():
        time.sleep(0.1)
