"""The named, versioned list of model inputs that a feature configuration produces.

The schema hash covers the column names, their warm-ups, every kernel parameter and the code of
every kernel (docstrings and comments excluded), so a model trained on one definition is never
fed another.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import inspect
import pkgutil
from dataclasses import dataclass
from types import ModuleType

import numpy as np

import slt.domain.features as features_package
from slt.domain.features.config import (
    FeatureConfig,
    TimeframeParams,
    context_columns,
    context_prefix,
)
from slt.domain.features.definitions import definition
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

SCHEMA_VERSION = 1


def _definition_modules() -> tuple[ModuleType, ...]:
    """Every kernel module of the package plus the config that sets their parameters."""
    names = sorted(
        m.name for m in pkgutil.iter_modules(features_package.__path__) if m.name.endswith("_nb")
    )
    modules = [importlib.import_module(f"{features_package.__name__}.{n}") for n in names]
    return (*modules, importlib.import_module(f"{features_package.__name__}.config"))


KERNEL_MODULES = _definition_modules()

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
    hash: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

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


def _code_digest(module: ModuleType) -> str:
    """Hash of a module's syntax tree without docstrings: edits to prose keep the hash."""
    tree = ast.parse(inspect.getsource(module))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                body.pop(0)
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()


@functools.cache
def _kernel_code_digest() -> str:
    """The kernels' code cannot change inside a process: parse it once, not on every matrix."""
    return "".join(_code_digest(module) for module in KERNEL_MODULES)


@functools.cache
def build_schema(config: FeatureConfig) -> FeatureSchema:
    """Cached per config (frozen and hashable): every matrix and stream asks for its schema."""
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
    digest = hashlib.sha256()
    digest.update(f"schema {SCHEMA_VERSION}\n".encode())
    for column in columns:
        digest.update(
            f"{column.name}|{column.timeframe}|{column.source}|{column.warmup_bars}\n".encode()
        )
    for params in (config.base, *config.context):
        digest.update(repr(params).encode())
    digest.update(_kernel_code_digest().encode())
    return FeatureSchema(config.base.timeframe, tuple(columns), digest.hexdigest()[:16])


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
