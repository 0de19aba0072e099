"""What the engine and the learner store, checked at the storage boundary.

A record that would store a NaN price, an infinite return, a negative quantity, an unknown
symbol or an over-long string is refused with an error naming the field, never half-written.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import numpy.typing as npt

from slt.domain.symbols import SymbolError, exchange_symbol
from slt.domain.trading.enums import EXIT_REASONS
from slt.errors import SltError

F64 = npt.NDArray[np.float64]
MAX_SYMBOL = 32
MAX_NAME = 64


class RecordError(SltError):
    """A record the storage layer refuses to write."""


@dataclass(frozen=True)
class VirtualTrade:
    """A closed virtual position: the learner's example. Outcomes are labels, never inputs."""

    symbol: str
    direction: int
    entry_time_ms: int
    entry_price: float
    stop_loss_pct: float
    take_profit_pct: float
    exit_time_ms: int
    exit_price: float
    exit_reason: str
    return_pct: float
    reward: float
    won: bool
    features: F64
    feature_schema_hash: str
    model_version: str


def named(kind: str, key: str, check: Callable[[], None]) -> None:
    """Run ``check`` and prefix its error with the record it was about."""
    try:
        check()
    except RecordError as exc:
        raise RecordError(f"{kind} {key}: {exc}") from None


def check_finite(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise RecordError(f"{name} must be a finite number, got {value!r}")


def check_positive(name: str, value: float) -> None:
    check_finite(name, value)
    if value <= 0:
        raise RecordError(f"{name} must be above 0, got {value!r}")


def check_not_negative(name: str, value: float) -> None:
    check_finite(name, value)
    if value < 0:
        raise RecordError(f"{name} must not be negative, got {value!r}")


def check_text(name: str, value: str, limit: int) -> None:
    if not isinstance(value, str) or not value:
        raise RecordError(f"{name} must be a non-empty string")
    if len(value) > limit:
        raise RecordError(f"{name} is {len(value)} characters long, the limit is {limit}")


def check_millis(name: str, value: int) -> None:
    if not isinstance(value, Integral) or isinstance(value, bool) or value < 0:
        raise RecordError(f"{name} must be a non-negative integer of milliseconds, got {value!r}")


def check_choice(name: str, value: object, allowed: Collection[object]) -> None:
    if value not in allowed:
        raise RecordError(f"{name} must be one of {sorted(map(str, allowed))}, got {value!r}")


def check_feature_row(features: object, n_features: int | None = None) -> None:
    row = np.asarray(features)
    if not isinstance(features, np.ndarray) or row.dtype != np.float64 or row.ndim != 1:
        raise RecordError("features must be a 1-D float64 array (one feature matrix row)")
    if n_features is not None and len(row) != n_features:
        raise RecordError(f"features has {len(row)} values, the batch has {n_features}")
    if np.isinf(row).any():
        raise RecordError("features hold an infinite value")


def check_symbol(symbol: str) -> None:
    """Only canonical exchange symbols (``BTCUSDT``) are stored."""
    check_text("symbol", symbol, MAX_SYMBOL)
    try:
        canonical = exchange_symbol(symbol)
    except SymbolError:
        raise RecordError(
            f"unknown symbol {symbol!r}: expected an exchange symbol like BTCUSDT"
        ) from None
    if canonical != symbol:
        raise RecordError(f"unknown symbol {symbol!r}: store it as {canonical!r}")


def check_virtual_trades(trades: Sequence[VirtualTrade]) -> F64:
    """Check a batch at array speed; returns its feature matrix. The error names the record."""
    if not trades:
        return np.empty((0, 0))
    widths = {len(t.features) for t in trades}
    if len(widths) != 1:
        raise RecordError(f"features of one batch must have one width, got {sorted(widths)}")
    numbers = np.array(
        [
            (
                t.entry_price,
                t.exit_price,
                t.stop_loss_pct,
                t.take_profit_pct,
                t.return_pct,
                t.reward,
            )
            for t in trades
        ],
        dtype=np.float64,
    )
    times = np.array([(t.entry_time_ms, t.exit_time_ms) for t in trades], dtype=np.float64)
    try:
        features = np.array([t.features for t in trades], dtype=np.float64)
    except (TypeError, ValueError):
        raise RecordError("features must be 1-D float64 arrays (feature matrix rows)") from None
    bad = (
        ~np.isfinite(numbers).all(axis=1)
        | (numbers[:, :3] <= 0).any(axis=1)
        | (numbers[:, 3] < 0)
        | ~np.isfinite(times).all(axis=1)
        | (times[:, 1] < times[:, 0])
        | np.isinf(features).any(axis=1)
        | ~np.isin([t.direction for t in trades], (1, -1))
    )
    seen: set[tuple[str, str, str, str]] = set()
    for k, t in enumerate(trades):
        texts = (t.symbol, t.exit_reason, t.feature_schema_hash, t.model_version)
        if bad[k] or texts not in seen or type(t.entry_time_ms) is not int:
            try:
                check_virtual_trade(t, features.shape[1])
            except RecordError as exc:
                raise RecordError(f"virtual trade {k}: {exc}") from None
            seen.add(texts)
    return features


def check_virtual_trade(t: VirtualTrade, n_features: int | None = None) -> None:
    """Raise RecordError naming the first bad field."""
    check_symbol(t.symbol)
    if t.direction not in (1, -1):
        raise RecordError(f"direction must be 1 or -1, got {t.direction!r}")
    check_millis("entry_time_ms", t.entry_time_ms)
    check_millis("exit_time_ms", t.exit_time_ms)
    if t.exit_time_ms < t.entry_time_ms:
        raise RecordError("exit_time_ms lies before entry_time_ms")
    for name in ("entry_price", "exit_price", "stop_loss_pct"):
        check_positive(name, getattr(t, name))
    for name in ("take_profit_pct", "return_pct", "reward"):
        check_finite(name, getattr(t, name))
    if t.take_profit_pct < 0:
        raise RecordError("take_profit_pct must not be negative")
    if t.exit_reason not in EXIT_REASONS.values():
        raise RecordError(f"unknown exit_reason {t.exit_reason!r}")
    check_text("feature_schema_hash", t.feature_schema_hash, MAX_NAME)
    check_text("model_version", t.model_version, MAX_NAME)
    check_feature_row(t.features, n_features)
