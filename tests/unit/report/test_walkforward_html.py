"""Walk-forward report.html: rendered from report.json's data alone, offline, honest verdict."""

from __future__ import annotations

import copy
import html
import re
from typing import Any

import numpy as np
from plotly.offline import get_plotlyjs

from slt.adapters.report.report_json import json_safe
from slt.adapters.report.walkforward_html import render_walkforward_html

PLOTLY_BANNER = "* plotly.js v"
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
HOUR = 3_600_000
NAN = float("nan")


def _calibration(n: int, seed: int) -> list[dict[str, Any]]:
    """Ten bins on [0, 1], the outer ones empty (NaN rates, as scoring gives them)."""
    rng = np.random.default_rng(seed)
    counts = np.array([0, 0, 3, 40, 0, 0, 0, 0, 0, 0])
    counts[4:8] = rng.multinomial(n - counts.sum(), [0.4, 0.3, 0.2, 0.1])
    bins = []
    for i, count in enumerate(counts.tolist()):
        lower, upper = i / 10, (i + 1) / 10
        predicted = lower + 0.05 if count else NAN
        bins.append(
            {
                "lower": lower,
                "upper": upper,
                "count": count,
                "mean_predicted": predicted,
                "observed_rate": predicted + rng.normal(0.0, 0.04) if count else NAN,
            }
        )
    return bins


def _scores(n: int, auc: float, seed: int) -> dict[str, Any]:
    return {
        "n": n,
        "auc": auc,
        "brier": 0.241,
        "log_loss": 0.676,
        "calibration": _calibration(n, seed),
    }


def _strategies(ml: float, raw: float, hold: float) -> dict[str, Any]:
    return {
        "ml_filtered": {"return_pct": ml, "sharpe": 0.84, "max_drawdown_pct": 6.1, "trades": 41},
        "unfiltered": {"return_pct": raw, "sharpe": 0.31, "max_drawdown_pct": 11.7, "trades": 96},
        "buy_and_hold": {"return_pct": hold, "sharpe": 1.02, "max_drawdown_pct": 18.4, "trades": 1},
    }


def _equity(n_points: int) -> dict[str, list[float]]:
    steps = np.random.default_rng(7).normal(0.0, 0.002, size=(3, n_points))
    paths = 10_000.0 * np.exp(np.cumsum(steps, axis=1))
    return {
        "time_ms": (T0 + 60 * 24 * HOUR + HOUR * np.arange(1, n_points + 1)).tolist(),
        "ml_filtered": paths[0].tolist(),
        "unfiltered": paths[1].tolist(),
        "buy_and_hold": paths[2].tolist(),
    }


def walkforward_dict(
    dsr: float = 0.41, n_equity: int = 1_000, strategy: str = "ema_cross"
) -> dict[str, Any]:
    """Three 14-day folds after 60 days of learning; fold 1 had no model, so NaN scores."""
    no_model: dict[str, Any] = {
        "n": 0,
        "auc": None,
        "brier": None,
        "log_loss": None,
        "calibration": [],
    }
    first = _strategies(0.0, -1.8, 2.4)
    first["ml_filtered"] = {"return_pct": 0.0, "sharpe": NAN, "max_drawdown_pct": 0.0, "trades": 0}
    report = {
        "kind": "walkforward",
        "version": 1,
        "run": {
            "symbol": "BTCUSDT",
            "market": "futures",
            "timeframe": "1h",
            "start": "2024-01-01 00:00",
            "end": "2024-04-12 00:00",
            "train_days": 60,
            "test_days": 14,
            "strategy": strategy,
            "seed": 42,
            "config": {"exits": {"stop_loss_pct": 1.0, "take_profit_pct": 2.0}},
        },
        "overall": {
            "start": "2024-03-01 00:00",
            "end": "2024-04-12 00:00",
            "virtual_trades": 610,
            "virtual_trades_won": 262,
            "cumulative_reward": 14.25,
            "folds_with_model": 2,
            "embargo_hours": 49.0,
            "scores": _scores(312, 0.5612, seed=1),
            "strategies": _strategies(4.37, -2.15, 9.8),
            "deflated_sharpe_ml_filtered": {
                "sharpe": 0.093,
                "deflated_sharpe": dsr,
                "benchmark_sharpe": 0.141,
                "n_obs": 42,
                "skewness": -0.21,
                "kurtosis": 3.9,
                "n_trials": 5,
                "significant": dsr >= 0.95,
            },
        },
        "folds": [
            {
                "fold": 1,
                "train_start": "2024-01-01 00:00",
                "start": "2024-03-01 00:00",
                "end": "2024-03-15 00:00",
                "virtual_trades_learned": 87,
                "model": None,
                "skipped": "only 87 virtual trades to learn from, need at least 200",
                "signals": 98,
                "signals_traded": 0,
                "break_even_p_win": 1.0,  # nothing learned from: trade nothing
                "scores": no_model,
                "strategies": first,
            },
            *(
                {
                    "fold": k,
                    "train_start": f"2024-01-{1 + 14 * (k - 1):02d} 00:00",
                    "start": f"2024-03-{1 + 14 * (k - 1):02d} 00:00",
                    "end": f"2024-03-{15 + 14 * (k - 1):02d} 00:00"
                    if k == 2
                    else "2024-04-12 00:00",
                    "virtual_trades_learned": 200 + 90 * k,
                    "model": {"n_fit": 150 * k, "n_calibration": 40 * k, "n_purged": 6},
                    "skipped": None,
                    "signals": 150 + k,
                    "signals_traded": 20 * k,
                    "break_even_p_win": break_even,
                    "scores": _scores(150 + k, auc, seed=k),
                    "strategies": _strategies(ml, -0.9, 3.1),
                }
                for k, auc, ml, break_even in ((2, 0.5921, 3.2, 0.3467), (3, 0.4817, 1.1, 0.3712))
            ),
        ],
        "equity": _equity(n_equity),
    }
    return dict(json_safe(report))  # what report.json holds: NaN is None by now


