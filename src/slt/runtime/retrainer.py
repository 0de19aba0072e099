"""Retraining beside the trading loop: due by the policy, trained in another process, stored
and promoted by the champion/challenger rule.

The loop calls ``note_closed`` as virtual trades close and ``maybe_start`` after each candle;
neither waits. Training runs in a worker process at low priority with one thread fewer than
the machine has, so the loop keeps its core; only reading the examples and storing the model
happen on the loop, as awaited database calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import structlog

from slt.adapters.db.models import ModelStore
from slt.adapters.db.virtual_trades import TrainingBatch, VirtualTradeStore
from slt.domain.learning_records import ModelRecord
from slt.learning.dataset import Examples, InputSchema, build_examples
from slt.learning.model import ModelParams
from slt.learning.retraining import RetrainPolicy, RetrainResult, retrain
from slt.runtime.config import Settings

log = structlog.get_logger("slt.learning")
MAX_EXAMPLES = 50_000


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
        virtual_trades: VirtualTradeStore,
        models: ModelStore,
        schema: InputSchema,
        embargo_ms: int,
        now_ms: Callable[[], int],
        *,
        policy: RetrainPolicy | None = None,
        params: ModelParams | None = None,
        executor: Executor | None = None,
        timeframe: str = "5m",
    ) -> None:
        self.virtual_trades = virtual_trades
        self.models = models
        self.schema = schema
        self.embargo_ms = embargo_ms
        self.now_ms = now_ms
        self.policy = policy or RetrainPolicy()
        cores = os.cpu_count() or 1
        self.params = params or ModelParams(threads=max(1, cores - 1))
        self.executor = executor
        self.timeframe = timeframe
        self.closed_since_last = 0
        self.last_train_ms: int | None = None
        self.last_result: RetrainResult | None = None
        self._task: asyncio.Task[None] | None = None
        if not self.policy.enabled:
            log.warning("model training is off (DISABLE_MODEL_TRAINING); the champion stays")

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
            result = await train_and_store(
                self.virtual_trades, self.models, self.schema, self.embargo_ms, self.params,
                now, self.timeframe, self.executor,
            )  # fmt: skip
        except Exception as exc:  # a failed retrain keeps the champion; say why, loudly
            log.error("retraining failed; the champion stays", reason=str(exc))
            return
        self.last_result = result


async def train_and_store(
    virtual_trades: VirtualTradeStore,
    models: ModelStore,
    schema: InputSchema,
    embargo_ms: int,
    params: ModelParams,
    now_ms: int,
    timeframe: str,
    executor: Executor | None = None,
) -> RetrainResult:
    """Train a challenger on the newest stored virtual trades (in ``executor``; None: a thread),
    judge it against the champion on the most recent window, store it as champion or
    challenger. Raises ModelError when there is too little to learn from."""
    batch = await virtual_trades.newest(MAX_EXAMPLES)
    examples = examples_from_batch(batch, schema)
    champion = await models.champion()
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
        feature_schema_hash=schema.feature_schema_hash,
        params={**params.__dict__, "timeframe": timeframe},
        metrics=_metrics(result),
        status=status,
        model=result.model,
    )
    await models.add(record)
    log.info(
        "model promoted" if result.verdict.promote else "model kept as challenger",
        business=True,
        version=record.version,
        reason=result.verdict.reason,
    )
    return result


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
