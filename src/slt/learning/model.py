"""The confidence model: XGBoost P(win) calibrated on later data, and expected return.

Training is time-ordered. The newest ``calibration_fraction`` of the examples (by decision
time) calibrates the classifier's probabilities (isotonic); the trees learn only from examples
whose label was known an embargo before the first calibration decision, so no label that
overlaps the calibration slice leaks into the trees (purging, after López de Prado).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
import xgboost as xgb
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from slt.errors import SltError
from slt.learning.dataset import Examples, InputSchema

F64 = npt.NDArray[np.float64]
FORMAT = "slt-confidence-model/1"
ISOTONIC_MIN = 1_000  # calibration examples below which isotonic steps overfit
PLATT_GRID = 1_001


class ModelError(SltError):
    """A model that cannot be trained, loaded or used with the running feature engine."""


@dataclass(frozen=True)
class ModelParams:
    """XGBoost settings of both models, and how the training span is split."""

    n_estimators: int = 300
    max_depth: int = 4
    learning_rate: float = 0.05
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    min_child_weight: float = 5.0
    reg_lambda: float = 1.0
    calibration_fraction: float = 0.2
    min_examples: int = 50
    seed: int = 0
    threads: int = 2

    def booster_params(self, objective: str) -> dict[str, object]:
        return {
            "objective": objective,
            "tree_method": "hist",
            "max_depth": self.max_depth,
            "eta": self.learning_rate,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight,
            "lambda": self.reg_lambda,
            "seed": self.seed,
            "nthread": self.threads,
            "verbosity": 0,
        }


@dataclass(frozen=True)
class TrainSummary:
    n_fit: int
    n_calibration: int
    n_purged: int
    fit_start_ms: int
    calibration_start_ms: int
    train_end_ms: int


class ConfidenceModel:
    """Calibrated P(win) and expected percentage return for signal inputs."""

    def __init__(
        self,
        schema: InputSchema,
        classifier: xgb.Booster,
        regressor: xgb.Booster,
        calibration_x: F64,
        calibration_y: F64,
        params: ModelParams,
        summary: TrainSummary,
    ) -> None:
        self.schema = schema
        # Scoring runs on one thread: a signal is one row, and OpenMP workers left spinning
        # after each call took the core a retrain worker needed (p99 latency 50x while
        # retraining, benchmarks/bench_retrain_latency.py). Only big batches (research) use
        # ``params.threads``, as training does.
        for booster in (classifier, regressor):
            booster.set_param({"nthread": 1})
        self.classifier = classifier
        self.regressor = regressor
        self.calibration_x = calibration_x
        self.calibration_y = calibration_y
        self.params = params
        self.summary = summary

    def predict(self, inputs: F64) -> tuple[F64, F64]:
        """(calibrated P(win), expected return %) per row of ``inputs``."""
        rows = self._checked(inputs)
        expected = _scores(self.regressor, rows, self.params.threads)
        return self.confidence(rows), expected

    def confidence(self, inputs: F64) -> F64:
        """Calibrated P(win) only: what the trading loop needs per signal (one tree walk)."""
        raw = _scores(self.classifier, self._checked(inputs), self.params.threads)
        return self.calibrate(raw)

    def calibrate(self, raw: F64) -> F64:
        if len(self.calibration_x) == 0:
            return raw
        return np.interp(raw, self.calibration_x, self.calibration_y)

    def _checked(self, inputs: F64) -> F64:
        rows = np.asarray(inputs, dtype=np.float64)
        if rows.ndim == 1:
            rows = rows[None, :]
        if rows.shape[1] != len(self.schema.names):
            raise ModelError(
                f"inputs have {rows.shape[1]} columns, the model takes {len(self.schema.names)}"
            )
        return rows

    def to_bytes(self) -> bytes:
        header = {
            "format": FORMAT,
            "feature_schema_hash": self.schema.feature_schema_hash,
            "feature_names": list(self.schema.feature_names),
            "params": asdict(self.params),
            "summary": asdict(self.summary),
        }
        buffer = io.BytesIO()
        parts = {
            "header.json": json.dumps(header, sort_keys=True).encode(),
            "classifier.ubj": bytes(self.classifier.save_raw("ubj")),
            "regressor.ubj": bytes(self.regressor.save_raw("ubj")),
            "calibration.f8": _pack(self.calibration_x, self.calibration_y),
        }
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in parts.items():
                # A fixed date: the same model gives the same bytes whenever it is saved.
                entry = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                archive.writestr(entry, data, compress_type=zipfile.ZIP_DEFLATED)
        return buffer.getvalue()


def _pack(x: F64, y: F64) -> bytes:
    return np.stack([x, y]).astype("<f8").tobytes()


PARALLEL_ROWS = 4_096  # below this, one thread scores as fast (measured: 20,000 rows 37 vs 19 ms)


def _scores(booster: xgb.Booster, rows: F64, threads: int) -> F64:
    if threads <= 1 or len(rows) < PARALLEL_ROWS:
        return np.asarray(booster.inplace_predict(rows), dtype=np.float64)
    booster.set_param({"nthread": threads})
    try:
        return np.asarray(booster.inplace_predict(rows), dtype=np.float64)
    finally:
        booster.set_param({"nthread": 1})


def load_model(data: bytes, feature_schema_hash: str) -> ConfidenceModel:
    """Rebuild a stored model; refuse one trained on another feature engine."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            header = json.loads(archive.read("header.json"))
            parts = {n: archive.read(n) for n in ("classifier.ubj", "regressor.ubj")}
            calibration = np.frombuffer(archive.read("calibration.f8"), dtype="<f8")
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ModelError(f"not a stored confidence model ({exc})") from None
    if header.get("format") != FORMAT:
        raise ModelError(f"unknown model format {header.get('format')!r}, expected {FORMAT}")
    if header["feature_schema_hash"] != feature_schema_hash:
        raise ModelError(
            f"the model was trained on feature schema {header['feature_schema_hash'][:12]}, the "
            f"running feature engine has {feature_schema_hash[:12]}: retrain it "
            "(`slt walkforward` or let retraining run) or promote a model of this schema"
        )
    boosters = []
    for name in ("classifier.ubj", "regressor.ubj"):
        booster = xgb.Booster()
        booster.load_model(bytearray(parts[name]))
        boosters.append(booster)
    pairs = calibration.reshape(2, -1) if len(calibration) else np.empty((2, 0))
    schema = InputSchema(tuple(header["feature_names"]), header["feature_schema_hash"])
    return ConfidenceModel(
        schema,
        boosters[0],
        boosters[1],
        pairs[0].copy(),
        pairs[1].copy(),
        ModelParams(**header["params"]),
        TrainSummary(**header["summary"]),
    )


