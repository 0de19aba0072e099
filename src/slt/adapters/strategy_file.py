"""A user's strategy from a Python file, and the check every strategy's output passes before a run.

The file is imported under a fresh module name, so two files (or two loads of one file) never
share module state. It must define a module-level ``strategy`` object or a ``make_strategy()``
function returning one, with a ``name`` (str), ``uses_features`` (bool) and ``signals(candles,
features)``. Every failure is a StrategyError naming the file and the cause.

The loaded strategy also streams (``stream(schema)``, for paper and live trading): through the
file's own ``stream`` if it has one, else by re-running ``signals`` on the history fed so far
and taking the last row, which for a causal strategy is its batch row exactly.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import numpy as np

from slt.domain.features.matrix import FeatureMatrix
from slt.domain.features.schema import FeatureSchema
from slt.domain.series import F64, Candles, Market, SeriesKey
from slt.domain.strategies.base import (
    BatchStrategy,
    Signals,
    Strategy,
    StrategyError,
    StrategyStream,
)
from slt.domain.strategies.stepping import NO_CANDLE_YET_MS, out_of_order

# Capacity of a replay stream's history arrays before their first doubling.
_FIRST_CAPACITY = 1024


def load_strategy_file(path: Path, *, stream_history_limit: int | None = None) -> Strategy:
    """Import ``path`` and return its strategy; the file's code runs once, here.

    The strategy is the file's own object, given a ``stream`` attribute (see ``FileStreams``).
    ``stream_history_limit`` caps the candles a replay stream re-runs ``signals`` on: None (the
    default) is exact; a limit is faster but exact only for strategies whose memory is shorter.
    """
    path = Path(path)
    if stream_history_limit is not None and stream_history_limit < 1:
        raise StrategyError(
            f"strategy file {path}: stream_history_limit must be at least 1 candle "
            f"(got {stream_history_limit})"
        )
    if not path.is_file():
        raise StrategyError(f"strategy file {path}: not found")
    module = _import(path)
    try:
        if hasattr(module, "strategy"):
            candidate = module.strategy
        elif callable(getattr(module, "make_strategy", None)):
            candidate = module.make_strategy()
        else:
            raise StrategyError(
                f"strategy file {path}: defines neither a module-level `strategy` object "
                "nor a `make_strategy()` function"
            )
    except StrategyError:
        raise
    except Exception as exc:
        raise StrategyError(
            f"strategy file {path}: make_strategy() raised {type(exc).__name__}: {exc}"
        ) from exc
    problems = _protocol_problems(candidate)
    if problems:
        raise StrategyError(
            f"strategy file {path}: its strategy ({type(candidate).__name__}) "
            + "; ".join(problems)
        )
    return _with_stream(candidate, path, stream_history_limit)


def _import(path: Path) -> ModuleType:
    name = f"slt_user_strategy_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise StrategyError(f"strategy file {path}: not a Python source file (.py)")
    module = importlib.util.module_from_spec(spec)
    # Registered before running: dataclasses and pickling look the module up by name.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[name]
        raise StrategyError(
            f"strategy file {path}: syntax error at line {exc.lineno}: {exc.msg}"
        ) from None
    except (Exception, SystemExit) as exc:
        del sys.modules[name]
        raise StrategyError(
            f"strategy file {path}: importing it raised {type(exc).__name__}: {exc}"
        ) from exc
    return module


def _protocol_problems(candidate: object) -> list[str]:
    problems = []
    try:
        name = getattr(candidate, "name", None)
        uses_features = getattr(candidate, "uses_features", None)
    except Exception as exc:
        return [f"raised {type(exc).__name__} when its attributes were read: {exc}"]
    if not isinstance(name, str) or not name:
        problems.append(f"needs a non-empty str `name` (got {name!r})")
    if not isinstance(uses_features, bool):
        problems.append(f"needs a bool `uses_features` (got {uses_features!r})")
    if not callable(getattr(candidate, "signals", None)):
        problems.append("needs a method `signals(candles, features)`")
    try:
        stream = getattr(candidate, "stream", None)
    except Exception as exc:
        return [f"raised {type(exc).__name__} when its `stream` was read: {exc}"]
    if stream is not None and not callable(stream):
        problems.append(f"has a `stream` that is not a method (got {stream!r})")
    return problems


def check_strategy(
    strategy: BatchStrategy, candles: Candles, features: FeatureMatrix | None
) -> Signals:
    """Run ``strategy.signals`` and validate it: one int8 direction in {-1, 0, 1} and one finite
    score in [0, 1] per candle. Any exception from the strategy becomes a StrategyError; scores
    of candles without a signal are set to 0."""
    name = getattr(strategy, "name", type(strategy).__name__)
    if strategy.uses_features and features is None:
        raise StrategyError(f"strategy {name} uses features but was given none")
    if features is not None and len(features) != len(candles):
        raise StrategyError(
            f"strategy {name}: {len(features)} feature rows for {len(candles)} candles"
        )
    try:
        out: Any = strategy.signals(candles, features)
    except StrategyError:
        raise
    except Exception as exc:
        raise StrategyError(f"strategy {name} raised {type(exc).__name__}: {exc}") from exc
    if not (hasattr(out, "direction") and hasattr(out, "score")):
        raise StrategyError(
            f"strategy {name} returned {type(out).__name__}, not Signals(direction, score)"
        )
    direction = _column(name, "direction", out.direction, len(candles))
    score = _column(name, "score", out.score, len(candles))
    if not bool(np.isin(direction, (-1, 0, 1)).all()):
        bad = np.unique(direction[~np.isin(direction, (-1, 0, 1))])[:5]
        raise StrategyError(
            f"strategy {name}: direction must hold only +1, -1 and 0 (found {bad.tolist()})"
        )
    if not bool(np.isfinite(score).all()):
        raise StrategyError(f"strategy {name}: score must be finite (found NaN or infinity)")
    if len(score) and not (score.min() >= 0.0 and score.max() <= 1.0):
        raise StrategyError(
            f"strategy {name}: score must lie in [0, 1] (found {score.min():g} .. {score.max():g})"
        )
    direction_i8 = np.ascontiguousarray(direction, dtype=np.int8)
    score_f64 = np.where(direction_i8 != 0, score, 0.0).astype(np.float64)
    return Signals(direction_i8, score_f64)


def _column(name: str, field: str, values: object, length: int) -> np.ndarray[Any, Any]:
    try:
        array = np.asarray(values)
    except Exception as exc:
        raise StrategyError(f"strategy {name}: {field} is not an array ({exc})") from exc
    if array.ndim != 1 or len(array) != length:
        raise StrategyError(
            f"strategy {name}: {field} must be 1-D with one value per candle ({length}), "
            f"got shape {array.shape}"
        )
    if array.dtype.kind not in "iuf":
        raise StrategyError(
            f"strategy {name}: {field} must be numeric (integers or floats), got {array.dtype}"
        )
    return array


def _with_stream(candidate: Any, path: Path, history_limit: int | None) -> Strategy:
    """The file's object with ``stream`` set to a FileStreams; a wrapper if it takes no new
    attribute (``__slots__``). Each load imports the file afresh, so the object is this load's."""
    streams = FileStreams(path, candidate, getattr(candidate, "stream", None), history_limit)
    try:
        # object.__setattr__ also reaches frozen dataclasses, the documented way to write one.
        object.__setattr__(candidate, "stream", streams)
    except (AttributeError, TypeError):
        return _StreamingFileStrategy(candidate, streams)
    return cast(Strategy, candidate)


