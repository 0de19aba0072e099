"""report.html: one self-contained page (plotly.js embedded once) that opens offline.

Long series are cut to at most ``MAX_CHART_POINTS`` by keeping each bucket's lowest and highest
point, so spikes and the deepest drawdown survive; report.json keeps every bar.
"""

from __future__ import annotations

import html
import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from slt.adapters.report.report_json import iso_utc, json_safe
from slt.domain.metrics import compute_metrics, drawdown_pct, monthly_returns, symbol_metrics
from slt.domain.results import BacktestResult, SymbolBars, Trade

I64 = npt.NDArray[np.int64]
MAX_CHART_POINTS = 5_000
TRADE_TABLE_EDGE = 500  # rows shown at each end of the trades table when there are more
MAX_MARKED_TRADES = 5_000  # trades drawn on the price chart (first and last halves beyond that)
WIN, LOSS, LONG, SHORT = "#1a9850", "#d73027", "#1a9850", "#d73027"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
PLOT_CONFIG = {"displaylogo": False, "responsive": True}
# customdata columns: position id, quantity, leverage, trade pnl (USDT), trade pnl (%)
_TRADE_HOVER = (
    "<br>%{x|%Y-%m-%d %H:%M} UTC<br>qty %{customdata[1]:.8g} x%{customdata[2]:.4g}"
    "<br>trade pnl %{customdata[3]:+,.2f} USDT (%{customdata[4]:+.2f} %)"
)
ENTRY_HOVER = (
    "%{fullData.name} #%{customdata[0]}<br>price %{y:.8g}"
    + _TRADE_HOVER
    + "<br>closed by %{text}<extra></extra>"
)
EXIT_HOVER = "exit: %{text} #%{customdata[0]}<br>price %{y:.8g}" + _TRADE_HOVER + "<extra></extra>"

