"""Our engine and backtesting.py make the same trades under the issue's EMA-cross rules.

The rules: EMA 12/26 cross on closes, long and short, market entry at the next open, stop 1 %
and target 2 % from the fill price, the opposite cross closes and reverses at the next open,
0.05 % fee per side, 1x, one position, no funding, slippage or time stop, all equity per trade.

How backtesting.py 0.6 is set up to trade by the same rules (from its source, `_Broker`):
- sl/tp are absolute prices fixed when the order is placed; we set them from the next bar's
  open (the fill price of the market order) and round them to the 0.1 tick, as ours does.
- It trades whole units: cash is equity / step size, so one unit is one 0.001 BTC lot and
  its money figures are ours times 1,000; prices are untouched, so fills compare exactly.
- margin=0.5 only stops it cancelling an all-in order whose fee (or an open above the signal
  close) makes it a hair larger than the cash; the trade is still 1x equity.
- The opposite cross calls `position.close()`, whose order goes to the front of the queue:
  it fills at the open before the old stop is looked at, as ours does.
- Its stop order sits before the target in the queue, so a bar through both fills the stop
  (ours assumes the worst without 1m data); a gap through a level fills at the open (both).
- It closes a position still open at the end at the last bar's open, ours at the last close.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
import talib
from backtesting import Backtest, Strategy
from tests.conftest import CATMAN_BTC_5M, PEER_RULES_FILE, real_ohlcv

from slt.domain.results import BacktestResult, MarketData
from slt.domain.series import Candles, Market, SeriesKey
from slt.domain.strategies.registry import builtin_strategy
from slt.domain.trading.margin_nb import floor_to_step_nb, round_price_nb
from slt.domain.trading.symbol_rules import symbol_rules
from slt.engine.backtest import run_backtest
from slt.engine.pipeline import ScoredSignals, confidence_from_score, stop_distances
from slt.runtime.trading_config_file import load_trading_config

F64 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int8]
RULES = symbol_rules("BTCUSDT")
TIMEFRAME_MS = 300_000
CONFIG = load_trading_config(PEER_RULES_FILE)
STOP_PCT, TARGET_PCT = CONFIG.exits.stop_loss_pct, CONFIG.exits.take_profit_pct
FEE_PCT = CONFIG.costs.taker_fee_pct
# Large enough that the exchange's 100 USDT minimum and the 0.001 BTC lot never bind.
INITIAL_EQUITY = CONFIG.initial_equity


class IssueRules(Strategy):  # type: ignore[misc]  # backtesting ships no type hints
    """The issue's rules as a backtesting.py strategy, fed a direction per bar."""

    direction: ClassVar[Any] = None  # set per run through Backtest.run(direction=...)
    opens: ClassVar[Any] = None

    def init(self) -> None:
        pass

    def next(self) -> None:
        i = len(self.data) - 1
        side = int(self.direction[i])
        if side == 0 or i + 1 >= len(self.opens):
            return
        if self.position.size * side < 0:
            self.position.close()
        close = float(self.data.Close[-1])
        quantity = floor_to_step_nb(self.equity * RULES.step_size / close, RULES.step_size)
        if quantity <= 0 or quantity * close < RULES.min_notional:
            return
        fill = float(self.opens[i + 1])
        stop = round_price_nb(fill * (1.0 - side * STOP_PCT / 100.0), RULES.tick_size)
        target = round_price_nb(fill * (1.0 + side * TARGET_PCT / 100.0), RULES.tick_size)
        order = self.buy if side > 0 else self.sell
        order(size=round(quantity / RULES.step_size), sl=stop, tp=target)


@dataclass(frozen=True)
class Fill:
    """One closed trade as both engines can report it; money in USDT."""

    side: int
    entry_time_ms: int
    entry_price: float
    exit_time_ms: int
    exit_price: float
    quantity: float
    pnl: float
    pnl_pct: float


def candles_of(times: npt.NDArray[np.int64], o: F64, h: F64, low: F64, c: F64) -> Candles:
    key = SeriesKey("BTCUSDT", Market.FUTURES, "5m")
    return Candles.from_arrays(key, times, o, h, low, c, np.ones(len(times)))


def ours(candles: Candles, direction: I8) -> tuple[BacktestResult, list[Fill]]:
    data = MarketData(candles, int(candles.open_time_ms[0]), RULES)
    score = np.where(direction != 0, 0.5, 0.0)
    engine = CONFIG.engine()
    signals = ScoredSignals(
        direction, score, stop_distances(engine.stops, candles), confidence_from_score(score),
        np.ones(len(direction), dtype=np.bool_), np.full(len(direction), np.nan),
    )  # fmt: skip
    result, _ = run_backtest(data, signals, engine)
    fills = []
    for t in result.trades:
        assert len(t.exits) == 1  # no partial exits under these rules
        fills.append(
            Fill(
                1 if t.side == "long" else -1,
                t.entry_time_ms,
                t.entry_price,
                t.exit_time_ms,
                t.exits[0].price,  # the fill itself: exit_price is a qty-weighted mean
                t.quantity,
                t.pnl,
                t.pnl_pct,
            )
        )
    return result, fills


