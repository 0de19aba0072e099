"""``slt model``: the stored confidence models, which one is champion, promote and roll back."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from slt.cli.context import app_context
from slt.cli.output import stdout
from slt.domain.clock import format_utc_ms
from slt.errors import SltError

if TYPE_CHECKING:
    from slt.adapters.db.models import ModelSummary
    from slt.domain.features.schema import FeatureSchema
    from slt.domain.learning_records import FeatureSchemaRecord
    from slt.runtime.config import Settings
    from slt.runtime.storage import Storage

app = typer.Typer(help="Stored models: list them, promote a challenger, roll back the champion.")

# Models stored before the timeframe was recorded in their params were all trained on 5m.
DEFAULT_TIMEFRAME = "5m"

T = TypeVar("T")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _with_store(settings: Settings, work: Callable[[Storage], Awaitable[T]]) -> T:
    """Open the storage (schema checked), run ``work`` on it, close it."""
    from slt.runtime.storage import open_storage

    async def run() -> T:
        storage = await open_storage(settings)
        try:
            return await work(storage)
        finally:
            await storage.close()

    return asyncio.run(run())


def _champion(models: list[ModelSummary]) -> str | None:
    return next((m.version for m in models if m.status == "champion"), None)


def running_schema(timeframe: str) -> FeatureSchema:
    """The feature schema of the running feature engine for a base timeframe."""
    from slt.domain.features.config import FeatureConfig
    from slt.domain.features.schema import build_schema

    return build_schema(FeatureConfig.for_timeframe(timeframe))


def check_schema(model: ModelSummary, recorded: FeatureSchemaRecord | None = None) -> None:
    """Refuse a model trained on another feature schema than the running engine computes,
    saying what differs when the registry holds the model's schema (``recorded``)."""
    from slt.adapters.db.models import ModelStoreError
    from slt.domain.features.families import UNVERSIONED, describe_change

    timeframe = str(model.params.get("timeframe", DEFAULT_TIMEFRAME))
    running = running_schema(timeframe)
    if model.feature_schema_hash != running.hash:
        why = (
            UNVERSIONED
            if recorded is None
            else describe_change(recorded.description, running.described())
        )
        raise ModelStoreError(
            f"{model.version} was trained on feature schema {model.feature_schema_hash[:12]} "
            f"({why}), the running feature engine ({timeframe}) has {running.hash[:12]}: "
            "retrain it (walk-forward or retraining) or pass --force to promote it anyway"
        )


def _score(metrics: dict[str, Any], name: str) -> float | None:
    """A score from the top level of the metrics, or from their ``scores`` block."""
    nested = metrics.get("scores")
    for source in (metrics, nested if isinstance(nested, dict) else {}):
        value = source.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def _size(n_bytes: int) -> str:
    if n_bytes < 1024:
        return f"{n_bytes} B"
    if n_bytes < 1024**2:
        return f"{n_bytes / 1024:.1f} KiB"
    return f"{n_bytes / 1024**2:.1f} MiB"


def _row(m: ModelSummary) -> list[str]:
    auc, loss = _score(m.metrics, "auc"), _score(m.metrics, "log_loss")
    return [
        m.version,
        m.status,
        format_utc_ms(m.created_ms),
        f"{format_utc_ms(m.train_start_ms)} → {format_utc_ms(m.train_end_ms)}",
        "" if auc is None else f"{auc:.3f}",
        "" if loss is None else f"{loss:.4f}",
        _size(m.size_bytes),
        m.feature_schema_hash[:12],
    ]


