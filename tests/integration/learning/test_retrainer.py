"""Retraining beside the loop: due by the policy, trained in another process, stored as
champion or challenger by the rule, never blocking the event loop."""

from __future__ import annotations

import asyncio
import os

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from slt.adapters.db.models import ModelStore
from slt.adapters.db.virtual_trades import VirtualTradeStore
from slt.domain.features.config import FeatureConfig
from slt.domain.features.schema import FeatureSchema, build_schema
from slt.domain.records import VirtualTrade
from slt.engine.virtual import candle_outcomes
from slt.learning.model import ModelParams
from slt.learning.retraining import RetrainPolicy
from slt.runtime.retrainer import LearningStores, Retrainer, training_executor
from slt.runtime.trading_config import TradingConfig
from tests.integration.db.conftest import db_url as db_url
from tests.integration.db.conftest import on_database
from tests.integration.learning.markets import prepared

HOUR = 3_600_000
PARAMS = ModelParams(n_estimators=40, threads=1)


def stored_virtual_trades() -> tuple[list[VirtualTrade], FeatureSchema]:
    data, features, signals = prepared(0.0005, 51)
    outcomes = candle_outcomes(
        data.candles, signals.direction, TradingConfig().engine(), data.rules.tick_size
    )
    trades = outcomes.records("BTCUSDT", features.values, features.schema.hash, "none")
    return trades, features.schema


def test_a_due_retrain_runs_in_another_process_while_the_loop_runs_and_is_judged(
    db_url: URL,
) -> None:
    trades, schema = stored_virtual_trades()
    clock = [trades[-1].exit_time_ms]

    async def body(engine: AsyncEngine) -> dict[str, object]:
        await VirtualTradeStore(engine).add_many(trades)
        models = ModelStore(engine)
        seen: dict[str, object] = {}
        with training_executor() as executor:
            retrainer = Retrainer(
                LearningStores.on(engine), schema, 74 * HOUR, lambda: clock[0],
                params=PARAMS, executor=executor,
            )  # fmt: skip
            retrainer.note_closed(49)
            seen["before_enough"] = retrainer.maybe_start()
            retrainer.note_closed(1)
            seen["first"] = retrainer.maybe_start()
            ticks = 0
            while retrainer.running:  # the loop goes on while the worker trains
                ticks += 1
                await asyncio.sleep(0.005)
            await retrainer.wait()
            seen["ticks"] = ticks
            seen["first_result"] = retrainer.last_result
            retrainer.note_closed(50)
            seen["too_soon"] = retrainer.maybe_start()
            clock[0] += HOUR
            seen["after_interval"] = retrainer.maybe_start()
            await retrainer.wait()
            seen["second_result"] = retrainer.last_result
        seen["models"] = await models.list()
        return seen

    seen = on_database(db_url, body)
    assert seen["before_enough"] is False and seen["first"] is True
    assert seen["too_soon"] is False and seen["after_interval"] is True
    first, second = seen["first_result"], seen["second_result"]
    assert first is not None and second is not None
    assert first.worker_pid != os.getpid()  # type: ignore[attr-defined]
    assert seen["ticks"] > 0
    assert first.verdict.promote and first.challenger.auc > 0.6  # type: ignore[attr-defined]
    models = seen["models"]
    assert isinstance(models, list) and len(models) == 2
    expected_second = "champion" if second.verdict.promote else "challenger"  # type: ignore[attr-defined]
    assert models[1].status == expected_second
    assert models[0].status == ("retired" if expected_second == "champion" else "champion")
    assert models[0].metrics["auc"] == first.challenger.auc  # type: ignore[attr-defined]


def test_with_training_disabled_nothing_is_ever_trained(db_url: URL) -> None:
    async def body(engine: AsyncEngine) -> tuple[bool, int]:
        retrainer = Retrainer(
            LearningStores.on(engine), build_schema(FeatureConfig.for_timeframe("5m")), HOUR,
            lambda: 10 * HOUR, policy=RetrainPolicy(enabled=False), params=PARAMS,
        )  # fmt: skip
        retrainer.note_closed(10_000)
        return retrainer.maybe_start(), len(await ModelStore(engine).list())

    assert on_database(db_url, body) == (False, 0)
