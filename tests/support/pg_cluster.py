"""A throwaway PostgreSQL cluster of a test's own, so the shared server on 5432 is never stopped.

``PrivateCluster`` runs initdb into a fresh temporary folder and serves it on a free port of
127.0.0.1 with trust auth for ``root``; the test may stop it (fast or immediate, i.e. a crash)
and start it again on the same port. On this machine initdb takes 0.3-0.5 s and start or
stop about 0.1 s each. PostgreSQL refuses to run as root: as root the server programs run as
the ``postgres`` user through ``runuser``. Without the binaries the test skips with the reason.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Literal

import pytest

StopMode = Literal["fast", "immediate"]
_TIMEOUT_S = 30
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def postgres_bindir() -> Path:
    """The folder holding initdb and pg_ctl; skips the test when PostgreSQL is not installed."""
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if found.returncode == 0:
            candidates.append(Path(found.stdout.strip()))
    candidates += [Path(p).parent for p in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))]
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: no private cluster")


def _as_server_user() -> list[str]:
    """The command prefix that runs server programs as a user PostgreSQL accepts."""
    if os.geteuid() != 0:
        return []
    if shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as postgres")
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no postgres user to run PostgreSQL as")
    return ["runuser", "-u", "postgres", "--"]


class PrivateCluster:
    """initdb + pg_ctl in a temporary folder; use as a context manager so it is always removed.

    ``fsync`` stays on: turning it off saved nothing measurable (about 0.01 s per start or
    stop). A stop with ``mode="immediate"`` kills the server processes, not the operating
    system, so either way crash recovery replays the committed WAL from the page cache.
    """

    def __init__(self, *, fsync: bool = True) -> None:
        self.bindir = postgres_bindir()
        self._prefix = _as_server_user()
        self.directory = Path(tempfile.mkdtemp(prefix="slt-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        self.port = free_port()
        self._fsync = fsync
        self._running = False
        self._ever_started = False
        if self._prefix:
            shutil.chown(self.directory, user="postgres", group="postgres")

    @property
    def url(self) -> str:
        return f"postgresql://root@127.0.0.1:{self.port}/postgres"

    def url_of(self, database: str) -> str:
        return f"postgresql://root@127.0.0.1:{self.port}/{database}"

    def __enter__(self) -> PrivateCluster:
        try:
            self.initdb()
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return subprocess.run(
            [*self._prefix, *args],
            capture_output=True,
            text=True,
            cwd=self.directory,  # the postgres user may not be allowed into the caller's folder
            env=env,
            timeout=_TIMEOUT_S + 10,
            check=False,
        )

    def _check(self, done: subprocess.CompletedProcess[str], what: str) -> None:
        if done.returncode != 0:
            raise RuntimeError(
                f"{what} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}"
                f"\n--- server log ---\n{self.server_log()[-2000:]}"
            )

    def initdb(self) -> None:
        done = self._run(
            str(self.bindir / "initdb"), "-D", str(self.data), "--auth=trust", "-U", "root",
            "--no-sync", "-E", "UTF8", "--locale=C",
        )  # fmt: skip
        self._check(done, "initdb")

    def _server_options(self) -> str:
        settings = {
            "port": str(self.port),
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.directory),
            "fsync": "on" if self._fsync else "off",
            "synchronous_commit": "on",
            "full_page_writes": "on",
        }
        return " ".join(f"-c {name}={value}" for name, value in settings.items())

    def start(self) -> None:
        """Start and wait until it accepts connections; the first start moves to another free
        port when a parallel test took this one between choosing and binding it."""
        for attempt in range(3):
            done = self._run(
                str(self.bindir / "pg_ctl"), "start", "-D", str(self.data), "-l", str(self.log),
                "-w", "-t", str(_TIMEOUT_S), "-o", self._server_options(),
            )  # fmt: skip
            if done.returncode == 0:
                self._running = self._ever_started = True
                return
            taken = "could not bind" in self.server_log() or "already in use" in self.server_log()
            if self._ever_started or not taken or attempt == 2:
                self._check(done, "pg_ctl start")
            self.port = free_port()

    def stop(self, mode: StopMode = "fast") -> None:
        """``immediate`` ends the server without a checkpoint: the next start recovers from WAL."""
        done = self._run(
            str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data), "-m", mode,
            "-w", "-t", str(_TIMEOUT_S),
        )  # fmt: skip
        self._check(done, f"pg_ctl stop -m {mode}")
        self._running = False

    def restart(self) -> None:
        self.stop("fast")
        self.start()

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL."""
        if not _NAME.match(name):
            raise ValueError(f"database name {name!r}: use lower-case letters, digits and _")
        done = subprocess.run(
            [
                str(self.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                "-d", self.url, "-c", f'CREATE DATABASE "{name}"',
            ],
            capture_output=True, text=True, timeout=_TIMEOUT_S, check=False,
        )  # fmt: skip
        self._check(done, f"CREATE DATABASE {name}")
        return self.url_of(name)

    def server_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def close(self) -> None:
        """Stop the server if it runs (immediate: nothing is kept) and delete the folder."""
        try:
            if self._running:
                self.stop("immediate")
        except (RuntimeError, subprocess.TimeoutExpired):
            self._kill_postmaster()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _kill_postmaster(self) -> None:
        """Last resort when pg_ctl cannot stop it: its children exit when the postmaster dies."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass
        self._running = False
