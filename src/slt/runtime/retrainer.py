"""Retraining beside the trading loop: due by the policy, trained in another process, stored
and promoted by the champion/challenger rule.

The loop calls ``note_closed`` as virtual trades close and ``maybe_start`` after each candle;
neither waits. Training runs in a worker process at low priority with one thread fewer than
the machine has, so the loop keeps its core; only reading the examples and storing the model
happen on the loop, as awaited database calls. Examples recorded under another feature schema
are set aside, and the retrainer says how many and why (which families or parameters differ,
from the feature schema registry).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

import numpy as np
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from slt.adapters.db.feature_schemas import FeatureSchemaStore
from slt.adapters.db.models import ModelStore
from slt.adapters.db.virtual_trades import TrainingBatch, VirtualTradeStore
from slt.domain.features.families import UNVERSIONED, describe_change
from slt.domain.features.schema import FeatureSchema
from slt.domain.learning_records import FeatureSchemaRecord, ModelRecord
from slt.engine.walkforward import break_even_probability
from slt.learning.dataset import Examples, InputSchema, build_examples
from slt.learning.model import ModelParams
from slt.learning.retraining import RetrainPolicy, RetrainResult, retrain
from slt.runtime.config import Settings

log = structlog.get_logger("slt.learning")
MAX_EXAMPLES = 50_000


@dataclass(frozen=True)
class LearningStores:
    """The repositories retraining reads and writes, on one database."""

    virtual_trades: VirtualTradeStore
    models: ModelStore
    feature_schemas: FeatureSchemaStore

    @classmethod
    def on(cls, engine: AsyncEngine) -> LearningStores:
        return cls(VirtualTradeStore(engine), ModelStore(engine), FeatureSchemaStore(engine))


@dataclass(frozen=True)
class SetAside:
    """Stored examples of another feature schema than the running one, and why they differ."""

    feature_schema_hash: str
    count: int
    reason: str  # 'fvg v1; running: fvg v2', or UNVERSIONED
    known: bool  # the registry holds the schema's description

    @property
    def message(self) -> str:
        head = (
            f"set aside {self.count:,} examples recorded under feature schema "
            f"{self.feature_schema_hash[:12]}"
        )
        return f"{head} ({self.reason})" if self.known else f"{head}, {self.reason}"


@dataclass(frozen=True)
class Retrained:
    """A retrain as stored: the model's version, the verdict, the examples set aside."""

    version: str
    result: RetrainResult
    set_aside: tuple[SetAside, ...]


def _lower_priority() -> None:
    """Worker initializer: the trading loop comes first."""
    with contextlib.suppress(OSError):  # refused: the thread count still leaves a core free
        os.nice(10)


def training_executor() -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        max_workers=1, mp_context=get_context("spawn"), initializer=_lower_priority
    )


def examples_from_batch(batch: TrainingBatch, schema: InputSchema) -> Examples:
    """Stored virtual trades of this feature schema as examples, oldest first. A virtual
    position enters at the open after its signal candle's close, so the entry time is the
    decision time."""
    keep = np.flatnonzero([h == schema.feature_schema_hash for h in batch.feature_schema_hash])
    width = len(schema.feature_names)
    features = batch.features[keep] if len(keep) else np.empty((0, width))
    return build_examples(
        features, schema.names, schema, np.arange(len(keep)), batch.direction[keep],
        batch.won[keep], batch.return_pct[keep], batch.reward[keep], batch.entry_time_ms[keep],
        batch.exit_time_ms[keep],
    )  # fmt: skip


def foreign_schema_counts(hashes: Sequence[str], running: str) -> dict[str, int]:
    """Rows per feature schema other than ``running``, the most first."""
    return dict(Counter(h for h in hashes if h != running).most_common())


async def set_aside(
    batch: TrainingBatch, schema: FeatureSchema, feature_schemas: FeatureSchemaStore
) -> tuple[SetAside, ...]:
    """The stored trades ``examples_from_batch`` leaves out, per feature schema, with the
    difference from the running ``schema`` in words."""
    counts = foreign_schema_counts(batch.feature_schema_hash, schema.hash)
    recorded = await feature_schemas.get(counts.keys())
    running = schema.described()
    found = []
    for schema_hash, count in counts.items():
        known = recorded.get(schema_hash)
        reason = UNVERSIONED if known is None else describe_change(known.description, running)
        found.append(SetAside(schema_hash, count, reason, known is not None))
    return tuple(found)


def policy_from(settings: Settings) -> RetrainPolicy:
    """``DISABLE_MODEL_TRAINING``, ``SLT_RETRAIN_MIN_TRADES``, ``SLT_RETRAIN_INTERVAL_MINUTES``."""
    return RetrainPolicy(
        min_new_trades=settings.retrain_min_trades,
        min_interval_ms=round(settings.retrain_interval_minutes * 60_000),
        enabled=not settings.disable_model_training,
    )


