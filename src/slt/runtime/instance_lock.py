"""One bot per account and database: the lock the main process holds for its whole life.

PostgreSQL: the session advisory lock ``pg_try_advisory_lock(key)`` on a connection of its
own (autocommit, so no transaction stays open), kept by a private event-loop thread so the
lock works from synchronous and asynchronous callers alike. SQLite: ``flock`` on a lock file
next to the database file. Either way the operating system or the server frees the lock when
the process dies, even by SIGKILL, and a second instance is refused with what holds the lock.

The key is a 64-bit BLAKE2b hash of the account's identity (the API key, say) and of the
database (host, port and name, or the file's absolute path); neither the account's identity
nor the database password appears in a message, a log line or a lock file.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from slt.adapters.db.migrate import DatabaseUnavailableError
from slt.adapters.db.urls import shown
from slt.errors import ConfigError, SltError

T = TypeVar("T")

_APPLICATION_NAME_MAX = 63  # PostgreSQL truncates longer names (NAMEDATALEN - 1)
_HOLDER = """
SELECT a.pid, a.application_name, host(a.client_addr), a.backend_start
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid::bigint = :high AND l.objid::bigint = :low
"""


class InstanceLockedError(SltError):
    """Another bot already trades this account on this database; ``holder`` says which."""

    def __init__(self, database: str, holder: str) -> None:
        self.database = database
        self.holder = holder
        super().__init__(
            f"another bot already trades this account on database {database}: {holder}; "
            "stop it first (one bot per account and database)"
        )


class InstanceLock(Protocol):
    """A held instance lock; ``release`` is idempotent, and death releases it too."""

    description: str

    def is_held(self) -> bool: ...

    def release(self) -> None: ...

    def __enter__(self) -> InstanceLock: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


def instance_key(account: str, database: str) -> int:
    """The signed 64-bit lock key of ``account`` on ``database`` (stable across runs)."""
    digest = hashlib.blake2b(
        f"{account}\0{database}".encode(), digest_size=8, person=b"slt-instance"
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


def acquire_instance_lock(url: URL, account: str, *, timeout_s: float = 10.0) -> InstanceLock:
    """Take the lock of ``account`` (its identity, e.g. the API key) on the database at ``url``.

    Raises InstanceLockedError naming the holder, DatabaseUnavailableError when PostgreSQL
    cannot be reached, ConfigError for an in-memory SQLite database (nothing to lock on)."""
    if not account:
        raise ConfigError("the instance lock needs the account's identity (e.g. the API key)")
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ConfigError("an in-memory SQLite database cannot hold the instance lock")
        database = Path(url.database).resolve()
        return _FileLock.acquire(database, instance_key(account, str(database)))
    identity = f"{url.host or ''}:{url.port or 5432}/{url.database or ''}"
    return _AdvisoryLock.acquire(url, instance_key(account, identity), timeout_s)


def _lock_path(database: Path, key: int) -> Path:
    return database.with_name(f"{database.name}.instance-{key & 0xFFFF_FFFF_FFFF:012x}.lock")


def _who_am_i() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
    }


class _LockBase:
    description = ""

    def is_held(self) -> bool:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> InstanceLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


class _FileLock(_LockBase):
    """``flock`` on ``<database>.instance-<key>.lock``, which says who holds it (JSON)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd
        self.description = f"lock file {path}"

    @classmethod
    def acquire(cls, database: Path, key: int) -> _FileLock:
        path = _lock_path(database, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_RDWR without O_TRUNC: the holder's details must survive a refused second opener.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _file_holder(os.pread(fd, 4096, 0))
            os.close(fd)
            raise InstanceLockedError(str(database), f"{holder} (lock file {path})") from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(_who_am_i()) + "\n").encode(), 0)
        return cls(path, fd)

    def is_held(self) -> bool:
        """False once released, or when someone replaced the lock file under us."""
        if self._fd is None:
            return False
        try:
            return os.fstat(self._fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # kept, not deleted: a deleted lock file lets two holders in
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _file_holder(raw: bytes) -> str:
    try:
        found = json.loads(raw.decode())
        return f"pid {int(found['pid'])} on host {found['host']} since {found['since']}"
    except (ValueError, KeyError, TypeError):
        return "a process that has not written its details yet"


class _AdvisoryLock(_LockBase):
    """``pg_try_advisory_lock`` on a dedicated autocommit connection, owned by a private
    event loop in a daemon thread (so neither a running loop nor its absence matters)."""

    def __init__(self, url: URL, key: int, timeout_s: float) -> None:
        self._url = url
        self._key = key
        self._timeout_s = timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="slt-instance-lock", daemon=True
        )
        self._engine: AsyncEngine | None = None
        self._connection: AsyncConnection | None = None
        self.description = f"PostgreSQL advisory lock on {shown(url)}"

    @classmethod
    def acquire(cls, url: URL, key: int, timeout_s: float) -> _AdvisoryLock:
        lock = cls(url, key, timeout_s)
        lock._thread.start()
        try:
            lock._call(lock._acquire())
        except BaseException:
            lock._shut_down()
            raise
        return lock

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(self._timeout_s + 5)
        except FutureTimeout:
            future.cancel()
            raise DatabaseUnavailableError(
                f"cannot reach database {shown(self._url)}: no answer in {self._timeout_s:g} s"
            ) from None

    @property
    def _halves(self) -> dict[str, int]:
        unsigned = self._key & 0xFFFF_FFFF_FFFF_FFFF
        return {"high": unsigned >> 32, "low": unsigned & 0xFFFF_FFFF}

    async def _acquire(self) -> None:
        name = f"slt pid={os.getpid()} host={socket.gethostname()}"[:_APPLICATION_NAME_MAX]
        self._engine = create_async_engine(
            self._url,
            poolclass=NullPool,
            connect_args={"server_settings": {"application_name": name}},
        )
        try:
            connection = await asyncio.wait_for(self._engine.connect(), self._timeout_s)
            self._connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            query = text("SELECT pg_try_advisory_lock(:key)")
            got = (await self._connection.execute(query, {"key": self._key})).scalar_one()
            if got:
                return
            holder = await self._holder()
        except (OSError, SQLAlchemyError, TimeoutError) as exc:
            raise _unavailable(self._url, exc) from None
        raise InstanceLockedError(shown(self._url), holder)

    async def _holder(self) -> str:
        assert self._connection is not None
        row = (await self._connection.execute(text(_HOLDER), self._halves)).first()
        if row is None:
            return "a session that has just let it go (try again)"
        pid, application, client, since = row
        where = f" from {client}" if client else ""
        started = f" since {since.isoformat(timespec='seconds')}" if since else ""
        return (
            f"PostgreSQL backend pid {pid} ({application or 'no application_name'}{where}"
            f"{started}; see pg_stat_activity)"
        )

    def is_held(self) -> bool:
        """Asks the server: False when released or when the connection (hence the lock) was
        lost, e.g. to a server restart; the runtime should then stop trading."""
        if self._connection is None:
            return False

        async def check() -> bool:
            assert self._connection is not None
            query = text(_HOLDER + " AND l.pid = pg_backend_pid()")
            return (await self._connection.execute(query, self._halves)).first() is not None

        try:
            return self._call(check())
        except (OSError, SQLAlchemyError, SltError):
            return False

    def release(self) -> None:
        if self._loop.is_closed():
            return
        if self._connection is not None:
            with contextlib.suppress(OSError, SQLAlchemyError, SltError):
                self._call(self._unlock())
        self._shut_down()

    async def _unlock(self) -> None:
        assert self._connection is not None
        await self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})

    async def _close(self) -> None:
        try:
            if self._connection is not None:
                await self._connection.close()
        finally:
            self._connection = None
            if self._engine is not None:
                await self._engine.dispose()

    def _shut_down(self) -> None:
        """Close the connection (which frees the lock anyway), stop and close the loop."""
        if self._loop.is_closed():
            return
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self._call(self._close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(self._timeout_s)
        if not self._thread.is_alive():
            self._loop.close()


def _unavailable(url: URL, exc: BaseException) -> DatabaseUnavailableError:
    reason = (str(getattr(exc, "orig", None) or exc) or type(exc).__name__).splitlines()[0]
    if url.password:
        reason = reason.replace(str(url.password), "***")
    return DatabaseUnavailableError(f"cannot reach database {shown(url)}: {reason}")


def wait_for_instance_lock(
    url: URL, account: str, *, within_s: float, every_s: float = 0.1
) -> InstanceLock:
    """``acquire_instance_lock``, retried while another instance holds it, for up to
    ``within_s`` (a restarted bot whose predecessor's connection the server has yet to drop)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return acquire_instance_lock(url, account)
        except InstanceLockedError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(every_s)
