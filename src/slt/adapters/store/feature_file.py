"""Writing a feature matrix to Parquet for inspection in notebooks.

The file is written next to its destination and renamed into place, so a failed run never
leaves a half-written file where the user expects a result.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from slt.domain.features.matrix import FeatureMatrix
from slt.domain.features.schema import REASONS
from slt.errors import StoreError


def feature_table(matrix: FeatureMatrix, meta: dict[str, str] | None = None) -> pa.Table:
    """Open time (as a UTC timestamp and as ms), validity, reason text, then one column each."""
    reasons = np.array([REASONS[int(r)] for r in range(max(REASONS) + 1)], dtype=object)
    columns: dict[str, pa.Array] = {
        "open_time": pa.array(matrix.open_time_ms, type=pa.timestamp("ms", tz="UTC")),
        "open_time_ms": pa.array(matrix.open_time_ms, type=pa.int64()),
        "valid": pa.array(matrix.valid),
        "invalid_reason": pa.DictionaryArray.from_arrays(
            pa.array(matrix.reason.astype(np.int32)), pa.array(list(reasons))
        ),
    }
    for k, name in enumerate(matrix.schema.names):
        columns[name] = pa.array(matrix.values[:, k], type=pa.float64())
    schema = matrix.schema
    metadata = {
        "slt.feature_schema_hash": schema.hash,
        "slt.feature_schema": schema.description,  # what the hash covers (family versions)
        "slt.base_timeframe": schema.base_timeframe,
        "slt.columns": json.dumps(
            [
                {
                    "name": c.name,
                    "timeframe": c.timeframe,
                    "warmup_bars": c.warmup_bars,
                    "definition": c.definition,
                }
                for c in schema.columns
            ]
        ),
        **{f"slt.{k}": v for k, v in (meta or {}).items()},
    }
    table = pa.table(columns)
    return table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})


def write_feature_matrix(
    path: Path, matrix: FeatureMatrix, meta: dict[str, str] | None = None
) -> None:
    table = feature_table(matrix, meta)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        os.close(fd)
    except OSError as exc:
        raise StoreError(f"{path}: cannot write here ({exc.strerror or exc})") from exc
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    except (OSError, pa.ArrowException) as exc:
        raise StoreError(f"{path}: cannot write the feature file ({exc})") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
