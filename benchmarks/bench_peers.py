"""Our engine against backtesting.py and vectorbt (freqtrade if installed) on the issue's rules.

    .venv/bin/python benchmarks/bench_peers.py [--write]

The rules: EMA 12/26 cross on closes, long and short, market entry at the next open, stop 1 %
and target 2 % from the fill price (on the 0.1 tick), the opposite cross closes and reverses,
0.05 % per side, 1x, all equity per trade, no funding, slippage or time stop. Data: the full
143,900-bar BTCUSDT 5m futures file, in memory. Each engine computes its own EMAs. Times are
medians of warm runs after one warm-up run (the cold column). Every trade is then compared with
ours. ``--write`` replaces the peers section of docs/benchmarks.md; docs/peers.md explains why.
"""

from __future__ import annotations

import os
import platform
import sys
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numba
import numpy as np
import numpy.typing as npt
import pandas as pd
import talib

from bench_data import FUTURES_5M, PEER_RULES_FILE, cpu_model, publish, timed
from slt.adapters.importers.readers import read_feather
from slt.domain.results import MarketData
from slt.domain.series import Candles, Market, SeriesKey
from slt.domain.strategies.registry import builtin_strategy
from slt.domain.trading.margin_nb import floor_to_step_nb, round_price_nb
from slt.domain.trading.symbol_rules import symbol_rules
from slt.engine import backtest
from slt.engine.backtest import run_compiled
from slt.engine.pipeline import ScoredSignals, scored
from slt.runtime.trading_config_file import load_trading_config

BEGIN, END = "<!-- bench_peers:begin -->", "<!-- bench_peers:end -->"
F64 = npt.NDArray[np.float64]
RULES = symbol_rules("BTCUSDT")
BAR_MS = 300_000
CONFIG = load_trading_config(PEER_RULES_FILE)
ENGINE = CONFIG.engine()
STOP, TARGET = CONFIG.exits.stop_loss_pct / 100, CONFIG.exits.take_profit_pct / 100
FEE = CONFIG.costs.taker_fee_pct / 100
# The 100 USDT minimum and the 0.001 BTC lot never bind at this size (equity ends near 4e6).
EQUITY = CONFIG.initial_equity


@dataclass(frozen=True)
class Row:
    """One trade as every engine reports it; times are bar open times, except ours at the end
    of the data (the last close)."""

    side: int
    entry_ms: int
    entry_price: float
    exit_ms: int
    exit_price: float
    pnl_pct: float
    reason: str = ""


@dataclass(frozen=True)
class Outcome:
    name: str
    cold_ms: float
    warm_ms: float
    total_return_pct: float = 0.0
    rows: tuple[Row, ...] = ()


def load() -> Candles:
    raw = read_feather(FUTURES_5M)
    key = SeriesKey("BTCUSDT", Market.FUTURES, "5m")
    return Candles.from_arrays(key, raw.times_ms, raw.open, raw.high, raw.low, raw.close,
                               raw.volume)  # fmt: skip


def run_ours(candles: Candles) -> tuple[Outcome, Outcome]:
    """(the full run, the same run without Trade objects: vectorbt's time covers only its
    record arrays and builds its trade table later, on demand)."""
    data = MarketData(candles, int(candles.open_time_ms[0]), RULES)
    ema = builtin_strategy("ema_cross")
    box: list[Any] = []

    def signals() -> ScoredSignals:
        return scored(ema.signals(candles, None), candles, ENGINE.stops)

    def once() -> None:
        box[:] = [backtest.run_backtest(data, signals(), ENGINE)[0]]

    def bare() -> None:
        run_compiled(backtest.prepare([data], [signals()], ENGINE))

    cold, warm = timed(once, repeat=15)
    result = box[0]
    bare_cold, bare_warm = timed(bare, repeat=15)
    rows = tuple(
        Row(1 if t.side == "long" else -1, t.entry_time_ms, t.entry_price, t.exit_time_ms,
            t.exits[-1].price, t.pnl_pct, t.exit_reason)
        for t in result.trades
    )  # fmt: skip
    total = (result.equity[-1] / EQUITY - 1) * 100
    full = Outcome("ours: signals + simulation + Trade objects", cold, warm, total, rows)
    return full, Outcome("ours: the same, trades left as arrays", bare_cold, bare_warm)


