"""Timeframe names as Binance and freqtrade spell them, and their lengths in milliseconds."""

from __future__ import annotations

import re

from slt.errors import SltError

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS

# Binance's kline intervals (the month is not a fixed length and is not supported).
TIMEFRAME_MS: dict[str, int] = {
    "1s": 1_000,
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": HOUR_MS,
    "2h": 2 * HOUR_MS,
    "4h": 4 * HOUR_MS,
    "6h": 6 * HOUR_MS,
    "8h": 8 * HOUR_MS,
    "12h": 12 * HOUR_MS,
    "1d": DAY_MS,
    "3d": 3 * DAY_MS,
    "1w": WEEK_MS,
}

_UNIT_MS = {"s": 1_000, "m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS, "w": WEEK_MS}
_PATTERN = re.compile(r"^(\d+)([smhdw])$")

# 1970-01-01 was a Thursday; Binance weeks open on Monday 00:00 UTC.
WEEK_OFFSET_MS = 4 * DAY_MS


class TimeframeError(SltError):
    """A timeframe name that is not a whole number of seconds, minutes, hours, days or weeks."""


def timeframe_ms(name: str) -> int:
    """Length of a timeframe such as ``5m``; any ``<n><unit>`` works, not only Binance's list."""
    match = _PATTERN.match(name.strip())
    if match is None or int(match.group(1)) == 0:
        raise TimeframeError(f"unknown timeframe {name!r}: expected e.g. 1m, 5m, 15m, 1h, 4h, 1d")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def timeframe_name(length_ms: int) -> str:
    """Shortest name for a length: 300000 -> '5m', 28800000 -> '8h'."""
    if length_ms <= 0:
        raise TimeframeError(f"timeframe length must be positive, got {length_ms} ms")
    for unit, unit_ms in (("w", WEEK_MS), ("d", DAY_MS), ("h", HOUR_MS), ("m", MINUTE_MS)):
        if length_ms % unit_ms == 0 and (unit != "w" or length_ms == WEEK_MS):
            return f"{length_ms // unit_ms}{unit}"
    if length_ms % 1_000 == 0:
        return f"{length_ms // 1_000}s"
    raise TimeframeError(f"timeframe length {length_ms} ms is not a whole number of seconds")


def bucket_offset_ms(length_ms: int) -> int:
    """Offset of bucket boundaries from the epoch: weekly candles open on Monday, others on 0."""
    return WEEK_OFFSET_MS if length_ms % WEEK_MS == 0 else 0
