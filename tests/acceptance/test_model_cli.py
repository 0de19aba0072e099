"""``slt model`` end to end on the default SQLite database in the data directory."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from slt.adapters.db.connect import create_engine
from slt.adapters.db.feature_schemas import FeatureSchemaStore
from slt.adapters.db.models import ModelStore
from slt.adapters.db.urls import database_url
from slt.domain.features.config import FeatureConfig
from slt.domain.features.families import FAMILIES
from slt.domain.features.schema import FeatureSchema, build_schema, schema_for
from slt.domain.learning_records import FeatureSchemaRecord, ModelRecord
from tests.conftest import SltRunner

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
DAY_MS = 86_400_000
FOREIGN_HASH = "0123456789ab" + "0" * 52

StoreModels = Callable[..., None]


def model(
    version: str,
    created_ms: int,
    status: str = "challenger",
    schema_hash: str | None = None,
    timeframe: str = "5m",
) -> ModelRecord:
    return ModelRecord(
        version=version,
        created_ms=created_ms,
        train_start_ms=created_ms - 30 * DAY_MS,
        train_end_ms=created_ms,
        feature_schema_hash=schema_hash
        or build_schema(FeatureConfig.for_timeframe(timeframe)).hash,
        params={"timeframe": timeframe, "max_depth": 4},
        metrics={"auc": 0.6123, "log_loss": 0.6612, "n": 400},
        status=status,
        model=b"x" * 2048,
    )


@pytest.fixture()
def store_models(run_slt: SltRunner, tmp_path: Path) -> StoreModels:
    """Upgrade the data directory's database; the returned runner stores the models it gets."""
    assert run_slt("db", "upgrade").returncode == 0
    url = database_url(None, tmp_path / "user_data")

    async def add(records: tuple[ModelRecord, ...], schemas: tuple[FeatureSchema, ...]) -> None:
        engine = create_engine(url)
        try:
            for schema in schemas:
                await FeatureSchemaStore(engine).register(FeatureSchemaRecord.of(schema, T0))
            for record in records:
                await ModelStore(engine).add(record)
        finally:
            await engine.dispose()

    def store(*records: ModelRecord, schemas: tuple[FeatureSchema, ...] = ()) -> None:
        asyncio.run(add(records, schemas))

    return store


def listed(run_slt: SltRunner) -> dict[str, dict[str, object]]:
    result = run_slt("model", "list", "--json")
    assert result.returncode == 0, result.stderr
    return {m["version"]: m for m in json.loads(result.stdout)}


def test_model_list_on_an_empty_database_says_how_models_get_made(
    run_slt: SltRunner, store_models: StoreModels
) -> None:
    result = run_slt("model", "list")
    assert result.returncode == 0, result.stderr
    assert "No model is stored yet" in result.stdout and "slt model train" in result.stdout
    assert json.loads(run_slt("model", "list", "--json").stdout) == []


def test_model_list_shows_two_models_as_a_table_and_as_json(
    run_slt: SltRunner, store_models: StoreModels
) -> None:
    store_models(model("m1", T0, "champion"), model("m2", T0 + DAY_MS, schema_hash=FOREIGN_HASH))
    table = run_slt("model", "list")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    m1 = next(line for line in lines if " m1 " in line)
    assert "champion" in m1 and "2024-01-01 00:00" in m1 and "2023-12-02 00:00" in m1
    assert "0.612" in m1 and "0.6612" in m1 and "2.0 KiB" in m1
    m2 = next(line for line in lines if " m2 " in line)
    assert "challenger" in m2 and "0123456789ab" in m2 and FOREIGN_HASH not in m2
    rows = json.loads(run_slt("model", "list", "--json").stdout)
    assert [r["version"] for r in rows] == ["m1", "m2"]
    assert rows[0]["status"] == "champion" and rows[0]["size_bytes"] == 2048
    assert rows[0]["metrics"]["auc"] == 0.6123 and rows[1]["feature_schema_hash"] == FOREIGN_HASH
    assert rows[1]["train_start_ms"] == T0 + DAY_MS - 30 * DAY_MS


def test_model_promote_makes_a_challenger_champion_and_retires_the_old_one(
    run_slt: SltRunner, store_models: StoreModels
) -> None:
    store_models(model("m1", T0, "champion"), model("m2", T0 + DAY_MS))
    result = run_slt("model", "promote", "m2")
    assert result.returncode == 0, result.stderr
    assert "m2 is now the champion (was m1)" in result.stdout
    models = listed(run_slt)
    assert models["m2"]["status"] == "champion" and models["m1"]["status"] == "retired"