def run_backtesting_py(candles: Candles) -> Outcome:
    os.environ["TQDM_DISABLE"] = "1"  # its progress bar; read when tqdm is imported
    import backtesting
    from backtesting import Backtest, Strategy

    class IssueRules(Strategy):  # type: ignore[misc]
        """TA-Lib EMAs; sl/tp from the next open (the fill) on the tick; our lot sizing."""

        opens: ClassVar[Any] = candles.open

        def init(self) -> None:
            self.fast = self.I(talib.EMA, self.data.Close, 12)
            self.slow = self.I(talib.EMA, self.data.Close, 26)

        def next(self) -> None:
            f0, f1, s0, s1 = self.fast[-2], self.fast[-1], self.slow[-2], self.slow[-1]
            side = 1 if f1 > s1 and f0 <= s0 else -1 if f1 < s1 and f0 >= s0 else 0
            i = len(self.data) - 1
            if side == 0 or i + 1 >= len(self.opens):
                return
            if self.position.size * side < 0:
                self.position.close()  # goes to the front of the queue: fills at the open
            close = float(self.data.Close[-1])
            qty = floor_to_step_nb(self.equity * RULES.step_size / close, RULES.step_size)
            if qty <= 0 or qty * close < RULES.min_notional:
                return
            fill = float(self.opens[i + 1])
            sl = round_price_nb(fill * (1.0 - side * STOP), RULES.tick_size)
            tp = round_price_nb(fill * (1.0 + side * TARGET), RULES.tick_size)
            (self.buy if side > 0 else self.sell)(size=round(qty / RULES.step_size), sl=sl, tp=tp)

    columns = ("Open", "High", "Low", "Close", "Volume")
    frame = pd.DataFrame(
        dict(zip(columns, (candles.open, candles.high, candles.low, candles.close,
                           candles.volume), strict=True)),
        index=pd.to_datetime(candles.open_time_ms, unit="ms"),
    )  # fmt: skip
    # Whole units: cash is equity / lot, so one unit is one 0.001 BTC lot. margin 0.5 only keeps
    # it from cancelling an all-in order that the fee makes a hair larger than the cash.
    bt = Backtest(frame, IssueRules, cash=EQUITY / RULES.step_size, commission=FEE,
                  margin=0.5, finalize_trades=True)  # fmt: skip
    box: list[Any] = []

    def once() -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="DatetimeIndex.dayofweek is deprecated")
            box[:] = [bt.run()]

    cold, warm = timed(once, repeat=3)
    stats, t = box[0], candles.open_time_ms
    rows = tuple(
        Row(1 if r.Size > 0 else -1, int(t[r.EntryBar]), float(r.EntryPrice), int(t[r.ExitBar]),
            float(r.ExitPrice), float(r.ReturnPct) * 100)
        for r in stats["_trades"].itertuples()
    )  # fmt: skip
    name = f"backtesting.py {backtesting.__version__} (Backtest.run)"
    return Outcome(name, cold, warm, float(stats["Return [%]"]), rows)


def tick_stop_fractions(candles: Candles, side: npt.NDArray[np.int8], pct: float) -> F64:
    """Per entry bar, the fraction of the fill (the open) that lands on our tick-rounded
    level: vectorbt has no price grid, so it gets the level through the fraction."""
    fractions = np.full(len(candles), pct)
    for i in np.nonzero(side)[0]:
        o = float(candles.open[i])
        level = round_price_nb(o * (1.0 - int(side[i]) * pct), RULES.tick_size)
        fractions[i] = abs(level / o - 1.0)
    return fractions


