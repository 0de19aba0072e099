"""Faults on demand (issue 13 item 6): what the local exchange does wrong when a test or a
rehearsal asks, through the control API (``/_sim/``, only with ``--control``) or a TOML file
of scheduled scenarios (``--faults FILE``).

Each fault is a kind and its parameters, checked here so a typo is refused by name before
anything runs. ``FaultState`` is what the REST dispatch and the stream hub consult; applying a
fault only changes that state (or asks the hub or the tapes to act once).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from slt.adapters.exchange.local import codes
from slt.adapters.exchange.local.market import SymbolTape
from slt.domain.clock import parse_utc_ms
from slt.errors import ConfigError, ExchangeRejected

# kind -> {parameter: (type, default or None if required)}
KINDS: dict[str, dict[str, tuple[type, Any]]] = {
    "drop_connections": {"scope": (str, "all")},  # all | market | private
    "silent_streams": {"seconds": (float, None)},  # connections stay open, nothing is sent
    "user_events": {"mode": (str, None), "count": (int, 10), "delay_ms": (int, 2_000)},
    "late_final": {"ms": (int, 2_000), "count": (int, 1_000_000)},
    "rate_limit": {"status": (int, 429), "count": (int, 5)},
    "unknown_outcome": {"status": (int, 503), "count": (int, 1), "delay_ms": (int, 0)},
    "transient_unknown_order": {"seconds": (float, 10.0)},
    "expire_listen_keys": {"e_as_string": (bool, False)},
    "clock_skew": {"ms": (int, None)},
    "restart": {"seconds": (float, 5.0)},
    "price_gap": {"symbol": (str, None), "pct": (float, None)},
}
CHOICES = {
    ("drop_connections", "scope"): ("all", "market", "private"),
    ("user_events", "mode"): ("delay", "duplicate", "reorder"),
    ("rate_limit", "status"): (429, 418),
    ("unknown_outcome", "status"): (503, 502),
}
TIMEOUT_MSG = (
    "Timeout waiting for response from backend server. Send status unknown; execution status "
    "unknown."
)


@dataclass(frozen=True)
class Fault:
    kind: str
    params: dict[str, Any]


def parse_fault(raw: dict[str, Any], where: str) -> Fault:
    """One fault from JSON or TOML; ``where`` names it in errors (e.g. 'fault 3')."""
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    spec = KINDS[kind]
    unknown = set(raw) - set(spec) - {"kind", "at", "after_s"}
    if unknown:
        raise ConfigError(f"{where} ({kind}): unknown parameter(s) {', '.join(sorted(unknown))}")
    params: dict[str, Any] = {}
    for name, (kind_type, default) in spec.items():
        value = raw.get(name, default)
        if value is None:
            raise ConfigError(f"{where} ({kind}): {name} is required")
        if kind_type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind_type) or (isinstance(value, bool) and kind_type is not bool):
            raise ConfigError(f"{where} ({kind}): {name} must be a {kind_type.__name__}")
        allowed = CHOICES.get((kind, name))
        if allowed is not None and value not in allowed:
            raise ConfigError(f"{where} ({kind}): {name} must be one of {allowed}")
        negative = isinstance(value, int | float) and value < 0
        if negative and name not in ("ms", "pct"):
            raise ConfigError(f"{where} ({kind}): {name} must not be negative")
        params[name] = value
    return Fault(kind, params)


@dataclass(frozen=True)
class Scheduled:
    """A fault at a market moment (``at``) or after wall seconds since the start."""

    fault: Fault
    at_history_ms: int | None = None
    after_wall_ms: int | None = None


def load_scenario(path: Path) -> list[Scheduled]:
    """``--faults FILE``: ``[[fault]]`` tables, each with ``kind``, its parameters, and
    ``at = "2024-03-04 10:00"`` (market time, UTC) or ``after_s = 30`` (wall seconds)."""
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"--faults: cannot read {path}: {exc}") from exc
    entries = doc.get("fault", [])
    if not isinstance(entries, list) or not entries or set(doc) - {"fault"}:
        raise ConfigError(f"--faults: {path} must hold [[fault]] tables and nothing else")
    scheduled = []
    for i, raw in enumerate(entries, start=1):
        where = f"--faults {path.name}, fault {i}"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: must be a table")
        fault = parse_fault(raw, where)
        at, after = raw.get("at"), raw.get("after_s")
        if (at is None) == (after is None):
            raise ConfigError(f"{where}: give exactly one of at (market time) or after_s")
        if at is not None:
            scheduled.append(Scheduled(fault, at_history_ms=parse_utc_ms(str(at))))
        else:
            if not isinstance(after, int | float) or isinstance(after, bool) or after < 0:
                raise ConfigError(f"{where}: after_s must be a number of seconds >= 0")
            scheduled.append(Scheduled(fault, after_wall_ms=int(after * 1000)))
    return scheduled


@dataclass
class _Countdown:
    status: int = 0
    left: int = 0
    delay_ms: int = 0


@dataclass
class FaultState:
    """What is wrong right now; the REST dispatch and the stream hub read it."""

    rate_limit: _Countdown = field(default_factory=_Countdown)
    unknown_outcome: _Countdown = field(default_factory=_Countdown)
    hide_new_orders_ms: int = 0  # orders placed now are unknown to queries for this long
    hidden_until: dict[int, int] = field(default_factory=dict)  # order/algo id -> wall ms
    skew_ms: int = 0
    silent_until_wall_ms: int = 0
    late_final_ms: int = 0
    late_final_left: int = 0
    user_mode: str = ""
    user_left: int = 0
    user_delay_ms: int = 0
    expired_e_as_string: bool = False  # listenKeyExpired with ``E`` as a string (seen live)
    applied: list[dict[str, Any]] = field(default_factory=list)

    # -- REST ---------------------------------------------------------------------------

    def forced_limit(self, weight_limit: int, now_ms: int) -> ExchangeRejected | None:
        c = self.rate_limit
        if c.left <= 0:
            return None
        c.left -= 1
        if c.status == 418:
            return codes.banned(now_ms + 120_000, 120)
        return codes.too_many_requests(weight_limit, 1)

    def take_unknown_outcome(self) -> _Countdown | None:
        c = self.unknown_outcome
        if c.left <= 0:
            return None
        c.left -= 1
        return c

    def remember_new(self, ids: list[int], wall_ms: int) -> None:
        if self.hide_new_orders_ms > 0:
            for i in ids:
                self.hidden_until[i] = wall_ms + self.hide_new_orders_ms

    def hidden(self, order_id: int, wall_ms: int) -> bool:
        until = self.hidden_until.get(order_id)
        if until is None:
            return False
        if wall_ms >= until:
            del self.hidden_until[order_id]
            return False
        return True


def price_gap(tape: SymbolTape, after_history_ms: int, pct: float) -> int:
    """The first candle opening after ``after_history_ms`` opens ``pct`` % away from the
    previous close (its high or low stretched to hold the new open); returns its open time."""
    c = tape.candles
    k = int(np.searchsorted(c.open_time_ms, after_history_ms, "right"))
    if k <= 0 or k >= len(c.open_time_ms):
        raise ConfigError(f"price_gap: {tape.symbol} has no candle after that moment to gap")
    for name in ("open", "high", "low"):
        array = getattr(c, name)
        if not array.flags.writeable:
            object.__setattr__(c, name, array.copy())
    opened = float(c.close[k - 1]) * (1 + pct / 100)
    tick = tape.rules.tick_size
    opened = round(round(opened / tick) * tick, tape.price_decimals)
    c.open[k] = opened
    c.high[k] = max(float(c.high[k]), opened)
    c.low[k] = min(float(c.low[k]), opened)
    tape.forget_resampled()
    return int(c.open_time_ms[k])
