"""A user's strategy from a Python file, and the check every strategy's output passes before a run.

The file is imported under a fresh module name, so two files (or two loads of one file) never
share module state. It must define a module-level ``strategy`` object or a ``make_strategy()``
function returning one, with a ``name`` (str), ``uses_features`` (bool) and ``signals(candles,
features)``. Every failure is a StrategyError naming the file and the cause.
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import numpy as np

from slt.domain.features.matrix import FeatureMatrix
from slt.domain.series import Candles
from slt.domain.strategies.base import Signals, Strategy, StrategyError


def load_strategy_file(path: Path) -> Strategy:
    """Import ``path`` and return its strategy; the file's code runs once, here."""
    path = Path(path)
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
    return cast(Strategy, candidate)


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
    return problems


def check_strategy(strategy: Strategy, candles: Candles, features: FeatureMatrix | None) -> Signals:
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
