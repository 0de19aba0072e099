"""``slt features``: the feature matrix of a stored series, written to Parquet for inspection."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer
from rich.table import Table

from slt.cli.context import app_context
from slt.cli.output import stdout
from slt.domain.clock import format_utc_ms, parse_utc_ms
from slt.domain.series import Kind, Market, SeriesKey
from slt.domain.symbols import exchange_symbol
from slt.domain.timeframes import timeframe_ms
from slt.errors import SltError

if TYPE_CHECKING:
    from slt.domain.features.matrix import FeatureMatrix


def _trim(matrix: FeatureMatrix, start_ms: int | None, end_ms: int | None) -> FeatureMatrix:
    from slt.domain.features.matrix import FeatureMatrix

    keep = np.ones(len(matrix), dtype=bool)
    if start_ms is not None:
        keep &= matrix.open_time_ms >= start_ms
    if end_ms is not None:
        keep &= matrix.open_time_ms < end_ms
    return FeatureMatrix(
        matrix.schema, matrix.open_time_ms[keep], matrix.reason[keep], matrix.values[keep]
    )


def features(
    ctx: typer.Context,
    symbol: Annotated[str, typer.Option("--symbol", help="BTCUSDT or BTC/USDT:USDT.")],
    out: Annotated[Path, typer.Option("--out", help="Parquet file to write.")],
    market: Annotated[Market, typer.Option("--market", help="spot or futures.")] = Market.FUTURES,
    timeframe: Annotated[str, typer.Option("--timeframe", help="Base timeframe.")] = "5m",
    start: Annotated[str | None, typer.Option(help="First candle (UTC), e.g. 2023-03-01.")] = None,
    end: Annotated[str | None, typer.Option(help="End (UTC, exclusive).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable summary.")] = False,
) -> None:
    """Compute the feature matrix (one row per base candle) and write it to Parquet.

    Candles before --start are read too, as far back as the warm-up needs, so rows from --start
    on are valid when the store holds that history. Invalid rows are kept, all NaN, with the
    reason in `invalid_reason`.
    """
    # Imported here: numba and the kernels load only when features are computed.
    from slt.adapters.store.feature_file import write_feature_matrix
    from slt.domain.features.config import FeatureConfig
    from slt.domain.features.matrix import compute_features
    from slt.domain.features.schema import REASONS, build_schema

    timeframe_ms(timeframe)
    start_ms = parse_utc_ms(start) if start else None
    end_ms = parse_utc_ms(end) if end else None
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise SltError(f"--end {end} must be after --start {start}")
    config = FeatureConfig.for_timeframe(timeframe)
    schema = build_schema(config)
    from slt.runtime.bootstrap import open_store

    store = open_store(app_context(ctx).settings())
    key = SeriesKey(exchange_symbol(symbol), market, timeframe, Kind.CANDLES)
    load_from = None if start_ms is None else start_ms - schema.warmup_ms()
    candles = store.load_candles(key, load_from, end_ms)
    began = time.perf_counter()
    matrix = _trim(compute_features(candles, config), start_ms, end_ms)
    seconds = time.perf_counter() - began
    if len(matrix) == 0:
        raise SltError(
            f"the store holds no {key} candles between {start or 'start'} and {end or 'end'}"
        )
    write_feature_matrix(out, matrix, {"symbol": key.symbol, "market": str(market)})
    counts = Counter(int(r) for r in matrix.reason)
    valid = matrix.valid
    summary = {
        "out": str(out),
        "series": str(key),
        "rows": len(matrix),
        "valid_rows": int(valid.sum()),
        "first": format_utc_ms(int(matrix.open_time_ms[0])),
        "last": format_utc_ms(int(matrix.open_time_ms[-1])),
        "first_valid": format_utc_ms(int(matrix.open_time_ms[valid][0])) if valid.any() else None,
        "columns": len(schema.columns),
        "schema_hash": schema.hash,
        "families": schema.family_versions(),
        "invalid": {REASONS[r]: n for r, n in sorted(counts.items()) if r != 0},
        "compute_seconds": round(seconds, 3),
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    table = Table(title=f"Features of {key} written to {out}")
    table.add_column("")
    table.add_column("", justify="left")
    for name, value in summary.items():
        if name == "invalid":
            for reason, n in counts.items():
                if reason != 0:
                    table.add_row(f"invalid: {REASONS[reason]}", f"{n:,}")
        else:
            table.add_row(name, f"{value:,}" if isinstance(value, int) else str(value))
    stdout().print(table)