def backtesting_py(candles: Candles, direction: I8) -> tuple[float, list[Fill]]:
    """(final equity, trades) of backtesting.py, converted back to USDT and 0.001 BTC lots."""
    frame = pd.DataFrame(
        {
            "Open": candles.open,
            "High": candles.high,
            "Low": candles.low,
            "Close": candles.close,
            "Volume": candles.volume,
        },
        index=pd.to_datetime(candles.open_time_ms, unit="ms"),
    )
    step = RULES.step_size
    run = Backtest(
        frame,
        IssueRules,
        cash=INITIAL_EQUITY / step,
        commission=FEE_PCT / 100,
        margin=0.5,
        finalize_trades=True,
    )
    with warnings.catch_warnings():
        # Its statistics call a pandas accessor that pandas 3 deprecates; not our code.
        warnings.filterwarnings("ignore", message="DatetimeIndex.dayofweek is deprecated")
        stats = run.run(direction=direction, opens=candles.open)
    times = candles.open_time_ms
    fills = [
        Fill(
            1 if row.Size > 0 else -1,
            int(times[row.EntryBar]),
            float(row.EntryPrice),
            int(times[row.ExitBar]),
            float(row.ExitPrice),
            abs(row.Size) * step,
            float(row.PnL) * step,
            float(row.ReturnPct) * 100,
        )
        for row in stats["_trades"].itertuples()
    ]
    return float(stats["Equity Final [$]"]) * step, fills


def ta_lib_crosses(close: F64) -> I8:
    """EMA 12/26 crossings computed independently of our kernels, with TA-Lib."""
    fast, slow = talib.EMA(close, 12), talib.EMA(close, 26)
    above, at_or_below = fast > slow, fast <= slow
    direction = np.zeros(len(close), dtype=np.int8)
    direction[1:][above[1:] & at_or_below[:-1]] = 1
    direction[1:][(fast < slow)[1:] & (fast >= slow)[:-1]] = -1
    return direction


@cache
def real() -> tuple[Candles, I8, BacktestResult, list[Fill], float, list[Fill]]:
    raw = real_ohlcv(CATMAN_BTC_5M)
    candles = candles_of(raw.times_ms, raw.open, raw.high, raw.low, raw.close)
    direction = builtin_strategy("ema_cross").signals(candles, None).direction
    result, our_fills = ours(candles, direction)
    peer_equity, peer_fills = backtesting_py(candles, ta_lib_crosses(candles.close))
    return candles, direction, result, our_fills, peer_equity, peer_fills


@pytest.mark.shared_data
def test_our_ema_cross_signals_equal_an_independent_ta_lib_crossover() -> None:
    candles, direction, *_ = real()
    assert np.array_equal(direction, ta_lib_crosses(candles.close))
    assert (direction != 0).sum() > 5_000


@pytest.mark.shared_data
def test_both_engines_make_the_same_trades_on_the_full_btcusdt_5m_futures_file() -> None:
    _, _, _, our_fills, _, peer_fills = real()
    assert len(our_fills) == len(peer_fills) > 5_000
    for mine, theirs in zip(our_fills[:-1], peer_fills[:-1], strict=True):
        assert (mine.side, mine.entry_time_ms, mine.exit_time_ms) == (
            theirs.side,
            theirs.entry_time_ms,
            theirs.exit_time_ms,
        )
        assert (mine.entry_price, mine.exit_price) == (theirs.entry_price, theirs.exit_price)
        assert mine.quantity == pytest.approx(theirs.quantity, rel=1e-12)


@pytest.mark.shared_data
def test_every_trade_earns_the_same_percent_and_cash_after_fees_in_both_engines() -> None:
    _, _, _, our_fills, _, peer_fills = real()
    for mine, theirs in zip(our_fills[:-1], peer_fills[:-1], strict=True):
        assert mine.pnl_pct == pytest.approx(theirs.pnl_pct, abs=1e-9)
        assert mine.pnl == pytest.approx(theirs.pnl, rel=1e-9, abs=1e-6)


