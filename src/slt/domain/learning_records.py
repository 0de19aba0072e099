"""What the learner stores besides virtual trades: signals, training examples, models."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from slt.domain.features.schema import FeatureSchema, schema_hash
from slt.domain.records import (
    F64,
    MAX_NAME,
    RecordError,
    check_choice,
    check_feature_row,
    check_finite,
    check_millis,
    check_not_negative,
    check_symbol,
    check_text,
    named,
)
from slt.domain.timeframes import TIMEFRAME_MS

MODEL_STATUSES = ("champion", "challenger", "retired")


@dataclass(frozen=True)
class SignalRecord:
    """A candidate signal at a candle's close, traded or not, with the features it saw."""

    time_ms: int
    symbol: str
    timeframe: str
    direction: int
    raw_score: float
    confidence: float
    features: F64
    feature_schema_hash: str
    strategy: str
    model_version: str


@dataclass(frozen=True)
class Example:
    """One row of the experience buffer: features and labels of a closed virtual trade."""

    time_ms: int
    features: F64
    feature_schema_hash: str
    won: bool
    return_pct: float
    reward: float
    weight: float = 1.0
    virtual_trade_id: int | None = None


@dataclass(frozen=True)
class ModelRecord:
    """A trained model as stored: the bytes plus what is needed to judge and reload it."""

    version: str
    created_ms: int
    train_start_ms: int
    train_end_ms: int
    feature_schema_hash: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    status: str
    model: bytes = field(repr=False)
    promoted_ms: int | None = None


@dataclass(frozen=True)
class FeatureSchemaRecord:
    """What a feature schema hash stands for (family versions and parameters, columns): stored
    once per hash, so that data recorded under it can be explained when the schema moves on."""

    feature_schema_hash: str
    base_timeframe: str
    description: dict[str, Any]
    created_ms: int

    @classmethod
    def of(cls, schema: FeatureSchema, created_ms: int) -> FeatureSchemaRecord:
        return cls(schema.hash, schema.base_timeframe, schema.described(), created_ms)


def _unit(name: str, value: float) -> None:
    check_finite(name, value)
    if not 0.0 <= value <= 1.0:
        raise RecordError(f"{name} must lie in [0, 1], got {value!r}")


def check_signal(signal: SignalRecord, n_features: int | None = None) -> None:
    def run() -> None:
        check_millis("time_ms", signal.time_ms)
        check_symbol(signal.symbol)
        check_choice("timeframe", signal.timeframe, TIMEFRAME_MS)
        check_choice("direction", signal.direction, (1, -1))
        _unit("raw_score", signal.raw_score)
        _unit("confidence", signal.confidence)
        check_feature_row(signal.features, n_features)
        check_text("feature_schema_hash", signal.feature_schema_hash, MAX_NAME)
        check_text("strategy", signal.strategy, MAX_NAME)
        check_text("model_version", signal.model_version, MAX_NAME)

    named("signal", f"{signal.symbol} {signal.time_ms}", run)


def check_example(example: Example, n_features: int | None = None) -> None:
    def run() -> None:
        check_millis("time_ms", example.time_ms)
        check_feature_row(example.features, n_features)
        check_text("feature_schema_hash", example.feature_schema_hash, MAX_NAME)
        if not isinstance(example.won, bool):
            raise RecordError(f"won must be True or False, got {example.won!r}")
        check_finite("return_pct", example.return_pct)
        check_finite("reward", example.reward)
        check_not_negative("weight", example.weight)
        if example.virtual_trade_id is not None:
            check_millis("virtual_trade_id", example.virtual_trade_id)

    named("example", str(example.time_ms), run)


def _json_numbers_finite(name: str, value: Any) -> None:
    """Metrics and parameters are stored as JSON, which has no NaN or infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        raise RecordError(f"{name} holds a non-finite number {value!r}")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise RecordError(f"{name} has a non-string key {key!r}")
            _json_numbers_finite(f"{name}.{key}", item)
    elif isinstance(value, list | tuple):
        for k, item in enumerate(value):
            _json_numbers_finite(f"{name}[{k}]", item)
    elif not isinstance(value, str | int | float | bool | type(None)):
        raise RecordError(f"{name} holds {type(value).__name__}, which JSON cannot store")


def check_model(model: ModelRecord) -> None:
    def run() -> None:
        check_text("version", model.version, MAX_NAME)
        for name in ("created_ms", "train_start_ms", "train_end_ms"):
            check_millis(name, getattr(model, name))
        if model.train_end_ms < model.train_start_ms:
            raise RecordError("train_end_ms lies before train_start_ms")
        check_text("feature_schema_hash", model.feature_schema_hash, MAX_NAME)
        _json_numbers_finite("params", model.params)
        _json_numbers_finite("metrics", model.metrics)
        check_choice("status", model.status, MODEL_STATUSES)
        if not isinstance(model.model, bytes) or not model.model:
            raise RecordError("model must be non-empty bytes")
        if model.promoted_ms is not None:
            check_millis("promoted_ms", model.promoted_ms)

    named("model", repr(model.version), run)


def check_feature_schema(record: FeatureSchemaRecord) -> None:
    def run() -> None:
        check_text("feature_schema_hash", record.feature_schema_hash, MAX_NAME)
        check_choice("base_timeframe", record.base_timeframe, TIMEFRAME_MS)
        check_millis("created_ms", record.created_ms)
        _json_numbers_finite("description", record.description)
        if schema_hash(record.description) != record.feature_schema_hash:
            raise RecordError("the description does not hash to feature_schema_hash")

    named("feature schema", record.feature_schema_hash, run)