class Retrainer:
    def __init__(
        self,
        stores: LearningStores,
        schema: FeatureSchema,
        embargo_ms: int,
        now_ms: Callable[[], int],
        *,
        policy: RetrainPolicy | None = None,
        params: ModelParams | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.stores = stores
        self.schema = schema
        self.embargo_ms = embargo_ms
        self.now_ms = now_ms
        self.policy = policy or RetrainPolicy()
        cores = os.cpu_count() or 1
        self.params = params or ModelParams(threads=max(1, cores - 1))
        self.executor = executor
        self.closed_since_last = 0
        self.last_train_ms: int | None = None
        self.last: Retrained | None = None
        self._task: asyncio.Task[None] | None = None
        if not self.policy.enabled:
            log.warning("model training is off (DISABLE_MODEL_TRAINING); the champion stays")

    @property
    def last_result(self) -> RetrainResult | None:
        return None if self.last is None else self.last.result

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def note_closed(self, count: int = 1) -> None:
        self.closed_since_last += count

    def maybe_start(self) -> bool:
        """Start a retrain in the background when one is due and none is running."""
        now = self.now_ms()
        if self.running or not self.policy.due(self.closed_since_last, self.last_train_ms, now):
            return False
        self.closed_since_last = 0
        self.last_train_ms = now
        self._task = asyncio.get_running_loop().create_task(self._run(now), name="slt-retrain")
        return True

    async def wait(self) -> None:
        """Until the running retrain (if any) is done; its error, if any, is raised here."""
        if self._task is not None:
            await self._task

    async def _run(self, now: int) -> None:
        try:
            retrained = await train_and_store(
                self.stores, self.schema, self.embargo_ms, self.params, now, self.executor
            )
        except Exception as exc:  # a failed retrain keeps the champion; say why, loudly
            log.error("retraining failed; the champion stays", reason=str(exc))
            return
        self.last = retrained


async def train_and_store(
    stores: LearningStores,
    schema: FeatureSchema,
    embargo_ms: int,
    params: ModelParams,
    now_ms: int,
    executor: Executor | None = None,
) -> Retrained:
    """Train a challenger on the newest stored virtual trades of ``schema`` (in ``executor``;
    None: a thread), judge it against the champion on the most recent window, store it as
    champion or challenger. Trades of other feature schemas are set aside, with one line each
    saying why. Raises ModelError when there is too little to learn from."""
    batch = await stores.virtual_trades.newest(MAX_EXAMPLES)
    examples = examples_from_batch(batch, InputSchema(schema.names, schema.hash))
    aside = await set_aside(batch, schema, stores.feature_schemas)
    for item in aside:
        log.info(item.message, business=True, feature_schema_hash=item.feature_schema_hash)
    champion = await stores.models.champion()
    stored_champion = None if champion is None else champion.model
    log.info(f"Model learning count: {len(examples)} samples", business=True)
    log.info(f"Model cumulative score: {float(examples.reward.sum()):.4f}", business=True)
    loop = asyncio.get_running_loop()
    result = await loop.run_in_executor(
        executor, retrain, examples, params, embargo_ms, stored_champion
    )
    status = "champion" if result.verdict.promote else "challenger"
    record = ModelRecord(
        version=f"m{now_ms}",
        created_ms=now_ms,
        train_start_ms=result.train_start_ms,
        train_end_ms=result.train_end_ms,
        feature_schema_hash=schema.hash,
        params={**params.__dict__, "timeframe": schema.base_timeframe},
        # The win rate a signal must beat, from the outcomes it learned from: a session that
        # loads this model gates its signals with it.
        metrics={**_metrics(result), "break_even_p": break_even_probability(examples)},
        status=status,
        model=result.model,
    )
    await stores.models.add(record, schema=FeatureSchemaRecord.of(schema, now_ms))
    log.info(
        "model promoted" if result.verdict.promote else "model kept as challenger",
        business=True,
        version=record.version,
        reason=result.verdict.reason,
    )
    return Retrained(record.version, result, aside)


def _metrics(result: RetrainResult) -> dict[str, object]:
    champion = result.champion
    return {
        "auc": _finite(result.challenger.auc),
        "log_loss": _finite(result.challenger.log_loss),
        "window": result.challenger.n,
        "champion_auc": None if champion is None else _finite(champion.auc),
        "champion_log_loss": None if champion is None else _finite(champion.log_loss),
        "learned": result.n_learned,
        "verdict": result.verdict.reason,
    }


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None
