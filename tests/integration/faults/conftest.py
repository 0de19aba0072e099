"""Fixtures for fault tests: a PostgreSQL cluster a test may crash, and both database backends.

``private_pg`` is per test (initdb 0.3-0.5 s, start and stop 0.1 s each on this machine), so a
test can stop, crash and restart its server without disturbing any other; the shared server on
5432 is never touched. ``db_url`` is the data-layer tests' pair of backends (a SQLite file, a
fresh database on the shared PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.db.conftest import db_url as db_url
from tests.support.pg_cluster import PrivateCluster


@pytest.fixture()
def private_pg() -> Iterator[PrivateCluster]:
    with PrivateCluster() as cluster:
        yield cluster
