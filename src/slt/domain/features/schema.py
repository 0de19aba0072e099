"""The named, versioned list of model inputs that a feature configuration produces.

The schema hash is the hash of a description of what the values mean: the description format,
the base timeframe, every feature family's name, version and parameters per timeframe, and the
columns (name, timeframe, source, warm-up). No source code goes in, so a refactor that changes
no value keeps the hash, and stored training data and models with it (``families.py``).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, NamedTuple

import numpy as np

from slt.domain.features.config import (
    FeatureConfig,
    TimeframeParams,
    context_columns,
    context_prefix,
)
from slt.domain.features.definitions import definition
from slt.domain.features.families import FAMILIES, MULTIFRAME, Family
from slt.domain.features.multiframe_nb import (
    REASON_BAD_CANDLE,
    REASON_CONTEXT_WARMUP,
    REASON_OK,
    REASON_WARMUP,
    REASON_WARMUP_AFTER_RESTART,
    MtfParams,
)
from slt.domain.features.timeframe_nb import TF_COLUMNS, TfParams, tf_warmups
from slt.domain.timeframes import bucket_offset_ms, timeframe_ms

# Version of the description format. 1 hashed the kernels' source code instead of versions:
# its hashes are unknown to this version.
SCHEMA_VERSION = 2

REASONS: dict[int, str] = {
    REASON_OK: "ok",
    REASON_WARMUP: "warm-up: not enough history yet",
    REASON_WARMUP_AFTER_RESTART: "warm-up after a gap or a bad candle restarted the features",
    REASON_BAD_CANDLE: "bad candle: NaN, infinite or non-positive price, or high/low inconsistent",
    REASON_CONTEXT_WARMUP: "warm-up of a higher timeframe: not enough closed higher candles yet",
}


@dataclass(frozen=True)
class Column:
    name: str
    timeframe: str
    source: str  # column of the timeframe row it comes from
    warmup_bars: int  # in bars of ``timeframe``
    definition: str


@dataclass(frozen=True)
class FeatureSchema:
    base_timeframe: str
    columns: tuple[Column, ...]
    families: tuple[tuple[str, int], ...]  # (family, version), in computation order
    description: str  # canonical JSON of everything the hash covers (``describe``)
    hash: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def described(self) -> dict[str, Any]:
        """The description as data: what the feature schema registry stores."""
        described: dict[str, Any] = json.loads(self.description)
        return described

    def family_versions(self) -> str:
        """'indicators v1, structure v1, ...': the schema in words."""
        return ", ".join(f"{name} v{version}" for name, version in self.families)

    def warmup_rows(self) -> tuple[int, ...]:
        """Per column, base rows after any start before the value is settled: a context column
        needs warm-up + 1 closed higher candles, and the first higher candle may be partial."""
        base_ms = timeframe_ms(self.base_timeframe)
        rows = []
        for c in self.columns:
            tf = timeframe_ms(c.timeframe)
            rows.append(c.warmup_bars if tf == base_ms else (c.warmup_bars + 2) * tf // base_ms)
        return tuple(rows)

    def warmup_ms(self) -> int:
        """History needed before the first valid row, as a duration."""
        return max(c.warmup_bars * timeframe_ms(c.timeframe) for c in self.columns) + (
            max(timeframe_ms(c.timeframe) for c in self.columns)
        )


def tf_params(params: TimeframeParams) -> TfParams:
    return TfParams(params.indicators, params.structure, params.fvg, params.levels)


def canonical_json(description: Mapping[str, Any]) -> str:
    """One text per description: sorted keys, no spaces, no NaN."""
    return json.dumps(description, sort_keys=True, separators=(",", ":"), allow_nan=False)


def schema_hash(description: Mapping[str, Any]) -> str:
    """The schema hash of a description (also of one read back from the database)."""
    return hashlib.sha256(canonical_json(description).encode()).hexdigest()[:16]


def _number(value: object) -> int | float:
    """A parameter as JSON: an integer stays one, any other number is a float."""
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        return float(value)
    raise TypeError(f"feature parameters are numbers, got {value!r}")


def _params(params: NamedTuple) -> dict[str, int | float]:
    return {name: _number(value) for name, value in params._asdict().items()}


def _family_params(family: Family, config: FeatureConfig) -> dict[str, Any]:
    """Per timeframe: a kernel family's parameters; the composition's context columns."""
    if family.name == MULTIFRAME:
        return {c.timeframe: list(context_columns(c.timeframe)) for c in config.context}
    # A kernel family is named like its field of TfParams.
    return {
        p.timeframe: _params(tf_params(p)._asdict()[family.name])
        for p in (config.base, *config.context)
    }


def describe(
    config: FeatureConfig, columns: tuple[Column, ...], families: tuple[Family, ...]
) -> dict[str, Any]:
    """Everything the schema hash covers, as JSON-ready data; columns as
    [name, timeframe, source, warm-up bars]."""
    return {
        "format": SCHEMA_VERSION,
        "base_timeframe": config.base.timeframe,
        "families": [
            {"name": f.name, "version": f.version, "params": _family_params(f, config)}
            for f in families
        ],
        "columns": [[c.name, c.timeframe, c.source, c.warmup_bars] for c in columns],
    }


def _columns(config: FeatureConfig) -> tuple[Column, ...]:
    base_warmups = tf_warmups(tf_params(config.base))
    columns = [
        Column(n, config.base.timeframe, n, w, definition(n))
        for n, w in zip(TF_COLUMNS, base_warmups, strict=True)
    ]
    for ctx in config.context:
        warmups = dict(zip(TF_COLUMNS, tf_warmups(tf_params(ctx)), strict=True))
        prefix = context_prefix(ctx.timeframe)
        for name in context_columns(ctx.timeframe):
            text = f"{ctx.timeframe} context, from the last closed {ctx.timeframe} candle: "
            columns.append(
                Column(
                    f"{prefix}_{name}", ctx.timeframe, name, warmups[name], text + definition(name)
                )
            )
    return tuple(columns)


def schema_for(config: FeatureConfig, families: tuple[Family, ...]) -> FeatureSchema:
    """The schema of ``config`` computed by ``families`` (``build_schema``: the running ones)."""
    columns = _columns(config)
    described = describe(config, columns, families)
    return FeatureSchema(
        base_timeframe=config.base.timeframe,
        columns=columns,
        families=tuple((f.name, f.version) for f in families),
        description=canonical_json(described),
        hash=schema_hash(described),
    )


@functools.cache
def build_schema(config: FeatureConfig) -> FeatureSchema:
    """Cached per config (frozen and hashable): every matrix and stream asks for its schema."""
    return schema_for(config, FAMILIES)


def mtf_params(
    config: FeatureConfig, schema: FeatureSchema, *, mask_invalid: bool = True
) -> MtfParams:
    """The numbers the kernel needs, derived from the config and its schema."""
    base_cols = [c for c in schema.columns if c.timeframe == config.base.timeframe]
    contexts = config.context
    n = len(contexts)
    width = max((len(context_columns(c.timeframe)) for c in contexts), default=1)
    select = np.full((max(n, 1), width), -1, dtype=np.int64)
    out_start = np.zeros(max(n, 1), dtype=np.int64)
    warmup = np.zeros(max(n, 1), dtype=np.int64)
    position = 0
    for j, ctx in enumerate(contexts):
        names = context_columns(ctx.timeframe)
        select[j, : len(names)] = [TF_COLUMNS.index(name) for name in names]
        out_start[j] = position
        position += len(names)
        warmup[j] = max(c.warmup_bars for c in schema.columns if c.timeframe == ctx.timeframe)
    tf_ms = np.array([timeframe_ms(c.timeframe) for c in contexts] or [timeframe_ms("1d")])
    offsets = np.array([bucket_offset_ms(int(ms)) for ms in tf_ms], dtype=np.int64)
    context_params = tuple(tf_params(c) for c in contexts) or (tf_params(config.base),)
    return MtfParams(
        base=tf_params(config.base),
        context=context_params,
        n_context=n,
        base_tf_ms=timeframe_ms(config.base.timeframe),
        base_warmup=max(c.warmup_bars for c in base_cols),
        context_tf_ms=tf_ms.astype(np.int64),
        context_offset_ms=offsets,
        context_warmup=warmup,
        context_select=select,
        context_out=out_start,
        mask_invalid=mask_invalid,
    )