METRIC_ROWS: tuple[tuple[str, str, str], ...] = (
    ("total_return_pct", "Total return", "{:+,.2f} %"),
    ("cagr_pct", "CAGR", "{:+,.2f} %"),
    ("sharpe", "Sharpe (daily, annualised)", "{:.2f}"),
    ("sortino", "Sortino (daily, annualised)", "{:.2f}"),
    ("max_drawdown_pct", "Max drawdown", "{:.2f} %"),
    ("profit_factor", "Profit factor", "{:.2f}"),
    ("win_rate", "Win rate", "{:.1%}"),
    ("exposure_pct", "Exposure (bars in position)", "{:.1f} %"),
    ("n_trades", "Trades", "{:,}"),
    ("fees_paid", "Fees paid", "{:,.2f} USDT"),
    ("funding_paid", "Funding paid (negative = received)", "{:,.2f} USDT"),
)

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em}
table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right;white-space:nowrap}
th{background:#f3f3f3}td.l,th.l{text-align:left}
.pos{color:#1a7f37}.neg{color:#c62828}.note{color:#666;font-size:13px}
.scroll{max-height:600px;overflow:auto}pre{background:#f6f8fa;padding:8px;font-size:12px}
"""


def minmax_indices(values: npt.ArrayLike, max_points: int = MAX_CHART_POINTS) -> I64:
    """Sorted indices of at most ``max_points`` points: the ends plus each bucket's min and max."""
    series = np.asarray(values, dtype=np.float64)
    n = len(series)
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    buckets = max(1, (max_points - 2) // 2)
    edges = np.linspace(1, n - 1, buckets + 1).astype(np.int64)
    missing = np.isnan(series)
    low = np.where(missing, np.inf, series)
    high = np.where(missing, -np.inf, series)
    picks = [0, n - 1]
    for start, stop in itertools.pairwise(edges.tolist()):
        if stop > start:
            picks.append(int(start + np.argmin(low[start:stop])))
            picks.append(int(start + np.argmax(high[start:stop])))
    return np.unique(np.array(picks, dtype=np.int64))


def render_report_html(result: BacktestResult, run: Mapping[str, object]) -> str:
    """The whole page; the same inputs give the same text (fixed plot ids, no clock)."""
    metrics = compute_metrics(result)
    n_bars = len(result.equity)
    period = (
        f"{_time(int(result.bar_open_time_ms[0]))} → {_time(int(result.equity_time_ms[-1]))} UTC, "
        f"{n_bars:,} bars"
        if n_bars
        else "no bars"
    )
    title = f"Backtest {result.symbol} {result.timeframe}"
    final = float(result.equity[-1]) if n_bars else result.initial_equity
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_esc(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_esc(title)}</h1><p>{_esc(period)}</p>",
        "<h2>Metrics</h2>",
        _metrics_table(metrics, result.initial_equity, final),
        "<h2>Equity and drawdown</h2>",
        _figure_html(_equity_figure(result), "slt-equity", include_js=True),
        *_symbol_sections(result),
        "<h2>Monthly returns (%)</h2>",
        _monthly_table(monthly_returns(result)),
        "<h2>Trades</h2>",
        _trades_table(result.trades),
        "<h2>Run</h2>",
        f"<pre>{_esc(json.dumps(json_safe(run), indent=2, ensure_ascii=False))}</pre>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _figure_html(figure: go.Figure, div_id: str, include_js: bool) -> str:
    return str(
        figure.to_html(
            full_html=False,
            include_plotlyjs=include_js,
            div_id=div_id,
            config=PLOT_CONFIG,
        )
    )


def _equity_figure(result: BacktestResult) -> go.Figure:
    times = np.asarray(result.equity_time_ms, dtype=np.float64)
    equity = np.asarray(result.equity, dtype=np.float64)
    drawdown = -drawdown_pct(np.concatenate(([result.initial_equity], equity)))[1:]
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3])
    keep = minmax_indices(equity)
    figure.add_trace(
        go.Scatter(x=times[keep], y=equity[keep], name="Equity (USDT)", line={"width": 1.2}),
        row=1,
        col=1,
    )
    keep = minmax_indices(drawdown)
    figure.add_trace(
        go.Scatter(
            x=times[keep],
            y=drawdown[keep],
            name="Drawdown (%)",
            fill="tozeroy",
            line={"width": 1, "color": LOSS},
        ),
        row=2,
        col=1,
    )
    figure.update_yaxes(title_text="USDT", row=1, col=1)
    figure.update_yaxes(title_text="%", row=2, col=1)
    return _layout(figure, height=560)


def _symbol_sections(result: BacktestResult) -> list[str]:
    """Per symbol: its share of the run (a table, when there are several) and its chart."""
    parts: list[str] = []
    timeframe_ms = (
        int(result.equity_time_ms[0] - result.bar_open_time_ms[0]) if len(result.equity) else 0
    )
    if len(result.bars) > 1:
        parts += ["<h2>Per symbol</h2>", _per_symbol_table(result)]
    for k, bars in enumerate(result.bars):
        trades = tuple(t for t in result.trades if t.symbol == bars.symbol)
        heading = (
            "Price and trades" if len(result.bars) == 1 else f"{bars.symbol}: price and trades"
        )
        figure = _price_figure(bars, trades, timeframe_ms)
        div_id = "slt-price" if k == 0 else f"slt-price-{k}"
        parts += [f"<h2>{_esc(heading)}</h2>", _figure_html(figure, div_id, include_js=False)]
    return parts


def _per_symbol_table(result: BacktestResult) -> str:
    labels = (
        ("n_trades", "Trades", "{:,}"),
        ("win_rate", "Win rate", "{:.1%}"),
        ("profit_factor", "Profit factor", "{:.2f}"),
        ("net_pnl", "Net PnL (USDT)", "{:,.2f}"),
        ("net_pnl_pct_of_initial", "Net PnL (% of initial)", "{:+.2f} %"),
        ("exposure_pct", "Exposure", "{:.1f} %"),
        ("fees_paid", "Fees (USDT)", "{:,.2f}"),
        ("funding_paid", "Funding (USDT)", "{:,.2f}"),
    )
    head = "".join(f"<th>{_esc(label)}</th>" for _, label, _ in labels)
    rows = []
    for bars in result.bars:
        m = symbol_metrics(result, bars)
        cells = "".join(f"<td>{_esc(_fmt(m[key], spec))}</td>" for key, _, spec in labels)
        rows.append(f'<tr><th class="l">{_esc(bars.symbol)}</th>{cells}</tr>')
    return f'<table><tr><th class="l">Symbol</th>{head}</tr>{"".join(rows)}</table>'


def _price_figure(bars: SymbolBars, all_trades: Sequence[Trade], timeframe_ms: int) -> go.Figure:
    times = np.asarray(bars.bar_open_time_ms + timeframe_ms, dtype=np.float64)
    close = np.asarray(bars.close, dtype=np.float64)
    keep = minmax_indices(close)
    figure = go.Figure(
        go.Scatter(x=times[keep], y=close[keep], name="Close", line={"width": 1, "color": "#555"})
    )
    trades, note = _marked_trades(all_trades)
    # Hover details travel as numeric customdata (base64 in the page) and a template, not as
    # one preformatted string per marker: thousands of trades stay small.
    for side, symbol, colour in (("long", "triangle-up", LONG), ("short", "triangle-down", SHORT)):
        chosen = [t for t in trades if t.side == side]
        figure.add_trace(
            _markers(
                times=[t.entry_time_ms for t in chosen],
                prices=[t.entry_price for t in chosen],
                data=[(t.position_id, t.quantity, t.leverage, t.pnl, t.pnl_pct) for t in chosen],
                reasons=[t.exit_reason for t in chosen],
                name=f"{side.capitalize()} entry",
                marker={"symbol": symbol, "size": 9, "color": colour},
                template=ENTRY_HOVER,
            )
        )
    for won, colour, label in ((True, WIN, "Exit (win)"), (False, LOSS, "Exit (loss)")):
        fills = [(t, f) for t in trades if (t.pnl > 0) == won for f in t.exits]
        figure.add_trace(
            _markers(
                times=[f.time_ms for _, f in fills],
                prices=[f.price for _, f in fills],
                data=[(t.position_id, f.quantity, t.leverage, t.pnl, t.pnl_pct) for t, f in fills],
                reasons=[f.reason for _, f in fills],
                name=label,
                marker={"symbol": "x", "size": 8, "color": colour},
                template=EXIT_HOVER,
            )
        )
    figure.update_yaxes(title_text=f"{bars.symbol} close")
    if note:
        figure.update_layout(title_text=note, title_font_size=12)
    return _layout(figure, height=520)


def _layout(figure: go.Figure, height: int) -> go.Figure:
    # Times are ms since the epoch; a date axis reads numbers as exactly that.
    figure.update_xaxes(type="date")
    figure.update_layout(
        template="plotly_white",
        height=height,
        margin={"l": 60, "r": 20, "t": 40, "b": 40},
        hovermode="closest",
        legend={"orientation": "h", "y": 1.08},
    )
    return figure


def _marked_trades(trades: Sequence[Trade]) -> tuple[list[Trade], str]:
    if len(trades) <= MAX_MARKED_TRADES:
        return list(trades), ""
    half = MAX_MARKED_TRADES // 2
    note = f"Markers for the first and last {half:,} of {len(trades):,} trades"
    return [*trades[:half], *trades[-half:]], note


def _markers(
    times: Sequence[int],
    prices: Sequence[float],
    data: Sequence[tuple[float, ...]],
    reasons: Sequence[str],
    name: str,
    marker: Mapping[str, object],
    template: str,
) -> go.Scatter:
    return go.Scatter(
        x=np.asarray(times, dtype=np.float64),
        y=np.asarray(prices, dtype=np.float64),
        customdata=np.asarray(data, dtype=np.float64).reshape(len(data), 5),
        text=list(reasons),
        mode="markers",
        name=name,
        marker=dict(marker),
        hovertemplate=template,
    )


def _metrics_table(metrics: Mapping[str, Any], initial: float, final: float) -> str:
    rows = [
        ("Initial equity", f"{initial:,.2f} USDT"),
        ("Final equity", _fmt(final, "{:,.2f} USDT")),
    ]
    rows += [(label, _fmt(metrics[key], spec)) for key, label, spec in METRIC_ROWS]
    body = "".join(f'<tr><th class="l">{_esc(k)}</th><td>{_esc(v)}</td></tr>' for k, v in rows)
    return f"<table>{body}</table>"


def _monthly_table(months: Iterable[tuple[str, float]]) -> str:
    by_year: dict[str, dict[int, float]] = {}
    for label, pct in months:
        year, month = label.split("-")
        by_year.setdefault(year, {})[int(month)] = pct
    if not by_year:
        return '<p class="note">No bars.</p>'
    head = "".join(f"<th>{m}</th>" for m in MONTHS)
    rows = []
    for year, values in by_year.items():
        cells = "".join(_pct_cell(values.get(m)) for m in range(1, 13))
        total = (math.prod(1.0 + v / 100.0 for v in values.values()) - 1.0) * 100.0
        rows.append(f'<tr><th class="l">{year}</th>{cells}{_pct_cell(total)}</tr>')
    return f'<table><tr><th class="l">Year</th>{head}<th>Year</th></tr>{"".join(rows)}</table>'


def _pct_cell(value: float | None) -> str:
    if value is None:
        return "<td></td>"
    if not math.isfinite(value):
        return "<td>n/a</td>"
    alpha = min(abs(value) / 20.0, 1.0) * 0.6 + 0.05  # 20 % in a month is full colour
    rgb = "26,152,80" if value >= 0 else "215,48,39"
    return f'<td style="background:rgba({rgb},{alpha:.2f})">{value:+.2f}</td>'


TRADE_COLUMNS = (
    "#",
    "Side",
    "Entry (UTC)",
    "Entry price",
    "Exit (UTC)",
    "Exit price",
    "Quantity",
    "Leverage",
    "PnL (USDT)",
    "PnL %",
    "Fees",
    "Funding",
    "Exit reason",
    "Fills",
)


def _trades_table(trades: Sequence[Trade]) -> str:
    if not trades:
        return '<p class="note">No trades.</p>'
    if len(trades) > 2 * TRADE_TABLE_EDGE:
        shown = [*trades[:TRADE_TABLE_EDGE], None, *trades[-TRADE_TABLE_EDGE:]]
        note = (
            f'<p class="note">Showing the first and last {TRADE_TABLE_EDGE:,} of '
            f"{len(trades):,} trades; report.json has all of them.</p>"
        )
    else:
        shown, note = list(trades), ""
    head = "".join(f"<th>{c}</th>" for c in TRADE_COLUMNS)
    gap = f'<tr><td class="l" colspan="{len(TRADE_COLUMNS)}">…</td></tr>'
    rows = "".join(gap if t is None else _trade_row(t) for t in shown)
    return f'{note}<div class="scroll"><table><tr>{head}</tr>{rows}</table></div>'


def _trade_row(t: Trade) -> str:
    tone = "pos" if t.pnl > 0 else "neg"
    cells = (
        str(t.position_id),
        _esc(t.side),
        _time(t.entry_time_ms),
        _num(t.entry_price),
        _time(t.exit_time_ms),
        _num(t.exit_price),
        _num(t.quantity),
        f"{t.leverage:g}",
        f'<span class="{tone}">{t.pnl:+,.2f}</span>',
        f'<span class="{tone}">{t.pnl_pct:+.2f}</span>',
        f"{t.fees:,.2f}",
        f"{t.funding:,.2f}",
        _esc(t.exit_reason),
        str(len(t.exits)),
    )
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return spec.format(value)


def _num(value: float) -> str:
    return f"{value:.8g}"


def _time(time_ms: int) -> str:
    return iso_utc(time_ms)[:16].replace("T", " ")


def _esc(text: str) -> str:
    return html.escape(text, quote=False)