def _verdict(page: str) -> str:
    match = re.search(r'<p class="verdict" id="verdict">(.*?)</p>', page, re.S)
    assert match is not None
    return html.unescape(match.group(1))


def test_page_is_a_whole_document_with_the_plotly_bundle_exactly_once() -> None:
    page = render_walkforward_html(walkforward_dict())
    assert page.startswith("<!DOCTYPE html>")
    assert page.rstrip().endswith("</html>")
    assert page.count(PLOTLY_BANNER) == 1


def test_page_loads_no_script_or_style_from_the_network() -> None:
    page = render_walkforward_html(walkforward_dict())
    assert re.search(r"<script[^>]*\ssrc\s*=", page) is None
    assert re.search(r"<link[^>]*https?://", page) is None


def test_the_same_dict_gives_identical_html() -> None:
    assert render_walkforward_html(walkforward_dict()) == render_walkforward_html(
        walkforward_dict()
    )


def test_page_has_run_overall_scores_deflated_sharpe_three_charts_and_folds() -> None:
    page = render_walkforward_html(walkforward_dict())
    for text in (
        "<h2>Run</h2>",
        "BTCUSDT",
        "Buy and hold",
        "Deflated Sharpe",
        "slt-wf-0",  # equity
        "slt-wf-1",  # per fold AUC and return
        "slt-wf-2",  # reliability
        "<h2>Folds</h2>",
        "Perfectly calibrated",
    ):
        assert text in page


def test_verdict_gives_the_auc_and_calls_a_deflated_sharpe_below_0_95_not_significant() -> None:
    verdict = _verdict(render_walkforward_html(walkforward_dict(dsr=0.41)))
    assert "AUC is 0.561" in verdict
    assert "not significant" in verdict
    assert "0.410" in verdict
    assert "+4.37 %" in verdict and "-2.15 %" in verdict and "+9.80 %" in verdict


def test_verdict_calls_a_deflated_sharpe_of_0_95_or_more_significant() -> None:
    verdict = _verdict(render_walkforward_html(walkforward_dict(dsr=0.97)))
    assert "AUC is 0.561" in verdict
    assert "significant" in verdict
    assert "not significant" not in verdict


def test_verdict_without_a_deflated_sharpe_or_an_auc_says_so_and_claims_nothing() -> None:
    report = walkforward_dict()
    report["overall"]["deflated_sharpe_ml_filtered"]["deflated_sharpe"] = None
    report["overall"]["scores"]["auc"] = None
    verdict = _verdict(render_walkforward_html(report))
    assert "No out-of-sample AUC" in verdict
    assert "not significant" in verdict


def test_verdict_says_whether_filtering_beat_trading_every_signal_and_holding() -> None:
    verdict = _verdict(render_walkforward_html(walkforward_dict()))
    assert "it beat unfiltered but not buy-and-hold" in verdict


def test_a_script_like_strategy_name_is_escaped_everywhere() -> None:
    page = render_walkforward_html(walkforward_dict(strategy="<script>alert(1)</script>"))
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_fold_without_a_model_shows_dashes_and_the_reason() -> None:
    page = render_walkforward_html(walkforward_dict())
    table = page[page.index("<h2>Folds</h2>") :]
    first = table[table.index("<tr><td>1</td>") :].split("</tr>")[0]
    assert first.count("<td>\u2013</td>") == 3  # AUC, Brier, log-loss
    assert "only 87 virtual trades to learn from" in first


def test_an_empty_equity_series_renders_a_note_and_still_embeds_plotly_once() -> None:
    report = walkforward_dict()
    report["equity"] = {"time_ms": [], "ml_filtered": [], "unfiltered": [], "buy_and_hold": []}
    page = render_walkforward_html(report)
    assert "No equity series." in page
    assert "slt-wf-0" not in page
    assert page.count(PLOTLY_BANNER) == 1


def test_no_folds_and_no_equity_still_render() -> None:
    report = copy.deepcopy(walkforward_dict())
    report["folds"] = []
    report["equity"] = {"time_ms": [], "ml_filtered": [], "unfiltered": [], "buy_and_hold": []}
    report["overall"]["scores"] = {
        "n": 0,
        "auc": None,
        "brier": None,
        "log_loss": None,
        "calibration": [],
    }
    page = render_walkforward_html(report)
    assert "No folds." in page
    assert "No scored signals to calibrate." in page


def test_a_50_000_point_equity_is_downsampled_so_the_page_stays_small() -> None:
    page = render_walkforward_html(walkforward_dict(n_equity=50_000))
    # Measured beside the ~4.85 MB bundle: 0.10 MB with 1,000 points, 0.37 MB with 50,000 cut
    # to at most 5,000 per line; all 50,000 points of the three lines would add ~3.2 MB.
    assert len(page) - len(get_plotlyjs()) < 500_000


def test_break_even_is_the_range_over_the_folds_that_had_a_model() -> None:
    page = render_walkforward_html(walkforward_dict())
    assert "0.347 to 0.371 (per fold)" in page
    assert "break-even P(win) of the folds" in page


def test_an_overall_break_even_is_shown_as_one_value_and_one_line() -> None:
    report = walkforward_dict()
    report["overall"]["break_even_p_win"] = 0.3333
    page = render_walkforward_html(report)
    assert "<td>0.333</td>" in page
    assert "(per fold)" not in page