@app.command("list")
def list_models(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Every stored model, oldest first, with its status, training span and scores."""
    from rich.table import Table

    async def listing(storage: Storage) -> list[ModelSummary]:
        return await storage.models.list()

    models = _with_store(app_context(ctx).settings(), listing)
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(m) for m in models], indent=2))
        return
    if not models:
        stdout().print(
            "No model is stored yet: `slt model train` (after `slt walkforward --store`) "
            "or retraining stores them."
        )
        return
    table = Table(title="Stored models")
    for col in ("version", "status", "created (UTC)", "trained on (UTC)", "AUC", "log-loss",
                "size", "schema"):  # fmt: skip
        table.add_column(col, justify="right" if col in ("AUC", "log-loss", "size") else "left")
    for m in models:
        table.add_row(*_row(m))
    stdout().print(table)


@app.command()
def promote(
    ctx: typer.Context,
    version: Annotated[str, typer.Argument(help="The stored model to make champion.")],
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Skip the check that the model was trained on the running feature schema.",
        ),
    ] = False,
) -> None:
    """Make VERSION the champion; the current champion retires.

    Refused for a model of another feature schema than the running engine's, unless --force.
    """

    async def run(storage: Storage) -> tuple[str | None, bool]:
        models = await storage.models.list()
        before = _champion(models)
        target = next((m for m in models if m.version == version), None)
        if target is not None and not force:
            recorded = await storage.feature_schemas.get([target.feature_schema_hash])
            check_schema(target, recorded.get(target.feature_schema_hash))
        await storage.models.promote(version, _now_ms())  # an unknown version raises, saying so
        return before, before == version

    before, already = _with_store(app_context(ctx).settings(), run)
    if already:
        stdout().print(f"{version} is already the champion")
        return
    stdout().print(f"{version} is now the champion (was {before or 'none'})")


@app.command()
def rollback(ctx: typer.Context) -> None:
    """Bring back the champion before the current one (a second rollback undoes the first)."""

    async def run(storage: Storage) -> tuple[str | None, str]:
        before = _champion(await storage.models.list())
        return before, await storage.models.rollback(_now_ms())

    before, now = _with_store(app_context(ctx).settings(), run)
    stdout().print(f"{now} is the champion again (was {before})")


@app.command()
def train(
    ctx: typer.Context,
    timeframe: Annotated[
        str, typer.Option("--timeframe", help="Base timeframe of the stored virtual trades.")
    ] = DEFAULT_TIMEFRAME,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="Trading configuration (TOML): its time stop sets the embargo."
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the model.")] = 0,
) -> None:
    """Train a challenger on the stored virtual trades now, and keep it as champion only if it
    beats the current one on the most recent window (log-loss better, AUC not worse).

    Retraining beside trading does the same on its own; DISABLE_MODEL_TRAINING stops both.
    """
    from slt.domain.features.config import FeatureConfig
    from slt.domain.features.schema import build_schema
    from slt.learning.model import ModelParams
    from slt.learning.validation import embargo_ms
    from slt.runtime.retrainer import LearningStores, Retrained, train_and_store
    from slt.runtime.storage import open_storage
    from slt.runtime.trading_config_file import load_trading_config

    settings = app_context(ctx).settings()
    if settings.disable_model_training:
        raise SltError("model training is off (DISABLE_MODEL_TRAINING=true)")
    feature_config = FeatureConfig.for_timeframe(timeframe)
    schema = build_schema(feature_config)
    embargo = embargo_ms(load_trading_config(config).exit_params().max_holding_ms, feature_config)
    now = _now_ms()

    async def run() -> Retrained:
        storage = await open_storage(settings)
        stores = LearningStores(storage.virtual_trades, storage.models, storage.feature_schemas)
        try:
            return await train_and_store(stores, schema, embargo, ModelParams(seed=seed), now)
        finally:
            await storage.close()

    retrained = asyncio.run(run())
    result = retrained.result
    status = "champion" if result.verdict.promote else "challenger"
    auc, loss = result.challenger.auc, result.challenger.log_loss
    stdout().print(
        f"{retrained.version}: stored as {status} ({result.verdict.reason}); on the most recent "
        f"window AUC {auc:.3f}, log-loss {loss:.4f}"
    )
