"""One bot per account and database, with two real processes: on a SQLite file (``flock``)
and on PostgreSQL (an advisory lock; the shared server on 5432, skipped with the reason when
it is not running). The holder is killed with SIGKILL and the lock is free again.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from slt.runtime.instance_lock import (
    InstanceLockedError,
    acquire_instance_lock,
    wait_for_instance_lock,
)
from tests.integration.db.conftest import db_url as db_url
from tests.support.children import hold_instance_lock
from tests.support.pg_cluster import PrivateCluster

ACCOUNT = "apikey-7f3c9e1d5b"  # an API key: only its hash may be used, never shown
SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture()
def holder(db_url: URL, tmp_path: Path) -> Iterator[multiprocessing.process.BaseProcess]:
    """Another process holding the lock of ACCOUNT on ``db_url``; killed at the end."""
    raw = db_url.render_as_string(hide_password=False)
    process = SPAWN.Process(target=hold_instance_lock, args=(raw, ACCOUNT, str(tmp_path)))
    process.start()
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "locked").exists():
            if process.exitcode is not None or time.monotonic() > deadline:
                pytest.fail(f"the holder did not take the lock (exit code {process.exitcode})")
            time.sleep(0.02)
        yield process
    finally:
        if process.exitcode is None:
            process.kill()
        process.join(10)


def test_a_second_instance_is_refused_with_what_holds_the_lock(
    db_url: URL, holder: multiprocessing.process.BaseProcess
) -> None:
    with pytest.raises(InstanceLockedError) as refused:
        acquire_instance_lock(db_url, ACCOUNT)
    message = str(refused.value)
    if db_url.get_backend_name() == "sqlite":
        assert f"pid {holder.pid} on host {os.uname().nodename}" in message
        assert "lock file" in message
    else:
        assert "PostgreSQL backend pid" in message and f"slt pid={holder.pid}" in message
    assert "another bot already trades this account" in message
    assert ACCOUNT not in message


def test_the_lock_is_free_again_once_the_holder_is_killed_with_sigkill(
    db_url: URL, holder: multiprocessing.process.BaseProcess
) -> None:
    os.kill(holder.pid or 0, signal.SIGKILL)
    holder.join(10)
    assert holder.exitcode == -signal.SIGKILL
    # PostgreSQL frees it when it notices the closed connection: at once, but not synchronously.
    lock = wait_for_instance_lock(db_url, ACCOUNT, within_s=10)
    try:
        assert lock.is_held()
    finally:
        lock.release()
    assert not lock.is_held()


def test_another_account_on_the_same_database_is_not_refused(
    db_url: URL, holder: multiprocessing.process.BaseProcess
) -> None:
    with acquire_instance_lock(db_url, "another-account") as lock:
        assert lock.is_held()


def test_a_released_lock_can_be_taken_again_in_the_same_process(db_url: URL) -> None:
    first = acquire_instance_lock(db_url, ACCOUNT)
    first.release()
    first.release()  # idempotent
    with acquire_instance_lock(db_url, ACCOUNT) as second:
        assert second.is_held()


def test_the_postgresql_lock_reports_itself_lost_when_the_server_restarts() -> None:
    from slt.adapters.db.urls import database_url

    with PrivateCluster() as cluster:
        url = database_url(cluster.url, Path("."))
        lock = acquire_instance_lock(url, ACCOUNT)
        try:
            assert lock.is_held()
            cluster.stop("immediate")
            cluster.start()
            assert not lock.is_held()
        finally:
            lock.release()
        with acquire_instance_lock(url, ACCOUNT) as again:
            assert again.is_held()
