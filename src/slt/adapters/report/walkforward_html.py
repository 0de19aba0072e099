"""report.html of a walk-forward: one self-contained page rendered from report.json's data alone.

It reads the dict ``walkforward_report`` builds after ``json_safe`` (so a missing number is
None, shown as an en dash), and looks like the backtest page: the same style, plotly.js
embedded once, long equity series cut by the same bucket min/max downsampling.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from slt.adapters.report.report_html import (
    STYLE,
    _esc,
    _figure_html,
    _layout,
    minmax_indices,
)

DASH = "\u2013"  # an en dash: the number is missing
# (report key, label, colour): the order of every table, legend and bar group on the page.
STRATEGIES: tuple[tuple[str, str, str], ...] = (
    ("ml_filtered", "ML-filtered", "#1f77b4"),
    ("unfiltered", "Unfiltered", "#ff7f0e"),
    ("buy_and_hold", "Buy and hold", "#7f7f7f"),
)
REFERENCE = {"color": "#888", "dash": "dash", "width": 1}
EXTRA_STYLE = (
    "td.wrap{white-space:normal;text-align:left;max-width:900px;word-break:break-word}"
    "td.why{white-space:normal;text-align:left;min-width:140px;max-width:300px}"
    ".verdict{max-width:900px;line-height:1.5;background:#f6f8fa;padding:10px 14px}"
)
FOLD_COLUMNS = (
    "Fold",
    "Train from",
    "Test start",
    "Test end",
    "Learned",
    "Signals",
    "Traded",
    "AUC",
    "Brier",
    "Log-loss",
    "Break-even",
    *(f"{label} %" for _, label, _ in STRATEGIES),
    "Skipped",
)


def render_walkforward_html(report: Mapping[str, Any]) -> str:
    """The whole page; the same dict gives the same text (fixed plot ids, no clock)."""
    run: Mapping[str, Any] = report.get("run") or {}
    overall: Mapping[str, Any] = report["overall"]
    folds: Sequence[Mapping[str, Any]] = report["folds"]
    named = ("Walk-forward", run.get("symbol"), run.get("timeframe"), run.get("strategy"))
    title = " ".join(str(part) for part in named if part)
    period = f"Out of sample {overall.get('start') or DASH} → {overall.get('end') or DASH} UTC"
    charts = _charts(report["equity"], overall, folds)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_esc(title)}</title><style>{STYLE}{EXTRA_STYLE}</style></head><body>",
        f"<h1>{_esc(title)}</h1><p>{_esc(period)}, {len(folds):,} folds</p>",
        f'<p class="verdict" id="verdict">{_esc(verdict(overall, len(folds)))}</p>',
        "<h2>Run</h2>",
        _run_table(run),
        "<h2>Overall, out of sample</h2>",
        _strategies_table(overall["strategies"]),
        "<h3>Model scores</h3>",
        _scores_table(overall, folds),
        "<h3>Deflated Sharpe ratio of the ML-filtered strategy</h3>",
        _deflated_table(overall.get("deflated_sharpe_ml_filtered") or {}),
        *charts,
        "<h2>Folds</h2>",
        _folds_table(folds),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def verdict(overall: Mapping[str, Any], n_folds: int) -> str:
    """One plain paragraph: did the model rank signals, does the edge survive deflation, and
    did filtering beat trading every signal and simply holding."""
    scores = overall["scores"]
    auc, n_scored = scores.get("auc"), scores.get("n") or 0
    with_model = overall.get("folds_with_model") or 0
    if auc is None:
        ranking = (
            f"No out-of-sample AUC could be computed ({n_scored:,} scored signals; a model in "
            f"{with_model} of {n_folds} folds), so there is no evidence the model ranks signals."
        )
    else:
        side = "no better than" if auc <= 0.5 else "above"
        ranking = (
            f"Out of sample the model's AUC is {auc:.3f} over {n_scored:,} scored signals "
            f"({side} the 0.5 of a coin flip; a model in {with_model} of {n_folds} folds)."
        )
    deflated = overall.get("deflated_sharpe_ml_filtered") or {}
    dsr, trials = deflated.get("deflated_sharpe"), deflated.get("n_trials")
    threshold = _threshold(deflated)
    tried = f"{trials} configuration{'s' if trials != 1 else ''} tried" if trials else "trials"
    if dsr is None:
        significance = (
            "The deflated Sharpe ratio of the ML-filtered strategy could not be computed (too "
            "few or constant daily returns), so its result is not significant."
        )
    elif dsr >= threshold:
        significance = (
            f"The deflated Sharpe ratio of the ML-filtered strategy is {dsr:.3f} "
            f"(>= {threshold} with {tried}): significant, unlikely to be luck alone."
        )
    else:
        significance = (
            f"The deflated Sharpe ratio of the ML-filtered strategy is {dsr:.3f} "
            f"(< {threshold} with {tried}): not significant, it may well be luck."
        )
    return f"{ranking} {significance} {_returns_sentence(overall['strategies'])}"


def _returns_sentence(strategies: Mapping[str, Any]) -> str:
    ml, raw, hold = ((strategies.get(key) or {}).get("return_pct") for key, _, _ in STRATEGIES)
    sentence = (
        f"The ML-filtered strategy returned {_fmt(ml, '{:+,.2f} %')}, against "
        f"{_fmt(raw, '{:+,.2f} %')} unfiltered and {_fmt(hold, '{:+,.2f} %')} for buy-and-hold"
    )
    if ml is None:
        return sentence + "."
    others = (("unfiltered", raw), ("buy-and-hold", hold))
    beaten = [name for name, other in others if other is not None and ml > other]
    lost = [name for name, other in others if other is not None and ml <= other]
    if beaten and lost:
        return sentence + f": it beat {beaten[0]} but not {lost[0]}."
    if beaten:
        return sentence + f": it beat {' and '.join(beaten)}."
    if lost:
        return sentence + f": it did not beat {' or '.join(lost)}."
    return sentence + "."


# --- tables ---------------------------------------------------------------------------------


def _run_table(run: Mapping[str, Any]) -> str:
    if not run:
        return '<p class="note">No run details.</p>'
    rows = "".join(
        f'<tr><th class="l">{_esc(str(key))}</th><td class="wrap">{_run_value(value)}</td></tr>'
        for key, value in run.items()
    )
    return f"<table>{rows}</table>"


def _run_value(value: Any) -> str:
    if value is None:
        return DASH
    if isinstance(value, Mapping | list | tuple):
        text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
        return f"<code>{_esc(text)}</code>"
    return _esc(str(value))


def _strategies_table(strategies: Mapping[str, Any]) -> str:
    head = (
        '<tr><th class="l">Strategy</th><th>Return</th><th>Sharpe (daily, annualised)</th>'
        "<th>Max drawdown</th><th>Trades</th></tr>"
    )
    rows = []
    for key, label, _ in STRATEGIES:
        s = strategies.get(key) or {}
        rows.append(
            f'<tr><th class="l">{_esc(label)}</th>{_signed_cell(s.get("return_pct"), "{:+,.2f} %")}'
            f"<td>{_fmt(s.get('sharpe'), '{:.2f}')}</td>"
            f"<td>{_fmt(s.get('max_drawdown_pct'), '{:.2f} %')}</td>"
            f"<td>{_fmt(s.get('trades'), '{:,}')}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _scores_table(overall: Mapping[str, Any], folds: Sequence[Mapping[str, Any]]) -> str:
    scores, n_folds = overall["scores"], len(folds)
    span = break_even_span(overall, folds)
    if span is None:
        break_even = DASH
    elif span[0] == span[1]:
        break_even = f"{span[0]:.3f}"
    else:
        break_even = f"{span[0]:.3f} to {span[1]:.3f} (per fold)"
    trades, won = overall.get("virtual_trades"), overall.get("virtual_trades_won")
    rows = (
        ("AUC (0.5 = coin flip)", _fmt(scores.get("auc"), "{:.3f}")),
        ("Brier score (0.25 = coin flip)", _fmt(scores.get("brier"), "{:.4f}")),
        ("Log-loss (nats)", _fmt(scores.get("log_loss"), "{:.4f}")),
        ("Scored signals", _fmt(scores.get("n"), "{:,}")),
        ("Folds with a model", f"{_fmt(overall.get('folds_with_model'), '{:,}')} of {n_folds:,}"),
        ("Virtual trades (won)", f"{_fmt(trades, '{:,}')} ({_fmt(won, '{:,}')})"),
        ("Cumulative virtual reward", _fmt(overall.get("cumulative_reward"), "{:+,.4g}")),
        ("Break-even P(win)", break_even),
        ("Embargo", _fmt(overall.get("embargo_hours"), "{:,.4g} h")),
    )
    return _key_value_table(rows)


def _threshold(deflated: Mapping[str, Any]) -> float:
    """The deflated Sharpe a result needs to be significant, as the report states it."""
    return float(deflated.get("threshold", 0.95))


def _deflated_table(deflated: Mapping[str, Any]) -> str:
    dsr = deflated.get("deflated_sharpe")
    threshold = _threshold(deflated)
    significant = "no (not computable)" if dsr is None else ("yes" if dsr >= threshold else "no")
    rows = (
        ("Sharpe (per day, not annualised)", _fmt(deflated.get("sharpe"), "{:.4f}")),
        (
            "Deflated Sharpe: P(true Sharpe > benchmark)",
            _fmt(deflated.get("deflated_sharpe"), "{:.3f}"),
        ),
        (
            "Benchmark Sharpe (best of the trials by luck)",
            _fmt(deflated.get("benchmark_sharpe"), "{:.4f}"),
        ),
        ("Daily returns", _fmt(deflated.get("n_obs"), "{:,}")),
        ("Skewness", _fmt(deflated.get("skewness"), "{:.3f}")),
        ("Kurtosis (3 = normal)", _fmt(deflated.get("kurtosis"), "{:.3f}")),
        ("Configurations tried", _fmt(deflated.get("n_trials"), "{:,}")),
        (f"Significant (deflated Sharpe >= {threshold})", significant),
    )
    return _key_value_table(rows)


def _key_value_table(rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(f'<tr><th class="l">{_esc(k)}</th><td>{_esc(v)}</td></tr>' for k, v in rows)
    return f"<table>{body}</table>"


def _folds_table(folds: Sequence[Mapping[str, Any]]) -> str:
    if not folds:
        return '<p class="note">No folds.</p>'
    note = '<p class="note">Dates are UTC; returns are in % over each fold.</p>'
    head = "".join(f"<th>{_esc(c)}</th>" for c in FOLD_COLUMNS[:-1])
    head += f'<th class="l">{_esc(FOLD_COLUMNS[-1])}</th>'
    rows = []
    for f in folds:
        scores, strategies = f.get("scores") or {}, f.get("strategies") or {}
        cells = (
            f"<td>{_fmt(f.get('fold'), '{}')}</td>",
            *(f"<td>{_esc(_day(f.get(k)))}</td>" for k in ("train_start", "start", "end")),
            *(
                f"<td>{_fmt(f.get(k), '{:,}')}</td>"
                for k in ("virtual_trades_learned", "signals", "signals_traded")
            ),
            f"<td>{_fmt(scores.get('auc'), '{:.3f}')}</td>",
            f"<td>{_fmt(scores.get('brier'), '{:.4f}')}</td>",
            f"<td>{_fmt(scores.get('log_loss'), '{:.4f}')}</td>",
            f"<td>{_fmt(f.get('break_even_p_win'), '{:.3f}')}</td>",
            *(
                _signed_cell((strategies.get(k) or {}).get("return_pct"), "{:+,.2f}")
                for k, _, _ in STRATEGIES
            ),
            f'<td class="why">{_esc(str(f.get("skipped") or ""))}</td>',
        )
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f'{note}<div class="scroll"><table><tr>{head}</tr>{"".join(rows)}</table></div>'


def _day(text: Any) -> str:
    """A fold edge without its time when it is midnight, so the fold table fits the page."""
    return DASH if not text else str(text).removesuffix(" 00:00")


def _signed_cell(value: Any, spec: str) -> str:
    text = _fmt(value, spec)
    if text == DASH or value == 0:
        return f"<td>{text}</td>"
    return f'<td class="{"pos" if value > 0 else "neg"}">{text}</td>'


def _fmt(value: Any, spec: str) -> str:
    """``spec`` applied to a number; an en dash for None (what json_safe left of NaN) or NaN.

    The result holds only digits and signs, so it goes into the page unescaped.
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return DASH
    return spec.format(value)


