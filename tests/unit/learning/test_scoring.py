"""Learning scores against sklearn / scipy references, the DSR paper's worked example, and
seeded return series whose edge (or lack of one) is known."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.metrics import log_loss as sklearn_log_loss

from slt.learning.scoring import (
    annualised_sharpe,
    brier_score,
    calibration_table,
    deflated_sharpe,
    expected_max_sharpe,
    log_loss,
    probabilistic_sharpe,
    probabilistic_sharpe_from_moments,
    roc_auc,
    sharpe_ratio,
)


def labelled_sample(seed: int, n: int = 500, decimals: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes drawn from rounded probabilities: rounding to one decimal makes many ties."""
    rng = np.random.default_rng(seed)
    p = np.round(rng.uniform(0.01, 0.99, n), decimals)
    won = rng.uniform(size=n) < p
    return won, p


def fat_tailed_returns(seed: int, n: int = 1_000, drift: float = 0.0005) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return drift + 0.01 * rng.standard_t(df=4, size=n)


# --- AUC, Brier, log-loss --------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_auc_with_many_ties_equals_sklearn(seed: int) -> None:
    won, p = labelled_sample(seed)

    assert roc_auc(won, p) == pytest.approx(roc_auc_score(won, p), abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])),
        min_size=2,
        max_size=60,
    ).filter(lambda rows: len({won for won, _ in rows}) == 2)
)
def test_auc_equals_sklearn_on_any_sample_with_both_outcomes(
    rows: list[tuple[bool, float]],
) -> None:
    won = np.array([w for w, _ in rows])
    p = np.array([q for _, q in rows])

    assert roc_auc(won, p) == pytest.approx(roc_auc_score(won, p), abs=1e-12)


def test_auc_of_flipped_outcomes_is_one_minus_auc() -> None:
    won, p = labelled_sample(7)

    assert roc_auc(~won, p) == pytest.approx(1.0 - roc_auc(won, p), abs=1e-12)


def test_auc_is_one_when_every_winner_outscores_every_loser_and_half_when_all_tie() -> None:
    won = np.array([False, False, True, True])

    assert roc_auc(won, np.array([0.1, 0.2, 0.3, 0.9])) == 1.0
    assert roc_auc(won, np.full(4, 0.5)) == 0.5


def test_auc_ranks_raw_scores_outside_zero_one() -> None:
    won = np.array([False, True, False, True])

    assert roc_auc(won, np.array([-3.0, 7.0, 2.0, 2.0])) == pytest.approx(0.875)


