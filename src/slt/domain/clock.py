"""Converting between user-facing UTC dates and the int64 milliseconds used everywhere else."""

from __future__ import annotations

from datetime import UTC, datetime

from slt.errors import SltError


def parse_utc_ms(text: str) -> int:
    """``2024-01-01``, ``2024-01-01T12:30`` or ``...12:30:00+00:00`` -> ms since the epoch (UTC).

    A date or time without an offset is read as UTC, never as local time.
    """
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise SltError(
            f"cannot read {text!r} as a date: expected e.g. 2024-01-01 or 2024-01-01T12:00"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def format_utc_ms(ms: int) -> str:
    """``1704067200000`` -> ``2024-01-01 00:00``; seconds shown only when they are not zero."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if moment.second else "%Y-%m-%d %H:%M")