@pytest.mark.shared_data
def test_the_position_left_open_ends_at_the_last_close_here_and_last_open_there() -> None:
    candles, _, result, our_fills, peer_equity, peer_fills = real()
    mine, theirs = our_fills[-1], peer_fills[-1]
    last = len(candles) - 1
    assert result.trades[-1].exit_reason == "end_of_data"
    assert (mine.side, mine.entry_time_ms, mine.entry_price) == (
        theirs.side,
        theirs.entry_time_ms,
        theirs.entry_price,
    )
    assert mine.quantity == pytest.approx(theirs.quantity, rel=1e-12)
    assert (mine.exit_time_ms, mine.exit_price) == (
        candles.open_time_ms[last] + TIMEFRAME_MS,
        candles.close[last],
    )
    assert (theirs.exit_time_ms, theirs.exit_price) == (
        candles.open_time_ms[last],
        candles.open[last],
    )
    # That last exit is the whole difference in the final equity.
    assert result.equity[-1] - peer_equity == pytest.approx(mine.pnl - theirs.pnl, rel=1e-6)
    assert result.equity[-1] / INITIAL_EQUITY == pytest.approx(
        1 + sum(f.pnl for f in our_fills) / INITIAL_EQUITY, rel=1e-12
    )


@pytest.mark.shared_data
def test_all_in_sizing_puts_the_whole_equity_at_the_signal_close_into_each_trade() -> None:
    candles, _, result, *_ = real()
    bar = np.searchsorted(candles.open_time_ms, [t.signal_time_ms for t in result.trades])
    notional = np.array([t.quantity for t in result.trades]) * candles.close[bar]
    share = notional / result.equity[bar]
    assert share.max() <= 1.0
    assert share.min() > 1.0 - 1e-4  # one 0.001 BTC lot below all of it, at most
    assert {t.leverage for t in result.trades} == {1.0}


@pytest.mark.shared_data
def test_the_real_data_run_has_stops_targets_reversals_and_exits_in_the_entry_bar() -> None:
    _, _, result, *_ = real()
    reasons = [t.exit_reason for t in result.trades]
    in_entry_bar = [t for t in result.trades if t.exit_time_ms == t.entry_time_ms]
    assert reasons.count("stop_loss") > 50
    assert reasons.count("take_profit") > 100
    assert reasons.count("opposite_signal") > 4_000
    assert reasons.count("end_of_data") == 1
    assert len(in_entry_bar) >= 5


# Hand-made bars for the cases the real file has few or none of (5m crypto bars open at the
# previous close, so it has no gap through a level). Bar 0 is quiet; backtesting.py calls the
# strategy from bar 1, so the first signal is at bar 1's close and the entry at bar 2's open.
BASE = 20_000.0
QUIET = (BASE, BASE + 10, BASE - 10, BASE)
CASES = {
    # name: (bars after bar 0 as (open, high, low, close), direction per bar, exit price, bar)
    "a bar through both stop and target fills the stop": (
        [QUIET, QUIET, (BASE, 20_500.0, 19_700.0, BASE), QUIET],
        [0, 1, 0, 0, 0],
        19_800.0,
        3,
    ),
    "a gap through the stop fills at the open": (
        [QUIET, QUIET, (19_700.0, 19_750.0, 19_600.0, 19_700.0), QUIET],
        [0, 1, 0, 0, 0],
        19_700.0,
        3,
    ),
    "a gap through the target fills at the open": (
        [QUIET, QUIET, (20_500.0, 20_600.0, 20_450.0, 20_500.0), QUIET],
        [0, 1, 0, 0, 0],
        20_500.0,
        3,
    ),
    "the stop acts in the entry bar": (
        [QUIET, (BASE, BASE + 10, 19_750.0, 19_900.0), QUIET],
        [0, 1, 0, 0],
        19_800.0,
        2,
    ),
    "an opposite cross exits at the open before the old stop is touched": (
        [QUIET, QUIET, (19_900.0, 19_950.0, 19_700.0, 19_800.0), QUIET],
        [0, 1, -1, 0, 0],
        19_900.0,
        3,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_both_engines_fill_the_intrabar_cases_the_same_way(case: str) -> None:
    bars, direction, exit_price, exit_bar = CASES[case]
    rows = np.array([QUIET, *bars, QUIET], dtype=np.float64)
    times = 1_700_000_000_000 + TIMEFRAME_MS * np.arange(len(rows), dtype=np.int64)
    candles = candles_of(times, rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3])
    signals = np.zeros(len(rows), dtype=np.int8)
    signals[: len(direction)] = direction
    _, our_fills = ours(candles, signals)
    _, peer_fills = backtesting_py(candles, signals)
    first, theirs = our_fills[0], peer_fills[0]
    assert (first.entry_time_ms, first.entry_price) == (int(times[2]), BASE)
    assert (first.exit_time_ms, first.exit_price) == (int(times[exit_bar]), exit_price)
    assert (theirs.entry_time_ms, theirs.exit_time_ms) == (first.entry_time_ms, first.exit_time_ms)
    assert (theirs.entry_price, theirs.exit_price) == (first.entry_price, first.exit_price)
    assert math.isclose(theirs.pnl_pct, first.pnl_pct, abs_tol=1e-9)
