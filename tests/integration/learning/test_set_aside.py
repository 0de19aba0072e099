"""Retraining learns only from its own feature schema and says, per other schema, how many
examples it set aside and why: which family versions differ, or that the hash is unknown."""

from __future__ import annotations

import dataclasses

import structlog
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from slt.domain.features.config import FeatureConfig
from slt.domain.features.families import FAMILIES, UNVERSIONED
from slt.domain.features.schema import FeatureSchema, schema_for
from slt.domain.learning_records import FeatureSchemaRecord
from slt.learning.model import ModelParams
from slt.runtime.retrainer import LearningStores, Retrained, SetAside, train_and_store
from tests.integration.db.conftest import db_url as db_url
from tests.integration.db.conftest import on_database
from tests.integration.learning.test_retrainer import HOUR, stored_virtual_trades

UNKNOWN_HASH = "0123456789abcdef"
N_PREVIOUS, N_UNKNOWN = 300, 120


def _running_after_an_fvg_change(recorded: FeatureSchema) -> FeatureSchema:
    """The engine after a change of fair value gap values: fvg's version bumped."""
    bumped = tuple(f._replace(version=f.version + 1) if f.name == "fvg" else f for f in FAMILIES)
    return schema_for(FeatureConfig.for_timeframe(recorded.base_timeframe), bumped)


def test_examples_of_other_schemas_are_set_aside_counted_and_explained(db_url: URL) -> None:
    trades, previous = stored_virtual_trades()
    running = _running_after_an_fvg_change(previous)
    under = [
        dataclasses.replace(t, feature_schema_hash=h)
        for t, h in zip(
            trades,
            [previous.hash] * N_PREVIOUS
            + [UNKNOWN_HASH] * N_UNKNOWN
            + [running.hash] * (len(trades) - N_PREVIOUS - N_UNKNOWN),
            strict=True,
        )
    ]
    now = trades[-1].exit_time_ms

    async def body(engine: AsyncEngine) -> tuple[Retrained, list[str], bool]:
        stores = LearningStores.on(engine)
        await stores.virtual_trades.add_many(
            under[:N_PREVIOUS], schema=FeatureSchemaRecord.of(previous, now)
        )
        await stores.virtual_trades.add_many(under[N_PREVIOUS : N_PREVIOUS + N_UNKNOWN])
        await stores.virtual_trades.add_many(
            under[N_PREVIOUS + N_UNKNOWN :], schema=FeatureSchemaRecord.of(running, now)
        )
        params = ModelParams(n_estimators=40, threads=1)
        with structlog.testing.capture_logs() as logs:
            retrained = await train_and_store(stores, running, 74 * HOUR, params, now)
        registered = running.hash in await stores.feature_schemas.get([running.hash])
        return retrained, [str(e["event"]) for e in logs], registered

    retrained, events, registered = on_database(db_url, body)
    fvg = dict(previous.families)["fvg"]
    change = f"fvg v{fvg}; running: fvg v{fvg + 1}"
    assert retrained.set_aside == (
        SetAside(previous.hash, N_PREVIOUS, change, known=True),
        SetAside(UNKNOWN_HASH, N_UNKNOWN, UNVERSIONED, known=False),
    )
    assert (
        f"set aside {N_PREVIOUS} examples recorded under feature schema {previous.hash[:12]} "
        f"({change})"
    ) in events
    assert (
        f"set aside {N_UNKNOWN} examples recorded under feature schema {UNKNOWN_HASH[:12]}, "
        "unknown to this version (recorded before feature families were versioned)"
    ) in events
    assert f"Model learning count: {len(trades) - N_PREVIOUS - N_UNKNOWN} samples" in events
    assert registered  # the stored model's schema is in the registry


def test_a_schema_of_only_its_own_examples_sets_nothing_aside(db_url: URL) -> None:
    trades, schema = stored_virtual_trades()
    now = trades[-1].exit_time_ms

    async def body(engine: AsyncEngine) -> Retrained:
        stores = LearningStores.on(engine)
        await stores.virtual_trades.add_many(trades, schema=FeatureSchemaRecord.of(schema, now))
        params = ModelParams(n_estimators=20, threads=1)
        return await train_and_store(stores, schema, 74 * HOUR, params, now)

    retrained = on_database(db_url, body)
    assert retrained.set_aside == ()
    assert retrained.result.n_learned > 0
