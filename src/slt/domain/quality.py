"""Data-quality findings for a series: gaps, duplicates, order, OHLC consistency, bad values.

Findings are reported, never repaired: a gap stays a gap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from slt.domain.series import F64, I64, Candles, Series
from slt.domain.timeframes import bucket_offset_ms

LONGEST_GAPS_SHOWN = 5


@dataclass(frozen=True)
class Gap:
    """Missing rows between two present ones: ``after_ms`` is the last time before the hole."""

    after_ms: int
    next_ms: int
    missing: int


@dataclass(frozen=True)
class QualityReport:
    rows: int
    first_ms: int | None
    last_ms: int | None
    n_gaps: int
    missing: int
    longest_gaps: list[Gap] = field(default_factory=list)
    duplicates: int = 0
    non_monotonic: int = 0
    off_grid: int = 0
    ohlc_inconsistent: int = 0
    non_positive_prices: int = 0
    negative_volume: int = 0
    nan_values: int = 0

    @property
    def problems(self) -> dict[str, int]:
        """Integrity problems (gaps are not among them: markets do go down)."""
        names = (
            "duplicates",
            "non_monotonic",
            "off_grid",
            "ohlc_inconsistent",
            "non_positive_prices",
            "negative_volume",
            "nan_values",
        )
        return {n: getattr(self, n) for n in names if getattr(self, n)}


def find_gaps(times_ms: I64, interval_ms: int) -> list[Gap]:
    """Every hole in a sorted time column, in time order."""
    steps = np.diff(times_ms)
    where = np.flatnonzero(steps > interval_ms)
    return [
        Gap(
            int(times_ms[i]),
            int(times_ms[i + 1]),
            int(steps[i] // interval_ms - 1) + (1 if steps[i] % interval_ms else 0),
        )
        for i in where
    ]


def _time_findings(times_ms: I64, interval_ms: int) -> dict[str, object]:
    steps = np.diff(times_ms)
    unique = np.unique(times_ms)
    gaps = find_gaps(unique, interval_ms)
    longest = sorted(gaps, key=lambda g: (-g.missing, g.after_ms))[:LONGEST_GAPS_SHOWN]
    offset = bucket_offset_ms(interval_ms)
    return {
        "rows": len(times_ms),
        "first_ms": int(unique[0]) if len(times_ms) else None,
        "last_ms": int(unique[-1]) if len(times_ms) else None,
        "n_gaps": len(gaps),
        "missing": sum(g.missing for g in gaps),
        "longest_gaps": longest,
        "duplicates": len(times_ms) - len(unique),
        "non_monotonic": int(np.count_nonzero(steps < 0)),
        "off_grid": int(np.count_nonzero((times_ms - offset) % interval_ms)),
    }


def check_candles(
    times_ms: I64, open_: F64, high: F64, low: F64, close: F64, volume: F64, interval_ms: int
) -> QualityReport:
    """Quality of OHLCV rows as stored or as read from a file (which may be unsorted)."""
    prices = np.stack([open_, high, low, close])
    nan_rows = np.isnan(prices).any(axis=0) | np.isnan(volume)
    with np.errstate(invalid="ignore"):
        inconsistent = (
            (high < np.maximum(open_, close)) | (low > np.minimum(open_, close)) | (high < low)
        )
        non_positive = (prices <= 0).any(axis=0)
        negative_volume = volume < 0
    return QualityReport(
        **_time_findings(times_ms, interval_ms),  # type: ignore[arg-type]
        ohlc_inconsistent=int(np.count_nonzero(inconsistent & ~nan_rows)),
        non_positive_prices=int(np.count_nonzero(non_positive)),
        negative_volume=int(np.count_nonzero(negative_volume)),
        nan_values=int(np.count_nonzero(nan_rows)),
    )


def check_funding(times_ms: I64, rate: F64, interval_ms: int) -> QualityReport:
    """Quality of funding rates: time findings plus NaN or infinite rates."""
    return QualityReport(
        **_time_findings(times_ms, interval_ms),  # type: ignore[arg-type]
        nan_values=int(np.count_nonzero(~np.isfinite(rate))),
    )


def check_series(series: Series) -> QualityReport:
    """Quality of a stored or planned series, whichever kind it is."""
    interval_ms = series.key.timeframe_ms
    if isinstance(series, Candles):
        return check_candles(
            series.open_time_ms,
            series.open,
            series.high,
            series.low,
            series.close,
            series.volume,
            interval_ms,
        )
    return check_funding(series.time_ms, series.rate, interval_ms)