# --- charts ---------------------------------------------------------------------------------


def _charts(
    equity: Mapping[str, Any], overall: Mapping[str, Any], folds: Sequence[Mapping[str, Any]]
) -> list[str]:
    """The three chart sections; plotly.js rides along with the first figure drawn."""
    sections: list[tuple[str, str | go.Figure]] = [
        ("Equity", _equity_figure(equity, folds) if equity.get("time_ms") else "No equity series."),
        ("Per fold: AUC and return", _folds_figure(folds) if folds else "No folds."),
        (
            "Reliability of P(win), out of sample",
            _reliability_figure(overall, break_even_span(overall, folds))
            if any(b.get("count") for b in overall["scores"].get("calibration") or ())
            else "No scored signals to calibrate.",
        ),
    ]
    html, js_done = [], False
    for index, (heading, content) in enumerate(sections):
        html.append(f"<h2>{_esc(heading)}</h2>")
        if isinstance(content, str):
            html.append(f'<p class="note">{_esc(content)}</p>')
            continue
        html.append(_figure_html(content, f"slt-wf-{index}", include_js=not js_done))
        js_done = True
    return html


def _equity_figure(equity: Mapping[str, Any], folds: Sequence[Mapping[str, Any]]) -> go.Figure:
    times = np.asarray(equity["time_ms"], dtype=np.float64)
    figure = go.Figure()
    for key, label, colour in STRATEGIES:
        # None (a NaN that json_safe replaced) becomes NaN again: a gap in the line.
        values = np.asarray(equity.get(key) or [], dtype=np.float64)[: len(times)]
        keep = minmax_indices(values)
        figure.add_trace(
            go.Scatter(
                x=times[keep],
                y=values[keep],
                name=label,
                line={"width": 1.2, "color": colour},
                hovertemplate="%{x|%Y-%m-%d %H:%M} UTC<br>%{y:,.2f} USDT",
            )
        )
    # Each fold's start is where a new model takes over; strings are read as UTC on a date axis.
    for fold in folds[1:]:
        if fold.get("start"):
            figure.add_vline(
                x=str(fold["start"]), line={"color": "#ccc", "width": 1, "dash": "dot"}
            )
    figure.update_yaxes(title_text="Equity (USDT)")
    return _layout(figure, height=480)