def ms(stamp: object) -> int:
    return int(pd.Timestamp(stamp).value // 1_000_000)


def run_vectorbt(candles: Candles) -> tuple[Outcome, Outcome, set[int]]:
    """(indicator timing, simulation, open times of the bars whose signal differs from ours)."""
    import vectorbt as vbt

    close = pd.Series(candles.close, index=pd.to_datetime(candles.open_time_ms, unit="ms"))
    crossings: list[Any] = []

    def indicators() -> None:
        fast = vbt.MA.run(close, 12, ewm=True, short_name="fast")
        slow = vbt.MA.run(close, 26, ewm=True, short_name="slow")
        crossings[:] = [fast.ma_crossed_above(slow), fast.ma_crossed_below(slow)]

    ind_cold, ind_warm = timed(indicators, repeat=15)
    signal = np.where(crossings[0].to_numpy(), 1, np.where(crossings[1].to_numpy(), -1, 0))
    ours = builtin_strategy("ema_cross").signals(candles, None).direction
    differing = {int(candles.open_time_ms[i]) for i in np.nonzero(signal != ours)[0]}
    at_open = np.zeros(len(candles), dtype=np.int8)
    at_open[1:] = signal[:-1]  # decided at a close, filled at the next open
    sl_stop = tick_stop_fractions(candles, at_open, STOP)
    tp_stop = tick_stop_fractions(candles, -at_open, TARGET)  # a target: a stop the other way
    box: list[Any] = []

    def simulate() -> None:
        box[:] = [
            vbt.Portfolio.from_signals(
                close, entries=at_open == 1, short_entries=at_open == -1, price=candles.open,
                open=candles.open, high=candles.high, low=candles.low, sl_stop=sl_stop,
                tp_stop=tp_stop, stop_entry_price="fillprice", fees=FEE, size=np.inf,
                init_cash=EQUITY, freq="5min",
            )
        ]  # fmt: skip

    cold, warm = timed(simulate, repeat=15)
    pf = box[0]
    rows = tuple(
        Row(1 if r["Direction"] == "Long" else -1, ms(r["Entry Timestamp"]),
            float(r["Avg Entry Price"]), ms(r["Exit Timestamp"]), float(r["Avg Exit Price"]),
            float(r["Return"]) * 100, "open" if r["Status"] == "Open" else "")
        for _, r in pf.trades.records_readable.iterrows()
    )  # fmt: skip
    name = f"vectorbt {vbt.__version__}"
    indicator = Outcome(f"{name}: EMA 12/26 + crossings (vbt.MA)", ind_cold, ind_warm)
    total = float(pf.total_return()) * 100
    simulation = Outcome(f"{name}: Portfolio.from_signals", cold, warm, total, rows)
    return indicator, simulation, differing


Explain = Callable[[Row | None, Row | None], str]


def compare(
    ours: tuple[Row, ...], peer: tuple[Row, ...], explain: Explain, rel: float
) -> list[str]:
    """Match trades on (side, entry time); identical: same entry and exit time and price and
    the same percent after fees. Every other trade gets the reason ``explain`` finds."""
    theirs = {(r.side, r.entry_ms): r for r in peer}
    mine = {(r.side, r.entry_ms) for r in ours}
    pairs = [(r, theirs.get((r.side, r.entry_ms))) for r in ours]
    pairs += [(None, p) for p in peer if (p.side, p.entry_ms) not in mine]
    same, reasons, first = 0, Counter[str](), []
    for r, p in pairs:
        if r is not None and p is not None and r.exit_ms == p.exit_ms and np.allclose(
            [r.entry_price, r.exit_price, r.pnl_pct], [p.entry_price, p.exit_price, p.pnl_pct],
            rtol=rel, atol=1e-9,
        ):  # fmt: skip
            same += 1
            continue
        why = explain(r, p)
        reasons[why] += 1
        if len(first) < 4:
            first.append(f"  ours {fmt(r)}\n  peer {fmt(p)}\n    -> {why}")
    lines = [f"{same:,} of our {len(ours):,} trades identical (the peer made {len(peer):,})"]
    lines += [f"{n:,} x {why}" for why, n in reasons.most_common()]
    return lines + (["first differences:", *first] if first else [])


def fmt(r: Row | None) -> str:
    if r is None:
        return "-"
    when = pd.to_datetime([r.entry_ms, r.exit_ms], unit="ms").strftime("%Y-%m-%d %H:%M")
    side = "long " if r.side > 0 else "short"
    text = f"{side} {when[0]} @ {r.entry_price:.1f} -> {when[1]} @ {r.exit_price:.2f} "
    return f"{text}{r.pnl_pct:+.4f}% {r.reason}".rstrip()


def explain_backtesting_py(ours: Row | None, peer: Row | None) -> str:
    if ours is not None and peer is not None and ours.reason == "end_of_data":
        return "open at the end: ours exits at the last close, backtesting.py at the last open"
    return "UNEXPLAINED"


def explain_vectorbt(differing: set[int]) -> Explain:
    def explain(ours: Row | None, peer: Row | None) -> str:
        rows = [r for r in (ours, peer) if r is not None]
        decided = {r.entry_ms - BAR_MS for r in rows} | {r.exit_ms - BAR_MS for r in rows}
        if decided & differing:
            return "vectorbt's EMA warm-up (seeded by the first close, TA-Lib's by an SMA)"
        if ours is None:
            return "UNEXPLAINED"
        if peer is None:
            return (
                "reversal lost: vectorbt's one order in that bar was the old position's "
                "stop (it tests stops over the whole bar before the signal at the open)"
            )
        if ours.reason in ("stop_loss", "take_profit") and ours.exit_ms == ours.entry_ms:
            return "stop/target inside the entry bar: vectorbt tests stops from the next bar on"
        if ours.reason == "opposite_signal" and peer.exit_ms == ours.exit_ms:
            return (
                "the old stop lies inside the bar whose open the opposite cross exits at: "
                "vectorbt fills the stop instead"
            )
        if ours.reason == "end_of_data" and peer.reason == "open":
            return "open at the end: vectorbt leaves it open (no exit fee), ours exits at close"
        return "UNEXPLAINED"

    return explain


def report(
    candles: Candles, outcomes: list[Outcome], diffs: dict[str, list[str]], skipped: str
) -> str:
    full, bare = outcomes[0].warm_ms, outcomes[1].warm_ms
    vbt_ms = sum(o.warm_ms for o in outcomes if o.name.startswith("vectorbt"))
    rows = []
    for o in outcomes:
        trades = f"{len(o.rows):,}" if o.rows else ""
        total = f"{o.total_return_pct:+.4f} %" if o.rows else ""
        ratios = (
            "| | |"
            if o.name.startswith("ours")
            else f"| {o.warm_ms / full:,.2f} | {o.warm_ms / bare:,.2f} |"
        )
        rows.append(f"| {o.name} | {o.warm_ms:,.1f} ms | {o.cold_ms:,.0f} ms | {trades} | "
                    f"{total} {ratios}")  # fmt: skip
    if vbt_ms:
        rows.append(f"| vectorbt: indicators + simulation | {vbt_ms:,.1f} ms | | | | "
                    f"{vbt_ms / full:,.2f} | {vbt_ms / bare:,.2f} |")  # fmt: skip
    machine = (
        f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}, numba {numba.__version__}, pandas {pd.__version__}"
    )
    lines = [
        BEGIN,
        "## Peers: backtesting.py and vectorbt on the same rules (issue 4)",
        "",
        f"Machine: {machine}. Data: `{FUTURES_5M.name}` (catman77, BTCUSDT perpetual 5m, "
        f"{len(candles):,} bars), in memory; initial equity {EQUITY:,.0f} USDT. Command: "
        "`.venv/bin/python benchmarks/bench_peers.py`. Setup and every difference: "
        "[peers.md](peers.md). The ratios are the peer's time over ours, with and without "
        "building Trade objects (above 1: ours is faster).",
        "",
        "| engine | warm median | cold (first run) | trades | total return | peer / ours "
        "| peer / ours (arrays) |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"{skipped}.",
    ]
    for name, summary in diffs.items():
        lines += ["", f"Trade by trade, ours against {name}:", "", "```", *summary, "```"]
    return "\n".join([*lines, END])


def main() -> None:
    if not FUTURES_5M.is_file():
        sys.exit(f"real data not found at {FUTURES_5M}")
    candles = load()
    ours, bare = run_ours(candles)
    peer = run_backtesting_py(candles)
    outcomes = [ours, bare, peer]
    diffs = {peer.name: compare(ours.rows, peer.rows, explain_backtesting_py, 0.0)}
    try:
        indicator, simulation, differing = run_vectorbt(candles)
    except ImportError as exc:
        print(f"vectorbt is not importable ({exc}): skipped")
    else:
        outcomes += [indicator, simulation]
        explain = explain_vectorbt(differing)
        diffs[simulation.name] = compare(ours.rows, simulation.rows, explain, 1e-12)
    try:
        import freqtrade  # noqa: F401
    except ImportError:
        skipped = "freqtrade is not installed here (it is no dependency of this project): skipped"
    else:
        skipped = "freqtrade is importable, but its backtest needs a user_data setup: skipped"
    text = report(candles, outcomes, diffs, skipped)
    publish(text, BEGIN, END)


if __name__ == "__main__":
    main()