def calibration_map(raw: F64, won: npt.NDArray[np.bool_]) -> tuple[F64, F64]:
    """Raw P(win) -> calibrated P(win) as points of a piecewise-linear map.

    Isotonic regression with at least ``ISOTONIC_MIN`` calibration examples; below that it
    overfits (steps to exactly 0 or 1), so Platt scaling (a logistic fit on the raw logit),
    sampled on a grid. Both classes are needed; otherwise the raw probabilities stay.
    """
    if len(raw) < 2 or won.all() or not won.any():
        return np.empty(0), np.empty(0)
    target = won.astype(np.float64)
    if len(raw) >= ISOTONIC_MIN:
        isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        isotonic.fit(raw, target)
        return (
            np.asarray(isotonic.X_thresholds_, dtype=np.float64),
            np.asarray(isotonic.y_thresholds_, dtype=np.float64),
        )
    platt = LogisticRegression(C=1.0)
    platt.fit(_logit(raw)[:, None], target)
    grid = np.linspace(0.0, 1.0, PLATT_GRID)
    return grid, np.asarray(platt.predict_proba(_logit(grid)[:, None])[:, 1], dtype=np.float64)


def _logit(p: F64) -> F64:
    clipped = np.clip(p, 1e-6, 1 - 1e-6)
    return np.asarray(np.log(clipped / (1 - clipped)), dtype=np.float64)


def split_for_calibration(
    examples: Examples, fraction: float, embargo_ms: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], int]:
    """(fit rows, calibration rows, purged count): the newest ``fraction`` calibrates; a fit
    row's label must be known ``embargo_ms`` before the first calibration decision."""
    n = len(examples)
    n_calibration = max(1, round(n * fraction)) if fraction > 0 else 0
    calibration = np.arange(n - n_calibration, n)
    if n_calibration == 0:
        return np.arange(n), calibration, 0
    first_decision = int(examples.decision_time_ms[calibration[0]])
    before = np.arange(n - n_calibration)
    keep = examples.exit_time_ms[before] < first_decision - embargo_ms
    return before[keep], calibration, int(np.count_nonzero(~keep))


def train_model(examples: Examples, params: ModelParams, embargo_ms: int) -> ConfidenceModel:
    """Fit both models and the calibration; deterministic for one seed and thread count."""
    if len(examples) < params.min_examples:
        raise ModelError(
            f"{len(examples)} closed virtual trades, at least {params.min_examples} are needed"
        )
    fit, calibration, purged = split_for_calibration(
        examples, params.calibration_fraction, embargo_ms
    )
    fit_won = examples.won[fit]
    if len(fit) < params.min_examples // 2 or fit_won.all() or not fit_won.any():
        raise ModelError(
            f"only {len(fit)} examples remain for fitting after purging {purged}, or they "
            "hold a single class: nothing to learn yet"
        )
    inputs = examples.inputs
    classifier = xgb.train(
        params.booster_params("binary:logistic"),
        xgb.DMatrix(inputs[fit], label=fit_won.astype(np.float64)),
        num_boost_round=params.n_estimators,
    )
    regressor = xgb.train(
        params.booster_params("reg:squarederror"),
        xgb.DMatrix(inputs[fit], label=examples.return_pct[fit]),
        num_boost_round=params.n_estimators,
    )
    raw = np.asarray(classifier.inplace_predict(inputs[calibration]), dtype=np.float64)
    cal_x, cal_y = calibration_map(raw, examples.won[calibration])
    summary = TrainSummary(
        n_fit=len(fit),
        n_calibration=len(calibration),
        n_purged=purged,
        fit_start_ms=int(examples.decision_time_ms[fit[0]]),
        calibration_start_ms=int(examples.decision_time_ms[calibration[0]])
        if len(calibration)
        else int(examples.decision_time_ms[-1]),
        train_end_ms=int(examples.exit_time_ms.max()),
    )
    return ConfidenceModel(examples.schema, classifier, regressor, cal_x, cal_y, params, summary)