def test_auc_is_nan_when_only_one_outcome_is_present() -> None:
    assert math.isnan(roc_auc(np.ones(5, dtype=bool), np.linspace(0.1, 0.9, 5)))
    assert math.isnan(roc_auc(np.zeros(0, dtype=bool), np.zeros(0)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_brier_score_equals_sklearn(seed: int) -> None:
    won, p = labelled_sample(seed, decimals=6)

    assert brier_score(won, p) == pytest.approx(brier_score_loss(won, p), abs=1e-15)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_log_loss_equals_sklearn(seed: int) -> None:
    won, p = labelled_sample(seed, decimals=6)

    assert log_loss(won, p) == pytest.approx(sklearn_log_loss(won, p), rel=1e-12)


def test_log_loss_of_a_certain_miss_is_the_clipped_penalty_not_infinity() -> None:
    loss = log_loss(np.array([True, False]), np.array([0.0, 0.0]))

    # One miss at p = eps costs -ln(1e-15); the correct zero costs -ln(1 - 1e-15) ~ 1e-15.
    assert loss == pytest.approx(-math.log(1e-15) / 2, rel=1e-12)


def test_a_coin_flip_scores_a_quarter_brier_and_ln2_log_loss() -> None:
    won = np.array([True, False, True, False])
    p = np.full(4, 0.5)

    assert brier_score(won, p) == 0.25
    assert log_loss(won, p) == pytest.approx(math.log(2.0))


def test_brier_and_log_loss_of_nothing_are_nan() -> None:
    empty = np.zeros(0)

    assert math.isnan(brier_score(empty.astype(bool), empty))
    assert math.isnan(log_loss(empty.astype(bool), empty))


@pytest.mark.parametrize(
    ("won", "p", "named"),
    [
        ([True, False], [0.5, float("nan")], "p"),
        ([1.0, float("nan")], [0.5, 0.5], "won"),
        ([1, 2], [0.5, 0.5], "won"),
        ([True, False], [0.5, 1.5], "p"),
        ([True, False], [0.5], "won and p"),
    ],
)
def test_bad_inputs_are_refused_naming_the_argument(
    won: list[float], p: list[float], named: str
) -> None:
    for score in (roc_auc, brier_score, log_loss, calibration_table):
        if score is roc_auc and named == "p" and not math.isnan(p[-1]):
            continue  # AUC ranks any finite score, 1.5 included
        with pytest.raises(ValueError, match=f"^{named} "):
            score(np.array(won), np.array(p))


# --- calibration table -------------------------------------------------------------------------


def test_calibration_counts_add_up_to_the_sample_and_means_stay_inside_their_bins() -> None:
    won, p = labelled_sample(3, n=2_000, decimals=3)

    table = calibration_table(won, p, bins=10)

    assert len(table) == 10
    assert sum(b.count for b in table) == len(p)
    for b in table:
        assert b.lower <= b.mean_predicted <= b.upper
        assert 0.0 <= b.observed_rate <= 1.0


def test_calibration_bins_are_half_open_except_the_last() -> None:
    p = np.array([0.0, 0.1, 0.3, 0.5, 0.9999, 1.0])

    table = calibration_table(np.zeros(len(p), dtype=bool), p, bins=10)

    assert [b.count for b in table] == [1, 1, 0, 1, 0, 1, 0, 0, 0, 2]
    assert (table[3].lower, table[3].upper) == (0.3, 0.4)
    assert (table[-1].lower, table[-1].upper) == (0.9, 1.0)


def test_empty_calibration_bins_are_kept_with_nan_rates() -> None:
    table = calibration_table(np.array([True, False]), np.array([0.05, 0.95]), bins=4)

    assert [b.count for b in table] == [1, 0, 0, 1]
    assert math.isnan(table[1].mean_predicted)
    assert math.isnan(table[1].observed_rate)


def test_a_perfectly_calibrated_sample_observes_what_it_predicts() -> None:
    rng = np.random.default_rng(11)
    p = rng.uniform(size=200_000)
    won = rng.uniform(size=len(p)) < p

    table = calibration_table(won, p, bins=10)

    # ~20 000 per bin: the standard error of a rate is at most 0.0035, so 0.015 is > 4 sigma.
    for b in table:
        assert b.observed_rate == pytest.approx(b.mean_predicted, abs=0.015)


@pytest.mark.parametrize("bins", [0, -1, 2.5, True])
def test_calibration_refuses_a_bin_count_that_is_not_a_positive_integer(bins: int) -> None:
    with pytest.raises(ValueError, match="bins"):
        calibration_table(np.array([True]), np.array([0.5]), bins=bins)


# --- Sharpe ----------------------------------------------------------------------------------


def test_sharpe_is_mean_over_sample_deviation_per_period() -> None:
    returns = np.array([0.01, -0.02, 0.03, 0.0])

    # mean 0.005; squared deviations 0.000025 + 0.000625 + 0.000625 + 0.000025 = 0.0013
    assert sharpe_ratio(returns) == pytest.approx(0.005 / math.sqrt(0.0013 / 3))


def test_annualised_sharpe_scales_by_the_root_of_periods_per_year() -> None:
    returns = fat_tailed_returns(1, n=100)

    assert annualised_sharpe(returns, 365) == pytest.approx(sharpe_ratio(returns) * math.sqrt(365))


@pytest.mark.parametrize("returns", [[], [0.01], [0.1, 0.1, 0.1]])
def test_sharpe_is_nan_without_two_returns_or_without_variation(returns: list[float]) -> None:
    assert math.isnan(sharpe_ratio(np.array(returns)))
    assert math.isnan(probabilistic_sharpe(np.array(returns)))


def test_returns_with_nan_are_refused() -> None:
    with pytest.raises(ValueError, match=r"^returns "):
        sharpe_ratio(np.array([0.01, float("nan")]))
    with pytest.raises(ValueError, match=r"^returns "):
        deflated_sharpe(np.array([0.01, float("inf")]), n_trials=1)


# --- probabilistic and deflated Sharpe ---------------------------------------------------------


def test_skewness_and_kurtosis_match_scipy() -> None:
    returns = fat_tailed_returns(2)

    result = deflated_sharpe(returns, n_trials=1)

    assert result.skewness == pytest.approx(stats.skew(returns), rel=1e-10)
    assert result.kurtosis == pytest.approx(stats.kurtosis(returns, fisher=False), rel=1e-10)
    assert result.n_obs == len(returns)


@pytest.mark.parametrize("benchmark_sr", [0.0, 0.02, 0.05])
def test_probabilistic_sharpe_matches_a_scipy_reference(benchmark_sr: float) -> None:
    returns = fat_tailed_returns(3)
    sr = np.mean(returns) / np.std(returns, ddof=1)
    g3 = stats.skew(returns)
    g4 = stats.kurtosis(returns, fisher=False)
    z = (
        (sr - benchmark_sr)
        * math.sqrt(len(returns) - 1)
        / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    )

    assert probabilistic_sharpe(returns, benchmark_sr) == pytest.approx(
        stats.norm.cdf(z), abs=1e-12
    )


def test_the_papers_worked_example_is_reproduced() -> None:
    # Bailey & López de Prado (2014), "A numerical example": 100 trials whose annualised Sharpe
    # ratios vary by 1/2, the best at 2.5 annualised over 5 years of daily returns (T = 1250,
    # 250 days a year), skewness -3, kurtosis 10. The paper reports SR0 ~ 0.1132 (per day)
    # and DSR ~ 0.9004: not significant at 95 % despite the 2.5 annualised Sharpe.
    sr0 = expected_max_sharpe(100, 0.5 / 250)
    dsr = probabilistic_sharpe_from_moments(2.5 / math.sqrt(250), sr0, 1250, -3.0, 10.0)

    assert round(sr0, 4) == 0.1132
    assert round(dsr, 4) == 0.9004


def test_expected_max_sharpe_matches_the_scipy_formula_and_is_zero_for_one_trial() -> None:
    gamma = np.euler_gamma
    for n in (2, 10, 1_000, 10**6):
        z = (1 - gamma) * stats.norm.ppf(1 - 1 / n) + gamma * stats.norm.ppf(1 - 1 / (n * math.e))
        assert expected_max_sharpe(n, 0.04) == pytest.approx(0.2 * z, rel=1e-9)
    assert expected_max_sharpe(1, 0.04) == 0.0


def test_one_trial_deflates_to_the_plain_probabilistic_sharpe() -> None:
    returns = fat_tailed_returns(4)

    result = deflated_sharpe(returns, n_trials=1)

    assert result.benchmark_sharpe == 0.0
    assert result.deflated_sharpe == pytest.approx(probabilistic_sharpe(returns, 0.0))


def test_without_trial_variance_the_sampling_variance_of_the_sharpe_stands_in() -> None:
    returns = fat_tailed_returns(5)
    sr = sharpe_ratio(returns)
    g3, g4 = stats.skew(returns), stats.kurtosis(returns, fisher=False)
    sampling_variance = (1 - g3 * sr + (g4 - 1) / 4 * sr**2) / (len(returns) - 1)

    implicit = deflated_sharpe(returns, n_trials=20)
    explicit = deflated_sharpe(returns, n_trials=20, trials_sr_variance=sampling_variance)

    assert implicit.benchmark_sharpe == pytest.approx(explicit.benchmark_sharpe, rel=1e-12)
    assert implicit.deflated_sharpe == pytest.approx(explicit.deflated_sharpe, rel=1e-12)


def test_a_random_walk_with_no_edge_is_not_significant() -> None:
    returns = np.random.default_rng(21).normal(0.0, 0.01, size=1_000)

    result = deflated_sharpe(returns, n_trials=1)

    assert not result.significant
    assert result.deflated_sharpe < 0.95


def test_a_strong_drift_is_significant_even_after_many_trials() -> None:
    # Per-period Sharpe ~0.3 over 500 periods: ~6.7 annualised on daily data.
    returns = np.random.default_rng(22).normal(0.003, 0.01, size=500)

    result = deflated_sharpe(returns, n_trials=1_000, trials_sr_variance=0.002)

    assert result.significant
    assert result.deflated_sharpe > 0.99


def test_more_trials_raise_the_benchmark_and_lower_the_deflated_sharpe() -> None:
    returns = fat_tailed_returns(6, drift=0.001)
    trials = [1, 2, 5, 10, 50, 100, 1_000, 10_000]

    results = [deflated_sharpe(returns, n_trials=n, trials_sr_variance=0.001) for n in trials]

    benchmarks = [r.benchmark_sharpe for r in results]
    probabilities = [r.deflated_sharpe for r in results]
    assert benchmarks == sorted(benchmarks)
    assert len(set(benchmarks)) == len(trials)
    assert all(a > b for a, b in itertools.pairwise(probabilities))


@pytest.mark.parametrize("returns", [[], [0.02], [0.01, 0.01, 0.01]])
def test_degenerate_returns_give_nan_scores_and_are_never_significant(returns: list[float]) -> None:
    result = deflated_sharpe(np.array(returns), n_trials=10)

    assert math.isnan(result.sharpe)
    assert math.isnan(result.deflated_sharpe)
    assert math.isnan(result.benchmark_sharpe)
    assert not result.significant
    assert result.n_obs == len(returns)


@pytest.mark.parametrize(
    ("n_trials", "variance"), [(0, None), (True, None), (2.5, None), (3, -0.1), (3, math.nan)]
)
def test_invalid_trial_counts_and_variances_are_refused(
    n_trials: int, variance: float | None
) -> None:
    with pytest.raises(ValueError, match=r"n_trials|trials_sr_variance"):
        deflated_sharpe(fat_tailed_returns(7), n_trials=n_trials, trials_sr_variance=variance)


def test_scores_are_deterministic() -> None:
    returns = fat_tailed_returns(8)

    assert deflated_sharpe(returns, 30) == deflated_sharpe(returns.copy(), 30)
