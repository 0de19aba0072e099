"""Metrics on tiny hand-made equity curves and trades; every number is worked out in a comment."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from slt.domain.metrics import (
    METRIC_KEYS,
    SYMBOL_METRIC_KEYS,
    compute_metrics,
    daily_returns,
    drawdown_pct,
    monthly_returns,
    symbol_metrics,
)
from slt.domain.results import BacktestResult, ExitFill, SymbolBars, Trade

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
HOUR = 3_600_000
DAY = 24 * HOUR


def result(
    equity: list[float],
    step_ms: int = 12 * HOUR,
    initial: float = 1_000.0,
    trades: tuple[Trade, ...] = (),
    in_position: list[bool] | None = None,
    start_ms: int = T0,
) -> BacktestResult:
    n = len(equity)
    opens = start_ms + step_ms * np.arange(n, dtype=np.int64)
    return BacktestResult(
        symbols=("TESTUSDT",),
        timeframe="12h",
        initial_equity=initial,
        trades=trades,
        equity_time_ms=opens + step_ms,
        equity=np.array(equity, dtype=np.float64),
        in_position=np.array(in_position or [False] * n, dtype=np.bool_),
        close=np.full(n, 100.0),
        bar_open_time_ms=opens,
    )


def trade(pnl: float, fees: float = 0.0, funding: float = 0.0) -> Trade:
    fill = ExitFill(time_ms=T0 + HOUR, price=101.0, quantity=1.0, reason="take_profit", fee=fees)
    return Trade(
        position_id=1,
        symbol="TESTUSDT",
        side="long",
        entry_time_ms=T0,
        entry_price=100.0,
        exit_time_ms=T0 + HOUR,
        exit_price=101.0,
        quantity=1.0,
        leverage=1.0,
        margin=100.0,
        pnl=pnl,
        pnl_pct=pnl,
        fees=fees,
        funding=funding,
        exit_reason="take_profit",
        signal_time_ms=T0 - HOUR,
        exits=(fill,),
    )


# Three UTC days of 12h bars from 1,000 USDT; day ends (2nd bar of each day): 1100, 990, 1155.
THREE_DAYS = [1010.0, 1100.0, 1050.0, 990.0, 1030.0, 1155.0]
TRADES = (
    trade(100.0, fees=1.0, funding=0.3),
    trade(-60.0, fees=2.0, funding=-0.1),
    trade(30.0, fees=0.5),
    trade(-20.0, fees=0.5, funding=0.2),
    trade(0.0, fees=1.0, funding=-0.5),
)


def test_metrics_have_exactly_the_documented_keys_in_order() -> None:
    assert tuple(compute_metrics(result(THREE_DAYS))) == METRIC_KEYS


def test_total_return_runs_from_the_initial_to_the_last_equity() -> None:
    # 1155 / 1000 - 1 = 15.5 %
    assert compute_metrics(result(THREE_DAYS))["total_return_pct"] == pytest.approx(15.5)


def test_daily_returns_use_the_last_close_of_each_utc_day_after_the_initial_equity() -> None:
    # points 1000, 1100, 990, 1155 -> +10 %, -10 %, 1155/990 - 1 = 1/6
    assert daily_returns(result(THREE_DAYS)) == pytest.approx([0.1, -0.1, 1 / 6])


def test_a_bar_that_closes_at_midnight_belongs_to_the_day_it_opened() -> None:
    # 1h bars opening 22:00 and 23:00 on Jan 1 (the 23:00 bar closes at 00:00 Jan 2), then 00:00.
    # Day ends: 1200 (Jan 1), 1260 (Jan 2) -> +20 %, +5 %.
    r = result([1100.0, 1200.0, 1260.0], step_ms=HOUR, start_ms=T0 + 22 * HOUR)
    assert daily_returns(r) == pytest.approx([0.2, 0.05])


def test_sharpe_is_the_mean_over_the_sample_std_of_daily_returns_times_sqrt_365() -> None:
    # mean = (0.1 - 0.1 + 1/6) / 3 = 1/18; deviations 2/45, -7/45, 5/45 -> squares sum 78/2025,
    # sample variance 78/4050, std 0.1387777; 0.0555556 / 0.1387777 * sqrt(365) = 7.648110
    assert compute_metrics(result(THREE_DAYS))["sharpe"] == pytest.approx(7.648110207)


def test_sortino_divides_by_the_root_mean_square_of_the_negative_daily_returns() -> None:
    # downside = sqrt((0 + 0.01 + 0) / 3) = 0.0577350; 0.0555556 / 0.0577350 * sqrt(365) = 18.38377
    assert compute_metrics(result(THREE_DAYS))["sortino"] == pytest.approx(18.383769009)


def test_cagr_compounds_the_total_return_over_the_span_in_years_of_365_25_days() -> None:
    # span = first open -> last close = 3 days = 3/365.25 years; 1.155^(365.25/3) - 1 = 41,625,222 x
    assert compute_metrics(result(THREE_DAYS))["cagr_pct"] == pytest.approx(4_162_522_263.2579)


def test_cagr_over_two_years_is_the_geometric_yearly_rate() -> None:
    # 2,922 bars of 6h = 730.5 days = 2 years; 1210 / 1000 = 1.1^2 -> 10 % a year
    equity = [1_000.0] * 2_921 + [1_210.0]
    assert compute_metrics(result(equity, step_ms=6 * HOUR))["cagr_pct"] == pytest.approx(10.0)


def test_max_drawdown_is_the_deepest_fall_from_the_running_peak() -> None:
    # peaks 1010, 1100, 1100, 1100, ...; deepest point 990: (1100 - 990) / 1100 = 10 %
    assert compute_metrics(result(THREE_DAYS))["max_drawdown_pct"] == pytest.approx(10.0)


def test_max_drawdown_counts_a_fall_below_the_initial_equity() -> None:
    # the initial 1000 is the first peak: 900 is 10 % below it
    assert compute_metrics(result([900.0, 950.0]))["max_drawdown_pct"] == pytest.approx(10.0)


def test_drawdown_is_a_positive_percent_of_the_running_peak() -> None:
    # peaks 100, 120, 120, 130, 130 -> 0, 0, 30/120 = 25 %, 0, 65/130 = 50 %
    assert drawdown_pct([100.0, 120.0, 90.0, 130.0, 65.0]) == pytest.approx([0, 0, 25, 0, 50])


def test_trade_metrics_come_from_net_trade_pnl_fees_and_funding() -> None:
    # wins 100 + 30 = 130, losses -60 - 20 = -80 -> profit factor 130 / 80 = 1.625
    # 2 of 5 trades have pnl > 0 (the zero trade is not a win) -> win rate 0.4
    # fees 1 + 2 + 0.5 + 0.5 + 1 = 5; funding 0.3 - 0.1 + 0 + 0.2 - 0.5 = -0.1 (received)
    m = compute_metrics(result(THREE_DAYS, trades=TRADES))
    assert m["profit_factor"] == pytest.approx(1.625)
    assert m["win_rate"] == pytest.approx(0.4)
    assert m["n_trades"] == 5
    assert m["fees_paid"] == pytest.approx(5.0)
    assert m["funding_paid"] == pytest.approx(-0.1)


def test_exposure_is_the_percent_of_bars_in_a_position() -> None:
    # 3 of 6 bars in position -> 50 %
    flags = [True, True, False, False, True, False]
    assert compute_metrics(result(THREE_DAYS, in_position=flags))["exposure_pct"] == 50.0


def test_monthly_returns_chain_month_end_equities_from_the_initial_equity() -> None:
    # 12h bars opening Jan 31 00:00, Jan 31 12:00, Feb 1 00:00, Feb 1 12:00.
    # Jan: 1100 / 1000 = +10 %; Feb: 1320 / 1100 = +20 %
    r = result([1050.0, 1100.0, 1200.0, 1320.0], start_ms=T0 + 30 * DAY)
    months = monthly_returns(r)
    assert [m for m, _ in months] == ["2024-01", "2024-02"]
    assert [p for _, p in months] == pytest.approx([10.0, 20.0])


def test_ratios_need_at_least_two_days_and_cagr_a_day_of_history() -> None:
    # 12h of bars: one day end, one daily return, span 12h < 1 day
    m = compute_metrics(result([1010.0]))
    assert (m["sharpe"], m["sortino"], m["cagr_pct"]) == (None, None, None)


def test_flat_equity_has_no_sharpe_and_no_sortino() -> None:
    m = compute_metrics(result([1_000.0] * 6))
    assert (m["sharpe"], m["sortino"]) == (None, None)
    assert m["max_drawdown_pct"] == 0.0


def test_sortino_is_undefined_without_a_losing_day() -> None:
    # day ends 1100, 1265: +10 %, +15 %; mean 0.125, sample std sqrt(0.00125) = 0.0353553,
    # Sharpe 0.125 / 0.0353553 * sqrt(365) = 67.54628, but no negative day for Sortino
    m = compute_metrics(result([1050.0, 1100.0, 1150.0, 1265.0]))
    assert m["sortino"] is None
    assert m["sharpe"] == pytest.approx(67.546280)


def test_profit_factor_is_undefined_without_a_losing_trade_and_win_rate_without_trades() -> None:
    assert compute_metrics(result(THREE_DAYS, trades=(trade(5.0),)))["profit_factor"] is None
    empty = compute_metrics(result(THREE_DAYS))
    assert (empty["win_rate"], empty["profit_factor"], empty["n_trades"]) == (None, None, 0)
    assert (empty["fees_paid"], empty["funding_paid"]) == (0.0, 0.0)


def test_only_losing_trades_give_a_profit_factor_of_zero() -> None:
    m = compute_metrics(result(THREE_DAYS, trades=(trade(-5.0), trade(-1.0))))
    assert (m["profit_factor"], m["win_rate"]) == (0.0, 0.0)


def test_per_symbol_metrics_count_only_that_symbol_s_trades_and_bars() -> None:
    # Two symbols from one 1,000 USDT account. AAA: +100 (fees 1, funding 0.3) and -60 (fees 2,
    # funding -0.1), one long and one short, in a position 3 of its 4 bars. BBB: +30, fees 0.5.
    def of(symbol: str, pnl: float, side: str, fees: float, funding: float) -> Trade:
        return trade(pnl, fees, funding)._replace(symbol=symbol, side=side, pnl_pct=pnl / 10)

    trades = (
        of("AAAUSDT", 100.0, "long", 1.0, 0.3),
        of("BBBUSDT", 30.0, "long", 0.5, 0.0),
        of("AAAUSDT", -60.0, "short", 2.0, -0.1),
    )
    opens = T0 + 12 * HOUR * np.arange(4, dtype=np.int64)
    aaa = SymbolBars("AAAUSDT", opens, np.full(4, 100.0), np.array([True, True, False, True]))
    bbb = SymbolBars("BBBUSDT", opens, np.full(4, 50.0), np.array([False, True, False, False]))
    base = result([1000.0, 1100.0, 1040.0, 1070.0], trades=trades)
    two = dataclasses.replace(base, symbols=("AAAUSDT", "BBBUSDT"), bars=(aaa, bbb))

    a = symbol_metrics(two, aaa)
    assert list(a) == list(SYMBOL_METRIC_KEYS)
    assert a["n_trades"] == 2
    assert a["win_rate"] == 0.5
    assert a["profit_factor"] == pytest.approx(100.0 / 60.0)
    assert a["net_pnl"] == pytest.approx(40.0)
    assert a["net_pnl_pct_of_initial"] == pytest.approx(4.0)  # 40 of 1,000
    assert a["avg_trade_pnl_pct"] == pytest.approx((10.0 - 6.0) / 2)
    assert (a["long_trades"], a["short_trades"]) == (1, 1)
    assert a["exposure_pct"] == pytest.approx(75.0)
    assert a["fees_paid"] == pytest.approx(3.0)
    assert a["funding_paid"] == pytest.approx(0.2)

    b = symbol_metrics(two, bbb)
    assert (b["n_trades"], b["win_rate"], b["profit_factor"]) == (1, 1.0, None)  # none lost
    assert b["net_pnl"] == pytest.approx(30.0)
    assert b["exposure_pct"] == pytest.approx(25.0)