def _folds_figure(folds: Sequence[Mapping[str, Any]]) -> go.Figure:
    labels = [f"Fold {f.get('fold')}" for f in folds]
    spans = [f"{f.get('start') or DASH} → {f.get('end') or DASH} UTC" for f in folds]
    figure = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.12,
        subplot_titles=("Out-of-sample AUC (dashed: 0.5, a coin flip)", "Return per fold (%)"),
    )
    auc = [_number((f.get("scores") or {}).get("auc")) for f in folds]
    figure.add_trace(
        go.Bar(
            x=labels,
            y=auc,
            name="AUC",
            marker_color="#6a51a3",
            text=[DASH if a is None else f"{a:.3f}" for a in auc],
            customdata=spans,
            hovertemplate="%{x}: AUC %{text}<br>%{customdata}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    figure.add_hline(y=0.5, line=REFERENCE, row=1, col=1)
    # A missing bar would read as "AUC 0"; say why it is missing instead.
    for label, fold, value in zip(labels, folds, auc, strict=True):
        if value is None:
            why = "no model" if fold.get("model") is None else "no AUC"
            figure.add_annotation(
                x=label, y=0.06, text=why, showarrow=False, font_color="#888", row=1, col=1
            )
    for key, label, colour in STRATEGIES:
        returns = [
            _number(((f.get("strategies") or {}).get(key) or {}).get("return_pct")) for f in folds
        ]
        figure.add_trace(
            go.Bar(
                x=labels,
                y=returns,
                name=label,
                marker_color=colour,
                customdata=spans,
                hovertemplate=f"%{{x}} {label}: %{{y:+.2f}} %<br>%{{customdata}}<extra></extra>",
            ),
            row=2,
            col=1,
        )
    figure.update_yaxes(title_text="AUC", range=[0.0, 1.0], row=1, col=1)
    figure.update_yaxes(title_text="%", row=2, col=1)
    figure = _layout(figure, height=620)
    figure.update_xaxes(type="category")
    figure.update_layout(barmode="group", hovermode="x unified")
    return figure


def _reliability_figure(
    overall: Mapping[str, Any], break_even: tuple[float, float] | None
) -> go.Figure:
    # Empty bins carry no rates (NaN, then None); only the filled ones are points.
    bins = [
        b
        for b in overall["scores"]["calibration"]
        if b.get("count") and b.get("mean_predicted") is not None
    ]
    counts = np.asarray([b["count"] for b in bins], dtype=np.float64)
    # Marker area grows with the bin's count, so a two-signal bin does not look like evidence.
    size = 8.0 + 22.0 * np.sqrt(counts / max(counts.max(initial=0.0), 1.0))
    figure = go.Figure(
        go.Scatter(
            x=[0.0, 1.0],
            y=[0.0, 1.0],
            mode="lines",
            name="Perfectly calibrated",
            line=REFERENCE,
            hoverinfo="skip",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=[b["mean_predicted"] for b in bins],
            y=[b["observed_rate"] for b in bins],
            mode="lines+markers",
            name="Out-of-sample bins",
            marker={"size": size, "color": "#1f77b4"},
            line={"width": 1, "color": "#1f77b4"},
            customdata=[[b.get("lower"), b.get("upper"), b["count"]] for b in bins],
            hovertemplate=(
                "P(win) in [%{customdata[0]:.2f}, %{customdata[1]:.2f})<br>"
                "signals %{customdata[2]:,}<br>mean predicted %{x:.3f}<br>"
                "observed win rate %{y:.3f}<extra></extra>"
            ),
        )
    )
    if break_even is not None and break_even[0] == break_even[1]:
        figure.add_vline(
            x=break_even[0],
            line={"color": "#c62828", "width": 1, "dash": "dot"},
            annotation_text="break-even P(win)",
            annotation_position="top left",
        )
    elif break_even is not None:
        figure.add_vrect(
            x0=break_even[0],
            x1=break_even[1],
            fillcolor="#c62828",
            opacity=0.08,
            line_width=0,
            annotation_text="break-even P(win) of the folds",
            annotation_position="top left",
        )
    figure.update_xaxes(title_text="Mean predicted P(win)", range=[0.0, 1.0])
    figure.update_yaxes(title_text="Observed win rate", range=[0.0, 1.0])
    figure = _layout(figure, height=520)
    figure.update_xaxes(type="linear")
    return figure


def break_even_span(
    overall: Mapping[str, Any], folds: Sequence[Mapping[str, Any]]
) -> tuple[float, float] | None:
    """The P(win) a signal had to beat: one overall value, or the range over the folds that had a
    model (each fold learns its own from the outcomes before it); None when neither is known."""
    if overall.get("break_even_p_win") is not None:
        value = float(overall["break_even_p_win"])
        return value, value
    values = [
        float(f["break_even_p_win"])
        for f in folds
        if f.get("model") is not None and f.get("break_even_p_win") is not None
    ]
    return (min(values), max(values)) if values else None


def _number(value: Any) -> float | None:
    """A plot value: None stays None (plotly draws nothing there)."""
    return None if value is None else float(value)
