"""Invariants over random markets, signals, configurations and exchange behaviour (hypothesis).

Every case runs through both drivers (``scenario.both`` fails unless they agree trade for
trade and in equity) and the event wiring is watched after every event. The generator mixes
what live trading meets: several symbols sharing one account, holes in the data, 1m candles,
fills split into several trades, duplicated fills, cancels that arrive late, rejected entries
and stops, and model changes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.engine.scenario import FIVE_MIN, T0, both, funding_rates, rules_for, signals_for

from slt.domain.results import MarketData
from slt.domain.series import Candles, Market, SeriesKey
from slt.engine.backtest import ModelChange
from slt.engine.config import EngineConfig
from slt.engine.exchange_nb import _levels_view_nb
from slt.engine.messages import (
    CandleClosed,
    Command,
    Event,
    OrderFilled,
    Persist,
    PlaceOrder,
)
from slt.engine.orders_nb import is_live_nb
from slt.engine.records import CLOSE, ENTRY, STOP
from slt.engine.sim_exchange import SimulatedExchange
from slt.engine.state import PortfolioState
from slt.engine.venue import Faults
from slt.runtime.trading_config import TradingConfig

MINUTE = 60_000


def _walk(rng: np.random.Generator, n: int, vol: float) -> np.ndarray:
    jumps = rng.random(n) < 0.03
    ret = rng.normal(0, vol, n) + jumps * rng.normal(0, 6 * vol, n)
    return 100 * np.exp(np.cumsum(ret))


@st.composite
def symbol_markets(draw: st.DrawFn, symbol: str) -> tuple[Candles, Candles | None, list[int]]:
    """5m candles (built from a 1m path, so 1m candles can resolve them), with holes."""
    n = draw(st.integers(30, 120))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    vol = draw(st.sampled_from([0.001, 0.003, 0.008]))
    minute_close = _walk(rng, 5 * n, vol)
    minute_open = np.concatenate(([100.0], minute_close[:-1]))
    wick = np.abs(rng.normal(0, vol / 2, (2, 5 * n)))
    minute_high = np.maximum(minute_open, minute_close) * (1 + wick[0])
    minute_low = np.minimum(minute_open, minute_close) * (1 - wick[1])
    minute_times = T0 + MINUTE * np.arange(5 * n, dtype=np.int64)
    keep = rng.random(n) >= draw(st.sampled_from([0.0, 0.05, 0.15]))  # holes in the data
    keep[0] = keep[-1] = True
    rows, times = [], []
    for i in np.flatnonzero(keep):
        a, b = 5 * i, 5 * i + 5
        rows.append((minute_open[a], minute_high[a:b].max(), minute_low[a:b].min(),
                     minute_close[b - 1]))  # fmt: skip
        times.append(int(minute_times[a]))
    arr = np.array(rows)
    key = SeriesKey(symbol, Market.FUTURES, "5m")
    bars = Candles.from_arrays(key, np.array(times), *arr.T, np.ones(len(rows)))
    minute = None
    if draw(st.booleans()):
        mkey = SeriesKey(symbol, Market.FUTURES, "1m")
        minute = Candles.from_arrays(mkey, minute_times, minute_open, minute_high, minute_low,
                                     minute_close, np.ones(5 * n))  # fmt: skip
    p = draw(st.sampled_from([0.05, 0.2, 0.5]))
    signals = [int(x) for x in rng.choice([-1, 0, 1], size=len(rows), p=[p / 2, 1 - p, p / 2])]
    return bars, minute, signals


@st.composite
def configs(draw: st.DrawFn) -> EngineConfig:
    lev_max = draw(st.sampled_from([1, 3, 10, 20]))
    exits: dict[str, object] = {
        "stop_loss_pct": draw(st.sampled_from([0.5, 1.0, 2.0])),
        "take_profit_pct": draw(st.sampled_from([0.0, 1.0, 3.0])),
        "max_holding_minutes": draw(st.sampled_from([0, 30, 120])),
        "reverse_on_opposite": draw(st.booleans()),
        "exit_on_opposite": draw(st.booleans()),
    }
    if draw(st.booleans()):
        exits |= {"trailing_activation_pct": 0.5, "trailing_distance_pct": 0.4}
    if draw(st.booleans()) and exits["take_profit_pct"] != 1.0:
        exits |= {"partial_take_profit_pct": 0.6, "partial_fraction": 0.5}
    if draw(st.booleans()):
        exits |= {"break_even_trigger_pct": 0.4}
    return TradingConfig.model_validate(
        {
            "risk": {
                "sizing": draw(st.sampled_from(["fixed", "kelly", "atr"])),
                "risk_pct": draw(st.sampled_from([1.0, 5.0])),
                "max_position_pct": 10.0,
                "max_total_pct": draw(st.sampled_from([10.0, 25.0, 50.0])),
                "leverage_min": 1,
                "leverage_max": lev_max,
                "win_rate_min_trades": 2,
                "max_open_positions": draw(st.sampled_from([0, 1, 2])),
            },
            "exits": exits,
            "costs": {
                "slippage_bps": draw(st.sampled_from([0.0, 2.0])),
                "slippage_range_fraction": draw(st.sampled_from([0.0, 0.1])),
                "funding": True,
            },
            "reconcile": {"unknown_position": draw(st.sampled_from(["adopt", "flatten"]))},
        }
    ).engine()


@st.composite
def faults(draw: st.DrawFn) -> Faults:
    if not draw(st.booleans()):
        return Faults()
    return Faults(
        fill_parts=draw(st.sampled_from([1, 3])),
        duplicate_fill_rate=draw(st.sampled_from([0.0, 0.3])),
        reject_entry_rate=draw(st.sampled_from([0.0, 0.15])),
        reject_stop_rate=draw(st.sampled_from([0.0, 0.15])),
        late_cancel_rate=draw(st.sampled_from([0.0, 0.4])),
        seed=draw(st.integers(0, 1000)),
    )


Case = tuple[list[MarketData], list[list[int]], EngineConfig, Faults, list[ModelChange], float]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    n_symbols = draw(st.integers(1, 3))
    datas, signals = [], []
    hours = [T0 + 3_600_000 * k for k in (1, 3, 6)]
    for s in range(n_symbols):
        symbol = f"T{s}USDT"
        bars, minute, sig = draw(symbol_markets(symbol))
        funding = funding_rates(hours, [1e-4, -3e-4, 5e-4])
        funding = type(funding).from_arrays(
            SeriesKey(symbol, Market.FUTURES, "8h", funding.key.kind), funding.time_ms,
            funding.rate,
        )  # fmt: skip
        datas.append(MarketData(bars, T0, rules_for(symbol), funding=funding, minute=minute))
        signals.append(sig)
    changes = [
        ModelChange(T0 + FIVE_MIN * k, v + 1)
        for v, k in enumerate(sorted(draw(st.sets(st.integers(1, 100), max_size=3))))
    ]
    score = draw(st.sampled_from([0.3, 0.5, 1.0]))
    return datas, signals, draw(configs()), draw(faults()), changes, score


_VIEW_FIELDS = (
    "side", "qty", "liq", "stop", "stop_reason", "emergency", "partial_price", "partial_qty",
    "target",
)  # fmt: skip


def _levels_kept_fresh(x: SimulatedExchange) -> None:
    """The exchange keeps each symbol's view of its levels between bars; one it calls fresh
    equals a view made now from its orders and position."""
    v = x.venue
    for s in range(len(v.symbols)):
        if not v.symbols[s]["levels_fresh"]:
            continue
        levels, symbols = v.levels.copy(), v.symbols.copy()
        _levels_view_nb(v.orders, v.positions, levels, symbols, s)
        for name in _VIEW_FIELDS:
            kept, now = v.levels[s][name], levels[s][name]
            assert kept == now or (math.isnan(kept) and math.isnan(now)), (s, name, kept, now)


class Watch:
    """Checks after every event of the event wiring."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.closed_pnl = 0.0
        self.decision_equity: dict[str, float] = {}
        self.checked_entries = 0

    def __call__(
        self, event: Event, commands: list[Command], state: PortfolioState, x: SimulatedExchange
    ) -> None:
        book = state.book
        _levels_kept_fresh(x)
        if isinstance(event, OrderFilled):
            assert event.fee >= 0
        self.closed_pnl += sum(c.trade.pnl for c in commands if isinstance(c, Persist))
        positions = book.positions
        open_part = float(
            np.sum(
                np.where(
                    positions["side"] != 0,
                    positions["realized"] - positions["fees"] - positions["funding"],
                    0.0,
                )
            )
        )
        expected = self.config.initial_equity + self.closed_pnl + open_part
        assert state.wallet == pytest.approx(expected, rel=1e-9, abs=1e-6)
        for s in range(len(state.symbols)):
            self._protected(state, s)
        if isinstance(event, CandleClosed) and any(
            isinstance(c, PlaceOrder) and c.purpose == "entry" for c in commands
        ):
            self._within_caps(state)

    def _protected(self, state: PortfolioState, s: int) -> None:
        """An open position whose entry is done has a live stop, or is being closed."""
        book = state.book
        if book.positions[s]["side"] == 0:
            return
        orders = book.orders[s]
        live = [o for o in orders if is_live_nb(int(o["status"])) and not o["held"]]
        entering = any(int(o["purpose"]) == ENTRY for o in live)
        stopped = any(int(o["purpose"]) == STOP for o in live)
        closing = any(int(o["purpose"]) == CLOSE for o in live)
        assert entering or stopped or closing, f"{state.symbols[s]} open without a stop"
        for o in orders:
            if int(o["purpose"]) == STOP and is_live_nb(int(o["status"])):
                assert math.isfinite(float(o["price"]))

    def _within_caps(self, state: PortfolioState) -> None:
        """Where the core just decided an entry: margin in use plus reserved stays within
        max_total_pct of equity (one position's rounding of tolerance)."""
        book = state.book
        positions = book.positions
        equity = float(
            book.account[0]["wallet"]
            + np.sum(
                np.where(
                    positions["side"] != 0,
                    positions["side"] * positions["qty"] * (book.marks - positions["entry_price"]),
                    0.0,
                )
            )
        )
        margin = float(np.sum(np.where(positions["side"] != 0, positions["margin"], 0.0)))
        entries = book.orders[
            (book.orders["purpose"] == ENTRY) & np.isin(book.orders["status"], (1, 2, 3, 4, 6))
        ]
        reserved = float(
            np.sum((entries["quantity"] - entries["filled"]) * entries["decision_price"]
                   / entries["leverage"])
        )  # fmt: skip
        cap = self.config.sizing.max_total_pct / 100.0 * equity
        each = entries["quantity"] * entries["decision_price"] / entries["leverage"]
        largest = float(np.max(each, initial=0.0))
        assert margin + reserved <= cap + largest * 1e-9 + 1e-9
        open_count = int(np.sum(positions["side"] != 0)) + len(
            {int(i) for i in np.flatnonzero(entries["quantity"] > 0)}
        )
        limit = self.config.sizing.max_open_positions
        if limit > 0:
            assert int(np.sum(positions["side"] != 0)) <= limit + len(state.symbols)
        self.checked_entries += 1 if open_count else 0


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(case=cases())
def test_both_drivers_agree_and_the_account_stays_consistent_after_every_event(
    case: Case,
) -> None:
    datas, signals, config, exchange_faults, changes, score = case
    scored = [
        signals_for(d.candles, dict(enumerate(sig)), config, score)
        for d, sig in zip(datas, signals, strict=True)
    ]
    watch = Watch(config)
    versions = tuple(f"model-{k + 1}" for k in range(len(changes)))
    compiled, events, _prepared = both(
        datas, scored, config, faults=exchange_faults, model_changes=changes,
        model_versions=versions, follow_virtual=True, observe=watch,
    )  # fmt: skip
    for trade in compiled.trades:
        assert trade.fees >= 0
        assert trade.entry_time_ms >= trade.signal_time_ms + FIVE_MIN
    last_close = max(int(d.candles.open_time_ms[-1]) for d in datas) + FIVE_MIN
    applied = [v for v, c in zip(versions, changes, strict=True) if c.time_ms <= last_close]
    assert events.state.model_version == (applied[-1] if applied else "none")
