"""Training examples: the features a signal saw at its candle's close, and its outcome.

The model's inputs are exactly the feature engine's columns plus the signal's direction, in
schema order. Anything else is refused before training: a column named like an outcome
(exit price, PnL, return, reward, won) or one the feature engine did not produce. Outcomes are
labels and metadata, never inputs; the original system fed them to its model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from slt.errors import SltError

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

DIRECTION = "direction"
# Words that name an outcome of a trade. Feature columns may contain them (``return_atr`` is
# the last candle's return): only a name outside the feature schema is judged by its words.
OUTCOME_WORDS = (
    "exit", "pnl", "profit", "return", "reward", "won", "win", "outcome", "label", "target",
    "entry_price", "fill",
)  # fmt: skip


class LeakError(SltError):
    """Model inputs that include an outcome or anything the feature engine did not produce."""


@dataclass(frozen=True)
class InputSchema:
    """The model's input columns; ``feature_schema_hash`` ties a model to one feature engine."""

    feature_names: tuple[str, ...]
    feature_schema_hash: str

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.feature_names, DIRECTION)

    @property
    def hash(self) -> str:
        text = "\n".join((self.feature_schema_hash, *self.names))
        return hashlib.sha256(text.encode()).hexdigest()


def _outcome_word(name: str) -> str | None:
    lowered = name.lower()
    for word in OUTCOME_WORDS:
        if word in lowered:
            return word
    return None


def check_inputs(names: Sequence[str], schema: InputSchema) -> None:
    """Refuse inputs that are not exactly the schema's columns, naming what is wrong."""
    for name in names:
        word = _outcome_word(name)
        if word is not None and name not in schema.feature_names:
            raise LeakError(
                f"input column {name!r} looks like a trade outcome ({word!r}): outcomes are "
                "labels, never model inputs"
            )
    if tuple(names) != schema.names:
        extra = [n for n in names if n not in schema.names]
        missing = [n for n in schema.names if n not in names]
        raise LeakError(
            "model inputs must be exactly the feature engine's columns plus direction, in "
            f"schema order; extra: {extra or 'none'}, missing: {missing or 'none'}"
        )


@dataclass(frozen=True)
class Examples:
    """Closed virtual trades as training rows, in decision-time order."""

    inputs: F64  # (rows, len(schema.names)); NaN where a feature had no value
    won: B
    return_pct: F64
    reward: F64
    decision_time_ms: I64  # the signal candle's close: when the inputs were known
    exit_time_ms: I64  # when the label became known
    schema: InputSchema

    def __len__(self) -> int:
        return len(self.won)

    def subset(self, rows: npt.NDArray[np.bool_] | npt.NDArray[np.intp]) -> Examples:
        return Examples(
            self.inputs[rows],
            self.won[rows],
            self.return_pct[rows],
            self.reward[rows],
            self.decision_time_ms[rows],
            self.exit_time_ms[rows],
            self.schema,
        )

    def closed_before(self, time_ms: int) -> Examples:
        """Examples whose label was known before ``time_ms``: all a model may learn from then."""
        return self.subset(np.flatnonzero(self.exit_time_ms < time_ms))


def model_inputs(feature_rows: F64, direction: npt.ArrayLike) -> F64:
    """The model's input rows: the feature rows with the signal's direction as last column."""
    inputs = np.empty((len(feature_rows), feature_rows.shape[1] + 1))
    inputs[:, :-1] = feature_rows
    inputs[:, -1] = direction
    return inputs


def build_examples(
    feature_values: F64,
    input_names: Sequence[str],
    schema: InputSchema,
    signal_index: I64,
    direction: npt.NDArray[np.int8],
    won: B,
    return_pct: F64,
    reward: F64,
    decision_time_ms: I64,
    exit_time_ms: I64,
) -> Examples:
    """Rows of ``feature_values`` at the signal candles, plus direction; checked for leaks.

    ``input_names`` names the columns of ``feature_values`` (plus direction) as the caller
    assembled them: the check runs on what is really fed to the model.
    """
    check_inputs(input_names, schema)
    n_features = len(schema.feature_names)
    if feature_values.ndim != 2 or feature_values.shape[1] != n_features:
        raise LeakError(
            f"feature matrix has {feature_values.shape[-1]} columns, the schema {n_features}"
        )
    lengths = {len(a) for a in (signal_index, direction, won, return_pct, reward)}
    lengths |= {len(decision_time_ms), len(exit_time_ms)}
    if len(lengths) != 1:
        raise SltError(f"example arrays differ in length: {sorted(lengths)}")
    if np.any(exit_time_ms < decision_time_ms):
        raise LeakError("an example's label is dated before its decision")
    order = np.argsort(decision_time_ms, kind="stable")
    return Examples(
        inputs=model_inputs(feature_values[signal_index[order]], direction[order]),
        won=np.asarray(won[order], dtype=np.bool_),
        return_pct=np.asarray(return_pct[order], dtype=np.float64),
        reward=np.asarray(reward[order], dtype=np.float64),
        decision_time_ms=np.asarray(decision_time_ms[order], dtype=np.int64),
        exit_time_ms=np.asarray(exit_time_ms[order], dtype=np.int64),
        schema=schema,
    )
