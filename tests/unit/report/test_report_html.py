"""report.html: offline, plotly.js once, downsampled series, every section present."""

from __future__ import annotations

import re

import numpy as np
import pytest

from slt.adapters.report.report_html import MAX_CHART_POINTS, minmax_indices, render_report_html
from slt.domain.results import BacktestResult, SymbolBars
from tests.conftest import CATMAN_BTC_5M, real_ohlcv
from tests.unit.report.sample import RUN, sample_result, sample_trade

PLOTLY_BANNER = "* plotly.js v"


def test_html_loads_no_script_from_the_network() -> None:
    page = render_report_html(sample_result(), RUN)
    assert re.search(r"<script[^>]*\ssrc\s*=", page) is None
    assert re.search(r"<link[^>]*https?://", page) is None


def test_html_embeds_the_plotly_bundle_exactly_once() -> None:
    page = render_report_html(sample_result(), RUN)
    assert page.count(PLOTLY_BANNER) == 1
    assert len(page) > 4_000_000  # the bundle itself


def test_the_same_input_gives_identical_html() -> None:
    assert render_report_html(sample_result(), RUN) == render_report_html(sample_result(), RUN)


def test_html_has_metrics_charts_monthly_returns_trades_and_run() -> None:
    page = render_report_html(sample_result(), RUN)
    for text in ("Total return", "Max drawdown", "slt-equity", "slt-price", "2024", "Run"):
        assert text in page
    assert '"symbol":"triangle-up"' in page  # long entry
    assert '"symbol":"triangle-down"' in page  # short entry
    assert '"partial_take_profit"' in page  # exit reason for the hover text
    assert '"stop_loss"' in page


def test_long_trade_lists_show_their_first_and_last_500_rows_and_say_so() -> None:
    trades = tuple(sample_trade(i) for i in range(1, 1_201))
    page = render_report_html(sample_result(trades=trades), RUN)
    assert "Showing the first and last 500 of 1,200 trades" in page
    table = page[page.index("<h2>Trades</h2>") :]
    assert table.count("<tr><td>") == 1_000


def test_minmax_downsampling_keeps_the_ends_and_a_lone_spike() -> None:
    values = np.sin(np.arange(100_000) / 1_000.0)
    values[54_321] = 50.0
    values[77_777] = -50.0
    keep = minmax_indices(values)
    assert len(keep) <= MAX_CHART_POINTS
    assert {0, 54_321, 77_777, 99_999} <= set(keep.tolist())
    assert np.all(np.diff(keep) > 0)


def test_short_series_are_not_downsampled() -> None:
    assert minmax_indices(np.arange(10.0)).tolist() == list(range(10))


@pytest.mark.shared_data
def test_a_full_real_btc_5m_history_gives_a_page_of_reasonable_size() -> None:
    rows = real_ohlcv(CATMAN_BTC_5M)
    close = np.asarray(rows.close, dtype=np.float64)
    opens = np.asarray(rows.times_ms, dtype=np.int64)
    held = np.zeros(len(close), dtype=np.bool_)
    result = BacktestResult(
        symbols=("TESTUSDT",),  # the sample trades' symbol, so all 3,000 are on the chart
        timeframe="5m",
        initial_equity=10_000.0,
        trades=tuple(sample_trade(i) for i in range(1, 3_001)),
        equity_time_ms=opens + 300_000,
        equity=10_000.0 * close / close[0],
        in_position=held,
        close=close,
        bar_open_time_ms=opens,
        bars=(SymbolBars("TESTUSDT", opens, close, held),),
    )
    page = render_report_html(result, RUN)
    assert len(close) > 100_000
    # plotly.js is ~4.9 MB; the charts of 140k bars and 3,000 trades add well under 2 MB.
    assert len(page.encode()) < 7_000_000


def test_a_backtest_without_trades_renders_and_says_so() -> None:
    page = render_report_html(sample_result(trades=()), RUN)
    assert "No trades." in page
    assert page.count(PLOTLY_BANNER) == 1
