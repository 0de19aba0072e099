"""How good a confidence model and a strategy's returns are: AUC, Brier, log-loss, calibration,
Sharpe, and the probabilistic / deflated Sharpe of Bailey & López de Prado (2014).

Pure functions of float64 arrays. Inputs holding NaN or infinities, labels other than 0/1,
probabilities outside [0, 1] or arrays of different lengths are refused with a ``ValueError``
naming the argument; a score the data cannot define (one class only, fewer than two returns,
zero variance) is NaN, never an exception.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
NAN = float("nan")
# The standard normal: Phi and Phi^-1 of the PSR / DSR formulas.
_NORMAL = NormalDist()
# DSR >= this is "the edge survives the number of configurations tried" at the 5 % level.
SIGNIFICANT_DSR = 0.95


@dataclass(frozen=True)
class CalibrationBin:
    """One fixed-width bin of predicted probability: how often the predicted event happened."""

    lower: float
    upper: float
    count: int
    mean_predicted: float  # NaN when count == 0
    observed_rate: float  # NaN when count == 0


@dataclass(frozen=True)
class DeflatedSharpe:
    """The deflated Sharpe of one return series; all Sharpe ratios are per period, not annualised.

    ``deflated_sharpe`` is a probability: that the true Sharpe exceeds ``benchmark_sharpe``, the
    Sharpe the best of ``n_trials`` zero-edge configurations would reach by luck.
    """

    sharpe: float
    deflated_sharpe: float
    benchmark_sharpe: float
    n_obs: int
    skewness: float
    kurtosis: float  # non-excess: 3 for normal returns
    n_trials: int
    significant: bool  # deflated_sharpe >= 0.95; False whenever it is NaN


# --- input checks ---------------------------------------------------------------------------


def _finite_vector(name: str, values: npt.ArrayLike) -> F64:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _labels(won: npt.ArrayLike) -> F64:
    """Outcomes as 0.0 / 1.0; booleans, or numbers that are exactly 0 or 1."""
    labels = _finite_vector("won", won)
    if not np.all((labels == 0.0) | (labels == 1.0)):
        raise ValueError("won must hold only booleans (or 0 and 1)")
    return labels


def _labels_and_scores(
    won: npt.ArrayLike, p: npt.ArrayLike, probabilities: bool
) -> tuple[F64, F64]:
    labels = _labels(won)
    scores = _finite_vector("p", p)
    if len(labels) != len(scores):
        raise ValueError(f"won and p differ in length: {len(labels)} != {len(scores)}")
    if probabilities and not np.all((scores >= 0.0) & (scores <= 1.0)):
        raise ValueError("p must be probabilities in [0, 1]")
    return labels, scores


def _returns(returns: npt.ArrayLike) -> F64:
    return _finite_vector("returns", returns)


# --- classification scores ------------------------------------------------------------------


def roc_auc(won: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Probability that a random winner scores above a random loser (ties count one half).

    Mann-Whitney U with average ranks; ``p`` may be any finite score, only its order matters.
    NaN when only one class (or nothing) is present.
    """
    labels, scores = _labels_and_scores(won, p, probabilities=False)
    n_pos = float(labels.sum())
    n_neg = float(len(labels)) - n_pos
    if n_pos == 0.0 or n_neg == 0.0:
        return NAN
    ranks = _average_ranks(scores)
    u_statistic = float(ranks[labels == 1.0].sum()) - n_pos * (n_pos + 1.0) / 2.0
    return u_statistic / (n_pos * n_neg)


def _average_ranks(scores: F64) -> F64:
    """1-based ranks, tied values sharing the mean of the ranks they occupy."""
    _, group, counts = np.unique(scores, return_inverse=True, return_counts=True)
    last_rank = np.cumsum(counts).astype(np.float64)
    mean_rank = last_rank - (counts.astype(np.float64) - 1.0) / 2.0
    return np.asarray(mean_rank[group.ravel()], dtype=np.float64)


