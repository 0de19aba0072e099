"""Turning market-data files into checked series, then merging them into the store in one step.

Every file is read and checked before anything is written; one bad file fails the whole command
and the store stays exactly as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from slt.adapters.importers.naming import FileHints, data_suffix, hints_from_path
from slt.adapters.importers.readers import READERS, RawRows
from slt.adapters.store.parquet_store import MergeResult, ParquetStore
from slt.domain.clock import format_utc_ms
from slt.domain.intervals import read_interval, round_to_minute
from slt.domain.quality import QualityReport, check_candles, check_funding, check_series
from slt.domain.series import Candles, FundingRates, Kind, Market, Series, SeriesKey
from slt.domain.timeframes import DAY_MS, WEEK_MS, bucket_offset_ms, timeframe_ms, timeframe_name
from slt.errors import DataFileError

TRADES_REASON = "holds trades, not candles, mark prices or funding rates"


@dataclass(frozen=True)
class Overrides:
    """What the user said on the command line; it beats what a file name says."""

    symbol: str | None = None
    market: Market | None = None
    timeframe: str | None = None


@dataclass(frozen=True)
class PlannedFile:
    path: Path
    series: Series
    quality: QualityReport
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ImportPlan:
    files: list[PlannedFile]
    skipped: list[tuple[Path, str]]


@dataclass(frozen=True)
class ImportedFile:
    planned: PlannedFile
    merge: MergeResult


def discover(paths: Sequence[Path]) -> list[tuple[Path, bool]]:
    """Files to import, each flagged as named explicitly (True) or found in a folder (False)."""
    found: list[tuple[Path, bool]] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                (p, False) for p in sorted(path.rglob("*")) if p.is_file() and data_suffix(p)
            )
        elif path.is_file():
            found.append((path, True))
        else:
            raise DataFileError(path, "no such file or directory")
    return found


def plan_import(paths: Sequence[Path], overrides: Overrides = Overrides()) -> ImportPlan:
    """Read and check every file; raises DataFileError on the first file that cannot be imported.

    Files found inside folders that are not candle data (trades, unnamed files) are skipped with
    a reason; the same files named explicitly are errors.
    """
    files: list[PlannedFile] = []
    skipped: list[tuple[Path, str]] = []
    for path, explicit in discover(paths):
        hints = _apply_overrides(hints_from_path(path), overrides)
        reason = _unimportable_reason(hints)
        if reason is not None:
            if explicit:
                raise DataFileError(path, reason)
            skipped.append((path, reason))
            continue
        files.append(plan_file(path, hints))
    if not files and not skipped:
        raise DataFileError(", ".join(map(str, paths)), "no market-data files found")
    return ImportPlan(files, skipped)


def apply_import(store: ParquetStore, plan: ImportPlan) -> list[ImportedFile]:
    """Merge every planned series into the store, all or nothing."""
    with store.transaction() as tx:
        return [ImportedFile(item, tx.stage(item.series)) for item in plan.files]


def _apply_overrides(hints: FileHints, overrides: Overrides) -> FileHints:
    return replace(
        hints,
        symbol=overrides.symbol or hints.symbol,
        market=overrides.market or hints.market,
        timeframe=overrides.timeframe or hints.timeframe,
    )


def _unimportable_reason(hints: FileHints) -> str | None:
    if hints.trades:
        return TRADES_REASON
    if hints.symbol is None:
        return "the file name does not say the symbol; import it on its own with --symbol"
    return None


def plan_file(path: Path, hints: FileHints) -> PlannedFile:
    """Read one file and turn it into a checked series (or raise DataFileError)."""
    if hints.symbol is None:
        raise DataFileError(path, "not a market-data file this importer knows")
    rows, kind = _read_rows(path, hints)
    times = rows.times_ms
    market = hints.market or _market_from_header(rows)
    warnings: list[str] = []
    order, dropped = _sorted_unique(path, times, rows)
    if dropped:
        warnings.append(f"dropped {dropped} repeated rows (same time, same values)")
    if len(order) and bool(np.any(np.diff(times) < 0)):
        warnings.append("rows were out of time order; sorted")
    times = np.ascontiguousarray(times[order])
    interval_ms = _interval(path, times, hints, kind, warnings)
    key = SeriesKey(hints.symbol, market, timeframe_name(interval_ms), kind)
    cols = [
        np.ascontiguousarray(c[order])
        for c in (rows.open, rows.high, rows.low, rows.close, rows.volume)
    ]
    series: Series
    if kind is Kind.FUNDING:
        series = FundingRates(key, times, cols[0])
    else:
        o, h, low, c, v = cols
        series = Candles(key, times, o, h, low, c, v)
    quality = check_series(series)
    warnings.extend(_quality_warnings(quality))
    return PlannedFile(path, series, quality, warnings)


def _read_rows(path: Path, hints: FileHints) -> tuple[RawRows, Kind]:
    """A file's rows with the kind's own conventions applied, in file order."""
    if not hints.fmt:
        raise DataFileError(path, "not a market-data file this importer knows")
    rows = READERS[hints.fmt](path)
    if len(rows) == 0:
        raise DataFileError(path, "file holds no rows")
    kind = hints.kind or Kind.CANDLES
    if kind is Kind.FUNDING:
        rows = replace(rows, times_ms=round_to_minute(rows.times_ms))
    elif kind is Kind.MARK:  # mark prices have no volume; freqtrade leaves NaN, Binance says 0
        rows = replace(rows, volume=np.nan_to_num(rows.volume, nan=0.0))
    return rows, kind


def _market_from_header(rows: RawRows) -> Market:
    # Binance's archive: futures CSVs carry a header row, spot CSVs do not.
    return Market.FUTURES if rows.header else Market.SPOT


def _sorted_unique(path: Path, times: np.ndarray, rows: RawRows) -> tuple[np.ndarray, int]:
    order = np.argsort(times, kind="stable")
    sorted_times = times[order]
    repeat = np.flatnonzero(np.diff(sorted_times) == 0) + 1
    if len(repeat) == 0:
        return order, 0
    values = np.stack([rows.open, rows.high, rows.low, rows.close, rows.volume])[:, order]
    same = np.all(
        (values[:, repeat] == values[:, repeat - 1])
        | (np.isnan(values[:, repeat]) & np.isnan(values[:, repeat - 1])),
        axis=0,
    )
    if not same.all():
        first = int(sorted_times[repeat[~same][0]])
        raise DataFileError(
            path,
            f"{int((~same).sum())} times appear twice with different values "
            f"(first at {format_utc_ms(first)})",
        )
    keep = np.ones(len(order), dtype=bool)
    keep[repeat] = False
    return order[keep], len(repeat)


def _interval(
    path: Path, times: np.ndarray, hints: FileHints, kind: Kind, warnings: list[str]
) -> int:
    named_ms = timeframe_ms(hints.timeframe) if hints.timeframe else None
    reading = read_interval(times)
    if reading is None:
        if named_ms is None:
            raise DataFileError(path, "one row and no timeframe in the name: pass --timeframe")
        return named_ms
    interval = reading.interval_ms
    label = timeframe_name(interval)
    if kind is not Kind.FUNDING:  # Binance does change funding intervals: not an error there
        if reading.mixed_with_ms is not None:
            raise DataFileError(
                path,
                f"mixed timeframes: mostly {label} steps, but also a long run of "
                f"{timeframe_name(reading.mixed_with_ms)} steps",
            )
        if reading.off_grid:
            raise DataFileError(
                path,
                f"mixed timeframes: {reading.off_grid} steps are not whole multiples of {label}",
            )
        if interval <= DAY_MS or interval == WEEK_MS:
            misaligned = np.count_nonzero((times - bucket_offset_ms(interval)) % interval)
            if misaligned:
                raise DataFileError(
                    path, f"{misaligned} open times are not on {label} boundaries (UTC)"
                )
    if named_ms is not None and named_ms != interval:
        warnings.append(
            f"name says {hints.timeframe} but the data holds {label} "
            f"{'funding intervals' if kind is Kind.FUNDING else 'candles'}; imported as {label}"
        )
    return interval


def _quality_warnings(quality: QualityReport) -> Iterable[str]:
    for name, count in quality.problems.items():
        yield f"{count} rows with {name.replace('_', ' ')} (see `slt data check`)"


def check_file(path: Path, overrides: Overrides = Overrides()) -> tuple[str, QualityReport]:
    """Quality of a file's rows as they are, before any sorting or de-duplication."""
    hints = _apply_overrides(hints_from_path(path), overrides)
    if hints.trades:  # a file without a symbol in its name can still be checked
        raise DataFileError(path, TRADES_REASON)
    rows, kind = _read_rows(path, hints)
    times = rows.times_ms
    reading = read_interval(np.unique(times))
    interval = reading.interval_ms if reading else timeframe_ms(hints.timeframe or "1m")
    label = f"{hints.symbol or '?'} {hints.market or '?'} {timeframe_name(interval)} {kind}"
    if kind is Kind.FUNDING:
        return label, check_funding(times, rows.open, interval)
    return label, check_candles(
        times, rows.open, rows.high, rows.low, rows.close, rows.volume, interval
    )
