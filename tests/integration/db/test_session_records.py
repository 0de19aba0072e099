"""A session's records on SQLite and real PostgreSQL, and ``slt status`` reading them.

The session is the event wiring paper and live trading run (``EventDriver``), on two weeks
of real BTCUSDT and ETHUSDT 5m futures with real funding, an exchange that splits fills,
repeats some, rejects some entries and answers some cancels late. ``SessionRecorder`` sees
what ``LiveSession`` would show it: each event, its commands, the state after it.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import typer
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.conftest import CATMAN, CATMAN_BTC_5M, CATMAN_ETH_5M, real_ohlcv
from tests.integration.db.conftest import on_database
from typer.testing import CliRunner, Result

from slt.adapters.db.writer import RecordWriter
from slt.adapters.exchange.kline_sequencer import Candle as MarketCandle
from slt.adapters.importers.readers import read_feather
from slt.cli.context import AppContext
from slt.cli.status import status
from slt.domain.clock import parse_utc_ms
from slt.domain.results import MarketData, Trade
from slt.domain.series import Candles, FundingRates, Kind, Market, SeriesKey
from slt.domain.strategies.registry import builtin_strategy
from slt.domain.trading.symbol_rules import symbol_rules
from slt.engine.backtest import Prepared, prepare
from slt.engine.event_driver import EventDriver
from slt.engine.identity import client_order_id
from slt.engine.messages import Command, Event, OrderFilled, OrderRejected, Persist, PlaceOrder
from slt.engine.pipeline import scored
from slt.engine.records import FREE, PARTIALLY_FILLED, PENDING_CANCEL
from slt.engine.sim_exchange import SimulatedExchange
from slt.engine.state import PortfolioState
from slt.engine.venue import Faults
from slt.runtime.config import Settings
from slt.runtime.session_records import SessionRecorder
from slt.runtime.trading_config import TradingConfig

pytestmark = pytest.mark.shared_data

RUN = "rec00001"
START, END = parse_utc_ms("2023-03-01"), parse_utc_ms("2023-03-15")
WARMUP_MS = 3 * 86_400_000
FINAL = {"filled", "canceled", "rejected", "expired"}


def _futures(symbol: str, path: Path) -> MarketData:
    raw = real_ohlcv(path)
    keep = (raw.times_ms >= START - WARMUP_MS) & (raw.times_ms < END)
    candles = Candles.from_arrays(
        SeriesKey(symbol, Market.FUTURES, "5m"), raw.times_ms[keep], raw.open[keep],
        raw.high[keep], raw.low[keep], raw.close[keep], raw.volume[keep],
    )  # fmt: skip
    funding = read_feather(CATMAN / f"{symbol[:3]}_USDT_USDT-8h-funding_rate.feather")
    rates = FundingRates.from_arrays(
        SeriesKey(symbol, Market.FUTURES, "8h", Kind.FUNDING), funding.times_ms, funding.open
    )
    return MarketData(candles, START, symbol_rules(symbol), funding=rates)


@functools.cache
def _prepared() -> Prepared:
    config = TradingConfig.model_validate(
        {"exits": {"partial_take_profit_pct": 0.6, "trailing_activation_pct": 0.6,
                   "trailing_distance_pct": 0.3}}
    ).engine()  # fmt: skip
    datas = [_futures("BTCUSDT", CATMAN_BTC_5M), _futures("ETHUSDT", CATMAN_ETH_5M)]
    strategy = builtin_strategy("ema_cross")
    signals = [scored(strategy.signals(d.candles, None), d.candles, config.stops) for d in datas]
    faults = Faults(fill_parts=2, duplicate_fill_rate=0.2, reject_entry_rate=0.05,
                    late_cancel_rate=0.2, seed=7)  # fmt: skip
    return prepare(datas, signals, config, faults=faults)


@dataclass
class Session:
    """What the recorder was shown, tallied independently of it."""

    fills: Counter[tuple[str, str]] = field(default_factory=Counter)  # (order, trade id)
    placed: list[PlaceOrder] = field(default_factory=list)
    rejected: int = 0
    trades: list[Trade] = field(default_factory=list)
    close_times: set[int] = field(default_factory=set)
    equity: dict[int, float] = field(default_factory=dict)  # by step close time
    driver: EventDriver | None = None
    recorder: SessionRecorder | None = None


def record(writer: RecordWriter, run_id: str = RUN, stop_after: int | None = None) -> Session:
    """Run the session through a recorder on ``writer``; ``stop_after``: stop once that many
    events were applied (a bot still running)."""
    seen = Session()
    recorder = SessionRecorder(writer, "paper", run_id, "5m")

    def observe(
        event: Event, commands: list[Command], state: PortfolioState, _: SimulatedExchange
    ) -> None:
        recorder.observe(event, commands, state)
        if isinstance(event, OrderFilled):
            seen.fills[(event.client_order_id, str(event.trade_id))] += 1
        seen.rejected += isinstance(event, OrderRejected)
        seen.placed += [c for c in commands if isinstance(c, PlaceOrder)]
        seen.trades += [c.trade for c in commands if isinstance(c, Persist)]

    driver = EventDriver(_prepared(), run_id, observe=observe)
    driver.run(stop_after)
    p = _prepared()
    closes = [t + p.timeframe_ms for t in driver.step_time]
    seen.close_times, seen.equity = set(closes), dict(zip(closes, driver.equity, strict=True))
    seen.driver, seen.recorder = driver, recorder
    for candles in p.candles:  # the market candles, volume included, as a session gets them
        for k in range(len(candles) - 3, len(candles)):
            recorder.candle(MarketCandle(
                candles.key.symbol, "5m", int(candles.open_time_ms[k]), float(candles.open[k]),
                float(candles.high[k]), float(candles.low[k]), float(candles.close[k]),
                float(candles.volume[k]), "stream",
            ))  # fmt: skip
    return seen


async def _rows(engine: AsyncEngine, sql: str) -> list[tuple[object, ...]]:
    async with engine.connect() as connection:
        return [tuple(r) for r in (await connection.exec_driver_sql(sql)).all()]


def test_a_recorded_session_stores_each_fill_once_its_trades_pnl_and_final_order_statuses(
    db_url: URL,
) -> None:
    async def body(engine: AsyncEngine) -> tuple[Session, dict[str, list[tuple[object, ...]]]]:
        async with RecordWriter(engine) as writer:
            seen = record(writer)
            await seen.recorder.flush()  # type: ignore[union-attr]
        tables = {
            "fills": "SELECT order_id, fill_id, mode, run_id FROM fills",
            "orders": "SELECT id, status, mode, run_id FROM orders",
            "positions": "SELECT position_key, status, realized_pnl, fees, funding, "
            "exit_reason, mode, run_id FROM positions",
            "equity": "SELECT time_ms, equity, mode, run_id FROM equity_snapshots",
            "candles": "SELECT symbol, volume FROM market_data",
        }
        return seen, {name: await _rows(engine, sql) for name, sql in tables.items()}

    seen, rows = on_database(db_url, body)
    assert seen.recorder is not None and seen.recorder.refused == 0
    assert len(seen.trades) > 100 and max(seen.fills.values()) > 1  # duplicates were sent
    assert {r[-2:] for t in rows.values() if t is not rows["candles"] for r in t} == {
        ("paper", RUN)
    }
    fills = [(str(o), str(f)) for o, f, *_ in rows["fills"]]
    assert sorted(fills) == sorted(seen.fills)  # each once
    statuses = Counter(str(s) for _, s, *_ in rows["orders"])
    assert sum(statuses.values()) == len(seen.placed)
    assert set(statuses) <= FINAL and statuses["rejected"] == seen.rejected > 0
    closed = {str(k): (status, float(pnl), float(fees), float(funding), reason)  # type: ignore[arg-type]
              for k, status, pnl, fees, funding, reason, *_ in rows["positions"]}  # fmt: skip
    assert closed == {
        str(t.position_id): ("closed", t.pnl, t.fees, t.funding, t.exit_reason) for t in seen.trades
    }
    equity = {int(t): float(e) for t, e, *_ in rows["equity"]}  # type: ignore[call-overload, arg-type]
    assert set(equity) <= seen.close_times and len(equity) > 0.99 * len(seen.close_times)
    last = max(equity)  # the final step also closes what the data's end left open
    assert {t: e for t, e in equity.items() if t != last} == {
        t: seen.equity[t] for t in equity if t != last
    }
    assert len(rows["candles"]) == 6 and all(float(v) > 0 for _, v in rows["candles"])  # type: ignore[arg-type]


def test_two_sessions_keep_their_rows_apart_by_run_id(db_url: URL) -> None:
    """Position ids and equity times restart with each session; the run id keeps both."""

    async def body(engine: AsyncEngine) -> tuple[int, list[tuple[object, ...]]]:
        async with RecordWriter(engine) as writer:
            first = record(writer, "rec00001", stop_after=3_000)
            record(writer, "rec00002", stop_after=3_000)
        counts = await _rows(
            engine, "SELECT run_id, count(*) FROM positions GROUP BY run_id ORDER BY run_id"
        )
        assert first.driver is not None
        held = int((first.driver.state.book.positions["side"] != 0).sum())
        return len(first.trades) + held, counts

    positions, counts = on_database(db_url, body)
    assert positions > 10
    assert [(str(r), int(n)) for r, n in counts] == [  # type: ignore[call-overload]
        ("rec00001", positions), ("rec00002", positions)
    ]  # fmt: skip


# -- slt status ----------------------------------------------------------------------------


def _status(tmp_path: Path, *args: str) -> Result:
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.obj = AppContext(None, Settings(data_dir=tmp_path / "user_data"))

    app.command("status")(status)
    return CliRunner().invoke(app, ["status", *args], env={"COLUMNS": "200", "NO_COLOR": "1"})


def _record_running_session(tmp_path: Path) -> Session:
    """A session stopped while it holds a position, recorded in the default SQLite file."""
    from slt.adapters.db.urls import database_url

    probe, stop_after = EventDriver(_prepared(), RUN), 2_000
    while probe.run(stop_after) is False and not (probe.state.book.positions["side"] != 0).any():
        stop_after += 37

    async def body(engine: AsyncEngine) -> Session:
        async with RecordWriter(engine) as writer:
            return record(writer, stop_after=stop_after)

    return on_database(database_url(None, tmp_path / "user_data"), body)


def test_status_of_a_running_session_shows_its_open_positions_and_orders_and_the_days_pnl(
    tmp_path: Path,
) -> None:
    seen = _record_running_session(tmp_path)
    assert seen.driver is not None
    state = seen.driver.state
    last_exit = max(t.exit_time_ms for t in seen.trades)
    day = last_exit - last_exit % 86_400_000
    that_day = [t for t in seen.trades if day <= t.exit_time_ms < day + 86_400_000]
    shown = _status(tmp_path, "--json", "--day", _date(day))
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.output)
    session = report["session"]
    assert (report["recorded"], session["mode"], session["run_id"]) == (True, "paper", RUN)
    held = {(p["symbol"], p["side"], p["quantity"]) for p in session["open_positions"]}
    book = state.book.positions
    assert held == {
        (s, int(book[i]["side"]), float(book[i]["qty"]))
        for i, s in enumerate(state.symbols) if book[i]["side"] != 0
    }  # fmt: skip
    orders = state.book.orders
    working = {
        client_order_id(RUN, state.symbols[s], int(o["seq"]))
        for s in range(len(state.symbols)) for o in orders[s]
        if o["status"] != FREE and not o["held"]
        and (o["status"] <= PARTIALLY_FILLED or o["status"] == PENDING_CANCEL)
    }  # fmt: skip
    assert {o["order_id"] for o in session["open_orders"]} == working != set()
    assert session["day"]["closed"] == len(that_day) > 0
    assert session["day"]["realized_pnl"] == pytest.approx(sum(t.pnl for t in that_day))
    assert report["model"] is None
    assert {c["symbol"] for c in report["last_candles"]} == {"BTCUSDT", "ETHUSDT"}

    table = _status(tmp_path, "--day", _date(day))
    assert table.exit_code == 0, table.output
    for text in ("paper session rec00001", "Open positions", "Open orders", "Model in use: none",
                 f"(UTC): {len(that_day)}, ", "Last candle seen"):  # fmt: skip
        assert text in table.output


def _date(ms: int) -> str:
    from slt.domain.clock import format_utc_ms

    return format_utc_ms(ms)[:10]


def test_status_of_an_empty_database_says_nothing_is_recorded_and_creates_nothing(
    tmp_path: Path,
) -> None:
    shown = _status(tmp_path)
    as_json = _status(tmp_path, "--json")
    assert shown.exit_code == 0, shown.output
    assert "Nothing recorded yet in sqlite+aiosqlite:///" in shown.output
    assert "Model in use: none" in shown.output
    assert json.loads(as_json.output)["recorded"] is False
    assert not (tmp_path / "user_data").exists()


def test_status_of_an_unknown_run_id_names_it(tmp_path: Path) -> None:
    _record_running_session(tmp_path)
    shown = _status(tmp_path, "--run-id", "nosuchrun")
    assert shown.exit_code == 1
    assert "no paper or live session 'nosuchrun' is recorded" in str(shown.exception)