def brier_score(won: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Mean squared error of the predicted probability; 0 is perfect, 0.25 is a coin flip.

    NaN for empty input.
    """
    labels, probs = _labels_and_scores(won, p, probabilities=True)
    if len(labels) == 0:
        return NAN
    return float(np.mean((probs - labels) ** 2))


def log_loss(won: npt.ArrayLike, p: npt.ArrayLike, eps: float = 1e-15) -> float:
    """Mean negative log-likelihood in nats, ``p`` clipped to [eps, 1 - eps] so a confident
    miss costs a large finite penalty instead of infinity. NaN for empty input.
    """
    if not (math.isfinite(eps) and 0.0 < eps < 0.5):
        raise ValueError(f"eps must be in (0, 0.5), got {eps}")
    labels, probs = _labels_and_scores(won, p, probabilities=True)
    if len(labels) == 0:
        return NAN
    clipped = np.clip(probs, eps, 1.0 - eps)
    likelihood = labels * np.log(clipped) + (1.0 - labels) * np.log1p(-clipped)
    return float(-np.mean(likelihood))


def calibration_table(
    won: npt.ArrayLike, p: npt.ArrayLike, bins: int = 10
) -> tuple[CalibrationBin, ...]:
    """Exactly ``bins`` fixed-width bins on [0, 1]: bin i holds lower <= p < upper, the last bin
    also p == 1. Empty bins are kept (count 0, NaN rates) so tables always line up.
    """
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    labels, probs = _labels_and_scores(won, p, probabilities=True)
    n_bins = int(bins)
    # i / n is the correctly rounded edge, and the same floats are reported as lower / upper,
    # so every probability lies inside the bounds of the bin it is counted in.
    edges = np.arange(n_bins + 1, dtype=np.float64) / n_bins
    index = np.minimum(np.searchsorted(edges, probs, side="right") - 1, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    predicted_sums = np.bincount(index, weights=probs, minlength=n_bins)
    won_sums = np.bincount(index, weights=labels, minlength=n_bins)
    table = []
    for i in range(n_bins):
        count = int(counts[i])
        table.append(
            CalibrationBin(
                lower=float(edges[i]),
                upper=float(edges[i + 1]),
                count=count,
                mean_predicted=float(predicted_sums[i]) / count if count else NAN,
                observed_rate=float(won_sums[i]) / count if count else NAN,
            )
        )
    return tuple(table)


# --- Sharpe ratios --------------------------------------------------------------------------


def sharpe_ratio(returns: npt.ArrayLike) -> float:
    """Per-period mean / sample standard deviation (ddof = 1), risk-free rate 0, as in the
    backtest report. NaN with fewer than two returns or when all returns are equal.
    """
    values = _returns(returns)
    return _sharpe(values)


def _sharpe(values: F64) -> float:
    # Equal values are checked exactly: their float std can come out as 1e-18, not 0.
    if len(values) < 2 or np.all(values == values[0]):
        return NAN
    deviation = float(np.std(values, ddof=1))
    if deviation == 0.0:
        return NAN
    return float(np.mean(values)) / deviation


def annualised_sharpe(returns: npt.ArrayLike, periods_per_year: float) -> float:
    """Per-period Sharpe times sqrt(periods_per_year) (365 for daily crypto returns)."""
    if not (math.isfinite(periods_per_year) and periods_per_year > 0.0):
        raise ValueError(f"periods_per_year must be positive, got {periods_per_year}")
    return sharpe_ratio(returns) * math.sqrt(periods_per_year)


def _moments(values: F64) -> tuple[float, float]:
    """Sample skewness and non-excess kurtosis, biased (population) estimators as in the paper
    and scipy.stats' defaults; NaN when the returns do not vary.
    """
    if len(values) < 2 or np.all(values == values[0]):
        return NAN, NAN
    centred = values - np.mean(values)
    variance = float(np.mean(centred**2))
    if variance == 0.0:
        return NAN, NAN
    skewness = float(np.mean(centred**3)) / variance**1.5
    kurtosis = float(np.mean(centred**4)) / variance**2
    return skewness, kurtosis


def _sharpe_variance_term(sharpe: float, skewness: float, kurtosis: float) -> float:
    """1 - g3 SR + (g4 - 1) / 4 SR^2: (T - 1) times the variance of the SR estimator."""
    return 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2


def probabilistic_sharpe_from_moments(
    sharpe: float, benchmark_sr: float, n_obs: int, skewness: float, kurtosis: float
) -> float:
    """PSR(SR*) = Phi((SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2)).

    For callers that hold the moments, not the returns (e.g. the paper's worked example).
    NaN when any input is NaN, T < 2, or the variance term is not positive (a degenerate sample).
    """
    if n_obs < 2 or not all(map(math.isfinite, (sharpe, benchmark_sr, skewness, kurtosis))):
        return NAN
    term = _sharpe_variance_term(sharpe, skewness, kurtosis)
    if not term > 0.0:
        return NAN
    z_score = (sharpe - benchmark_sr) * math.sqrt(n_obs - 1) / math.sqrt(term)
    return _NORMAL.cdf(z_score)


def probabilistic_sharpe(returns: npt.ArrayLike, benchmark_sr: float = 0.0) -> float:
    """Probability that the true per-period Sharpe exceeds ``benchmark_sr`` (also per period),
    allowing for the track record's length, skewness and fat tails. NaN when degenerate.
    """
    if not math.isfinite(benchmark_sr):
        raise ValueError(f"benchmark_sr must be finite, got {benchmark_sr}")
    values = _returns(returns)
    skewness, kurtosis = _moments(values)
    return probabilistic_sharpe_from_moments(
        _sharpe(values), benchmark_sr, len(values), skewness, kurtosis
    )


def expected_max_sharpe(n_trials: int, trials_sr_variance: float) -> float:
    """SR0: the Sharpe the best of ``n_trials`` zero-edge configurations reaches by luck,
    sqrt(V) ((1 - g) Phi^-1(1 - 1/N) + g Phi^-1(1 - 1/(N e))), g the Euler-Mascheroni constant.

    One configuration tried is no selection, so SR0 = 0 (the formula's Phi^-1(0) is -inf there).
    """
    _check_trials(n_trials, trials_sr_variance)
    if n_trials == 1:
        return 0.0
    gamma = float(np.euler_gamma)
    # Phi^-1(1 - q) as -Phi^-1(q): stays accurate for huge N, where 1 - 1/N would round to 1.
    upper_quantile = -_NORMAL.inv_cdf(1.0 / n_trials)
    upper_quantile_e = -_NORMAL.inv_cdf(1.0 / (n_trials * math.e))
    expected_max_z = (1.0 - gamma) * upper_quantile + gamma * upper_quantile_e
    return math.sqrt(trials_sr_variance) * expected_max_z


def _check_trials(n_trials: int, trials_sr_variance: float | None) -> None:
    if isinstance(n_trials, bool) or not isinstance(n_trials, int | np.integer) or n_trials < 1:
        raise ValueError(f"n_trials must be a positive integer, got {n_trials!r}")
    if trials_sr_variance is not None and not (
        math.isfinite(trials_sr_variance) and trials_sr_variance >= 0.0
    ):
        raise ValueError(f"trials_sr_variance must be finite and >= 0, got {trials_sr_variance}")


def deflated_sharpe(
    returns: npt.ArrayLike, n_trials: int, trials_sr_variance: float | None = None
) -> DeflatedSharpe:
    """DSR = PSR(SR0): whether the Sharpe of the chosen configuration survives the search.

    ``trials_sr_variance`` is the variance of the per-period Sharpe ratios across the
    ``n_trials`` configurations tried. Without it, the sampling variance of this Sharpe
    estimate, (1 - g3 SR + (g4 - 1) / 4 SR^2) / (T - 1), stands in: the spread zero-edge trials
    of this length and shape would show by luck alone. Degenerate returns (fewer than two, all
    equal) give NaN scores and ``significant`` False.
    """
    _check_trials(n_trials, trials_sr_variance)
    values = _returns(returns)
    n_obs = len(values)
    sharpe = _sharpe(values)
    skewness, kurtosis = _moments(values)
    variance = trials_sr_variance
    if variance is None:
        term = _sharpe_variance_term(sharpe, skewness, kurtosis)
        variance = term / (n_obs - 1) if n_obs >= 2 and term > 0.0 else NAN
    if n_trials == 1 or math.isfinite(variance):
        benchmark = expected_max_sharpe(n_trials, 0.0 if n_trials == 1 else variance)
    else:
        benchmark = NAN
    probability = probabilistic_sharpe_from_moments(sharpe, benchmark, n_obs, skewness, kurtosis)
    return DeflatedSharpe(
        sharpe=sharpe,
        deflated_sharpe=probability,
        benchmark_sharpe=benchmark,
        n_obs=n_obs,
        skewness=skewness,
        kurtosis=kurtosis,
        n_trials=int(n_trials),
        significant=bool(probability >= SIGNIFICANT_DSR),
    )
