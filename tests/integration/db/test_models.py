"""The model registry on SQLite and real PostgreSQL: one champion, promote, rollback."""

from __future__ import annotations

import dataclasses
import math

import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.integration.db.conftest import on_database

from slt.adapters.db.models import ModelStore, ModelStoreError
from slt.domain.learning_records import ModelRecord
from slt.domain.records import RecordError

T0 = 1_704_067_200_000


def model(
    version: str, created_ms: int, status: str = "challenger", **metrics: float
) -> ModelRecord:
    return ModelRecord(
        version=version,
        created_ms=created_ms,
        train_start_ms=T0 - 86_400_000,
        train_end_ms=created_ms,
        feature_schema_hash="f" * 64,
        params={"max_depth": 4, "eta": 0.05},
        metrics={"auc": 0.61, **metrics},
        status=status,
        model=version.encode() * 100,
    )


async def statuses(store: ModelStore) -> dict[str, str]:
    return {m.version: m.status for m in await store.list()}


def test_models_round_trip_with_bytes_params_and_metrics(db_url: URL) -> None:
    stored = model("m1", T0, "champion", log_loss=0.66)

    async def body(engine: AsyncEngine) -> tuple[ModelRecord | None, ModelRecord | None, int]:
        store = ModelStore(engine)
        await store.add(stored)
        listing = await store.list()
        return await store.get("m1"), await store.champion(), listing[0].size_bytes

    got, champion, size = on_database(db_url, body)
    assert got is not None and got.model == stored.model and got.metrics == stored.metrics
    assert champion == got
    assert got.promoted_ms == T0  # a model stored as champion was promoted when created
    assert size == len(stored.model)


def test_promote_keeps_exactly_one_champion_and_rollback_brings_back_the_previous(
    db_url: URL,
) -> None:
    async def body(engine: AsyncEngine) -> list[object]:
        store = ModelStore(engine)
        await store.add(model("m1", T0, "champion"))
        await store.add(model("m2", T0 + 1))
        await store.add(model("m3", T0 + 2))
        seen: list[object] = [await statuses(store)]
        await store.promote("m2", T0 + 10)
        seen.append(await statuses(store))
        await store.promote("m3", T0 + 20)
        seen.append(await store.rollback(T0 + 30))
        seen.append(await statuses(store))
        seen.append(await store.rollback(T0 + 40))  # like `cd -`: back to m3
        return seen

    first, after_promote, back_to, after_rollback, again = on_database(db_url, body)
    assert first == {"m1": "champion", "m2": "challenger", "m3": "challenger"}
    assert after_promote == {"m1": "retired", "m2": "champion", "m3": "challenger"}
    assert back_to == "m2"
    assert after_rollback == {"m1": "retired", "m2": "champion", "m3": "retired"}
    assert again == "m3"


def test_unknown_versions_duplicates_and_an_empty_history_get_clear_errors(db_url: URL) -> None:
    async def body(engine: AsyncEngine) -> list[str]:
        store = ModelStore(engine)
        errors = []
        with pytest.raises(ModelStoreError) as caught:
            await store.rollback(T0)
        errors.append(str(caught.value))
        await store.add(model("m1", T0, "champion"))
        with pytest.raises(RecordError) as duplicate:
            await store.add(model("m1", T0 + 5))
        errors.append(str(duplicate.value))
        with pytest.raises(ModelStoreError) as unknown:
            await store.promote("nope", T0)
        errors.append(str(unknown.value))
        with pytest.raises(ModelStoreError) as alone:
            await store.rollback(T0)
        errors.append(str(alone.value))
        return errors

    no_champion, duplicate, unknown, alone = on_database(db_url, body)
    assert no_champion == "there is no champion to roll back from"
    assert duplicate == "model 'm1' is already stored"
    assert "no model 'nope'" in unknown and "slt model list" in unknown
    assert "m1 is the only model that was ever champion" in alone


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"metrics": {"auc": math.nan}}, "metrics.auc holds a non-finite number"),
        ({"status": "best"}, "status must be one of"),
        ({"model": b""}, "model must be non-empty bytes"),
        ({"train_end_ms": T0 - 10 * 86_400_000}, "train_end_ms lies before train_start_ms"),
        ({"version": "v" * 65}, "65 characters long"),
    ],
)
def test_bad_models_are_refused(db_url: URL, changes: dict[str, object], message: str) -> None:
    bad = dataclasses.replace(model("m1", T0), **changes)  # type: ignore[arg-type]

    async def body(engine: AsyncEngine) -> tuple[str, int]:
        store = ModelStore(engine)
        with pytest.raises(RecordError) as caught:
            await store.add(bad)
        return str(caught.value), len(await store.list())

    error, count = on_database(db_url, body)
    assert message in error
    assert count == 0