class _StreamingFileStrategy:
    """A file's strategy that cannot take a ``stream`` attribute, with one beside it."""

    def __init__(self, strategy: BatchStrategy, streams: FileStreams) -> None:
        self.strategy = strategy
        self.stream = streams

    @property
    def name(self) -> str:
        return self.strategy.name

    @property
    def uses_features(self) -> bool:
        return self.strategy.uses_features

    def signals(self, candles: Candles, features: FeatureMatrix | None) -> Signals:
        return self.strategy.signals(candles, features)


class FileStreams:
    """The ``stream(schema)`` of a loaded file's strategy: the file's own ``stream`` if it has
    one, else a ReplayStream of its ``signals``. Every error names the file."""

    def __init__(
        self,
        path: Path,
        strategy: BatchStrategy,
        own_stream: Callable[[FeatureSchema | None], Any] | None,
        history_limit: int | None,
    ) -> None:
        self.path = path
        self.strategy = strategy
        self.own_stream = own_stream
        self.history_limit = history_limit

    def __call__(
        self, schema: FeatureSchema | None, *, key: SeriesKey | None = None
    ) -> StrategyStream:
        """``key`` is the ``candles.key`` a replayed ``signals`` sees (by default symbol
        "STREAM", futures, the schema's timeframe); the file's own stream never sees it."""
        name = self.strategy.name
        if self.strategy.uses_features and schema is None:
            raise StrategyError(
                f"strategy file {self.path}: strategy {name} uses features, so its stream needs "
                "the FeatureSchema of the rows it will be fed (got none)"
            )
        if self.own_stream is None:
            key = key or SeriesKey(
                "STREAM", Market.FUTURES, schema.base_timeframe if schema else ""
            )
            return ReplayStream(
                self.strategy,
                schema if self.strategy.uses_features else None,
                source=f"strategy file {self.path}",
                key=key,
                history_limit=self.history_limit,
            )
        try:
            inner = self.own_stream(schema)
        except Exception as exc:
            raise StrategyError(
                f"strategy file {self.path}: stream() of strategy {name} raised "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if not callable(getattr(inner, "update", None)):
            raise StrategyError(
                f"strategy file {self.path}: stream() of strategy {name} returned "
                f"{type(inner).__name__}, which has no update(...)"
            )
        return CheckedStream(inner, f"strategy file {self.path}: strategy {name}")


class CheckedStream:
    """A user's own stream, held to the contract ``check_strategy`` holds batch output to: one
    direction in {-1, 0, 1} and a finite score in [0, 1] (0 without a signal) per candle."""

    def __init__(self, inner: Any, source: str) -> None:
        self._inner = inner
        self._source = source
        self._last_time_ms = NO_CANDLE_YET_MS

    def update(
        self,
        open_time_ms: int,
        open: float,
        high: float,
        low: float,
        close: float,
        volume: float,
        features_row: F64 | None,
        reason: int,
    ) -> tuple[int, float]:
        if open_time_ms <= self._last_time_ms:
            raise out_of_order(open_time_ms, self._last_time_ms)
        self._last_time_ms = open_time_ms
        try:
            out = self._inner.update(
                open_time_ms, open, high, low, close, volume, features_row, reason
            )
        except Exception as exc:
            raise StrategyError(
                f"{self._source} raised {type(exc).__name__}: {exc} "
                f"(while streaming the candle at {open_time_ms})"
            ) from exc
        try:
            direction, score = out
            direction_int, score_float = int(direction), float(score)
        except (TypeError, ValueError):
            raise StrategyError(
                f"{self._source}: stream update returned {out!r}, not (direction, score)"
            ) from None
        if direction_int != direction or direction_int not in (-1, 0, 1):
            raise StrategyError(
                f"{self._source}: stream direction must be +1, -1 or 0 (got {direction!r})"
            )
        if not (math.isfinite(score_float) and 0.0 <= score_float <= 1.0):
            raise StrategyError(
                f"{self._source}: stream score must be finite and in [0, 1] (got {score!r})"
            )
        return direction_int, score_float if direction_int else 0.0


class ReplayStream:
    """A batch-only strategy streamed: keeps the candles (and feature rows with their reasons)
    fed so far, runs ``signals`` on them through ``check_strategy`` and returns the last row.

    Exact for a causal strategy (row i computed from rows 0..i alone), at O(history) per
    candle. ``history_limit`` keeps only the last that many candles: faster, and still exact
    when the strategy's memory (its longest lookback, warm-up included) fits in the limit.
    """

    def __init__(
        self,
        strategy: BatchStrategy,
        schema: FeatureSchema | None,
        *,
        source: str,
        key: SeriesKey,
        history_limit: int | None = None,
    ) -> None:
        self._strategy = strategy
        self._schema = schema
        self._source = source
        self._key = key
        self._width = 0 if schema is None else len(schema.columns)
        self._history = _History(self._width, history_limit)
        self._last_time_ms = NO_CANDLE_YET_MS

    def update(
        self,
        open_time_ms: int,
        open: float,
        high: float,
        low: float,
        close: float,
        volume: float,
        features_row: F64 | None,
        reason: int,
    ) -> tuple[int, float]:
        if open_time_ms <= self._last_time_ms:
            raise out_of_order(open_time_ms, self._last_time_ms)
        if self._schema is not None and (
            features_row is None or np.shape(features_row) != (self._width,)
        ):
            got = "none" if features_row is None else f"shape {np.shape(features_row)}"
            raise StrategyError(
                f"{self._source}: its stream needs feature rows of {self._width} columns "
                f"(got {got})"
            )
        self._last_time_ms = open_time_ms
        self._history.append(
            open_time_ms, (open, high, low, close, volume), features_row, int(reason)
        )
        candles, features = self._history.view(self._key, self._schema)
        try:
            signals = check_strategy(self._strategy, candles, features)
        except StrategyError as exc:
            raise StrategyError(
                f"{self._source}: {exc} (while streaming the candle at {open_time_ms})"
            ) from exc
        return int(signals.direction[-1]), float(signals.score[-1])


class _History:
    """The candles, feature rows and reasons a replay stream was fed, in arrays that double.

    Rows handed to the strategy are never overwritten: growing or trimming copies into fresh
    arrays, so a strategy that kept a view of its input never sees it change.
    """

    def __init__(self, width: int, limit: int | None) -> None:
        self._width = width
        self._limit = limit
        self._start = 0
        self._end = 0
        self._allocate(_FIRST_CAPACITY)

    def _allocate(self, capacity: int) -> None:
        self._times = np.empty(capacity, dtype=np.int64)
        self._prices = np.empty((5, capacity), dtype=np.float64)  # open, high, low, close, volume
        self._rows = np.empty((capacity, self._width), dtype=np.float64)
        self._reasons = np.empty(capacity, dtype=np.int8)

    def _make_room(self) -> None:
        keep = self._end - self._start
        if self._limit is not None:
            keep = min(keep, self._limit - 1)
        capacity = max(_FIRST_CAPACITY, 2 * (keep + 1))
        lo, hi = self._end - keep, self._end
        old = self._times, self._prices, self._rows, self._reasons
        self._allocate(capacity)
        self._times[:keep] = old[0][lo:hi]
        self._prices[:, :keep] = old[1][:, lo:hi]
        self._rows[:keep] = old[2][lo:hi]
        self._reasons[:keep] = old[3][lo:hi]
        self._start, self._end = 0, keep

    def append(
        self,
        open_time_ms: int,
        prices: tuple[float, float, float, float, float],
        row: F64 | None,
        reason: int,
    ) -> None:
        if self._end == len(self._times):
            self._make_room()
        i = self._end
        self._times[i] = open_time_ms
        self._prices[:, i] = prices
        if row is not None and self._width:
            self._rows[i] = row
        self._reasons[i] = reason
        self._end = i + 1
        if self._limit is not None and self._end - self._start > self._limit:
            self._start += 1

    def view(
        self, key: SeriesKey, schema: FeatureSchema | None
    ) -> tuple[Candles, FeatureMatrix | None]:
        span = slice(self._start, self._end)
        times = self._times[span]
        p = self._prices
        candles = Candles(key, times, p[0, span], p[1, span], p[2, span], p[3, span], p[4, span])
        if schema is None:
            return candles, None
        return candles, FeatureMatrix(schema, times, self._reasons[span], self._rows[span])