def test_model_promote_of_an_unknown_version_exits_2_naming_it(
    run_slt: SltRunner, store_models: StoreModels
) -> None:
    store_models(model("m1", T0, "champion"))
    result = run_slt("model", "promote", "nope")
    assert result.returncode == 2
    assert "no model 'nope'" in result.stderr and "slt model list" in result.stderr
    assert listed(run_slt)["m1"]["status"] == "champion"


def test_model_promote_refuses_a_foreign_feature_schema_unless_forced(
    run_slt: SltRunner, store_models: StoreModels
) -> None:
    running = build_schema(FeatureConfig.for_timeframe("5m")).hash
    store_models(model("m1", T0, "champion"), model("m2", T0 + DAY_MS, schema_hash=FOREIGN_HASH))
    refused = run_slt("model", "promote", "m2")
    assert refused.returncode == 2
    assert "trained on feature schema 0123456789ab (unknown to this version" in refused.stderr
    assert f"running feature engine (5m) has {running[:12]}" in refused.stderr
    assert "--force" in refused.stderr
    assert listed(run_slt)["m2"]["status"] == "challenger"
    forced = run_slt("model", "promote", "m2", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "m2 is now the champion (was m1)" in forced.stdout
    assert listed(run_slt)["m2"]["status"] == "champion"


def test_model_promote_of_a_registered_foreign_schema_says_which_family_differs(
    run_slt: SltRunner, store_models: StoreModels
) -> None:
    config = FeatureConfig.for_timeframe("5m")
    fvg = next(f for f in FAMILIES if f.name == "fvg")
    bumped = schema_for(
        config, tuple(f._replace(version=fvg.version + 1) if f is fvg else f for f in FAMILIES)
    )
    store_models(model("m2", T0, schema_hash=bumped.hash), schemas=(bumped,))
    refused = run_slt("model", "promote", "m2")
    assert refused.returncode == 2
    assert (
        f"trained on feature schema {bumped.hash[:12]} (fvg v{fvg.version + 1}; running: "
        f"fvg v{fvg.version}), the running feature engine (5m) has "
        f"{build_schema(config).hash[:12]}"
    ) in refused.stderr


def test_model_promote_checks_the_schema_of_the_models_own_timeframe(
    run_slt: SltRunner, store_models: StoreModels
) -> None:
    store_models(model("h1", T0, timeframe="1h"))
    result = run_slt("model", "promote", "h1")
    assert result.returncode == 0, result.stderr
    assert "h1 is now the champion (was none)" in result.stdout


def test_model_rollback_after_two_promotions_brings_the_previous_champion_back(
    run_slt: SltRunner, store_models: StoreModels
) -> None:
    store_models(model("m1", T0), model("m2", T0 + DAY_MS))
    assert run_slt("model", "promote", "m1").returncode == 0
    assert run_slt("model", "promote", "m2").returncode == 0
    result = run_slt("model", "rollback")
    assert result.returncode == 0, result.stderr
    assert "m1 is the champion again (was m2)" in result.stdout
    models = listed(run_slt)
    assert models["m1"]["status"] == "champion" and models["m2"]["status"] == "retired"


def test_model_rollback_without_a_champion_exits_2(
    run_slt: SltRunner, store_models: StoreModels
) -> None:
    store_models(model("m1", T0))
    result = run_slt("model", "rollback")
    assert result.returncode == 2
    assert "no champion to roll back from" in result.stderr


def test_model_rollback_with_a_single_champion_ever_exits_2(
    run_slt: SltRunner, store_models: StoreModels
) -> None:
    store_models(model("m1", T0, "champion"))
    result = run_slt("model", "rollback")
    assert result.returncode == 2
    assert "nothing to roll back to" in result.stderr


@pytest.mark.parametrize("args", [("list",), ("promote", "m1"), ("rollback",)])
def test_model_commands_on_an_unmigrated_database_ask_for_slt_db_upgrade(
    run_slt: SltRunner, args: tuple[str, ...]
) -> None:
    result = run_slt("model", *args)
    assert result.returncode == 2
    assert "slt db upgrade" in result.stderr


def test_model_train_without_stored_virtual_trades_says_how_to_get_them(
    run_slt: SltRunner,
) -> None:
    run_slt("db", "upgrade")
    result = run_slt("model", "train")
    assert result.returncode == 2
    assert "0 closed virtual trades of this feature schema are stored" in result.stderr
    assert "slt walkforward --store" in result.stderr


def test_model_train_is_refused_when_training_is_disabled(run_slt: SltRunner) -> None:
    result = run_slt("model", "train", env={"DISABLE_MODEL_TRAINING": "true"})
    assert result.returncode == 2
    assert "model training is off (DISABLE_MODEL_TRAINING=true)" in result.stderr
