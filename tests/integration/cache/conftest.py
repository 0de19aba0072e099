"""Redis for the cache tests: the shared server on 127.0.0.1:6379 and servers a test owns.

Tests on the shared server write under a random key prefix and delete it afterwards; without
a server there they skip with the reason (CI starts it). Servers a test owns run on a free
port, without persistence, and may be killed and restarted on the same port.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

SHARED_REDIS_URL = "redis://127.0.0.1:6379/0"


class FakeClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def namespace() -> Iterator[str]:
    """A key prefix of this test's own on the shared Redis, deleted afterwards."""
    client = redis.Redis.from_url(SHARED_REDIS_URL, socket_connect_timeout=0.5)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        client.close()
        pytest.skip(f"Redis not reachable on 127.0.0.1:6379 ({exc}); CI starts it")
    prefix = f"slt:v1:test-{uuid.uuid4().hex[:12]}"
    try:
        yield prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture()
def shared_redis() -> Iterator[redis.Redis]:
    """A plain client on the shared server, for looking at keys and TTLs."""
    client = redis.Redis.from_url(SHARED_REDIS_URL)
    yield client
    client.close()


class RedisServer:
    """A redis-server of the test's own on a fixed free port; start, kill, start again."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._workdir = workdir
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self._workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    client.ping()
                    return
                except (redis.RedisError, OSError):
                    if time.monotonic() > deadline or self._process.poll() is not None:
                        raise RuntimeError(f"redis-server did not start on {self.port}") from None
                    time.sleep(0.02)  # waiting for the server process, not for the cache
        finally:
            client.close()

    def pause(self) -> None:
        """SIGSTOP: the port still accepts connections but nothing answers."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()  # SIGKILL ends a stopped process too
            self._process.wait(timeout=10)
        self._process = None


@pytest.fixture()
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed; CI installs it")
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()
