"""Paper trading makes the backtest's trades (issue 15's parity proof): a paper session
against the local exchange at ``--speed max``, replaying real BTCUSDT and ETHUSDT 5m futures
candles with their funding rates, closes exactly the positions ``slt backtest`` closes on the
same span: same entries, exits, prices, quantities, fees and funding, to the last digit.

CI replays ``SLT_PARITY_DAYS`` days from 2024-01-01 (default 7); the issue's two months is
``SLT_PARITY_DAYS=60``. The backtest's last positions are closed by the end of its data; the
paper session's are still open when the replay ends, with the same entries.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from pathlib import Path
from typing import Any

import pytest

from slt.adapters.exchange.binance_rest import BinanceRest
from slt.adapters.exchange.local.tapes import load_tapes
from slt.domain.clock import format_utc_ms, parse_utc_ms
from slt.runtime.bootstrap import (
    load_market,
    open_store,
    plan_run,
    run_backtest_mode,
    strategy_signals,
    warmup_ms,
)
from slt.runtime.config import load_settings
from slt.runtime.live_session import LiveSession
from tests.conftest import CATMAN, CATMAN_BTC_5M, CATMAN_ETH_5M
from tests.support.local_exchange import serving

pytestmark = pytest.mark.shared_data

DAYS = float(os.environ.get("SLT_PARITY_DAYS", "7"))
START = parse_utc_ms("2024-01-01")
FUNDING = [CATMAN / f"{b}_USDT_USDT-8h-funding_rate.feather" for b in ("BTC", "ETH")]
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
FIVE_MINUTES = 300_000


def backtest_of(tmp_path: Path, end: int) -> tuple[Any, Any, Any]:
    """The store (the real candles and funding imported), the run plan and the backtest."""
    from slt.adapters.importers.importer import apply_import, plan_import

    settings = load_settings(None, {"SLT_DATA_DIR": str(tmp_path)})
    store = open_store(settings)
    apply_import(store, plan_import([CATMAN_BTC_5M, CATMAN_ETH_5M, *FUNDING]))
    plan = plan_run(settings, SYMBOLS, format_utc_ms(START), format_utc_ms(end), "5m",
                    "ema_cross", None, None)  # fmt: skip
    datas, _ = load_market(settings, plan)
    signals, _ = strategy_signals(plan, datas)
    return store, plan, run_backtest_mode(plan, datas, signals).result


def test_paper_trades_are_the_backtests(tmp_path: Path) -> None:
    end = START + int(DAYS * 86_400_000)
    store, plan, backtest = backtest_of(tmp_path, end)
    warm_from = START - warmup_ms(plan.strategy, "5m")

    async def paper(url: str) -> LiveSession:
        async with BinanceRest(url) as rest:  # no keys: paper needs none
            session = LiveSession(
                rest, url.replace("http://", "ws://"), SYMBOLS, "5m", plan.strategy, plan.engine,
                run_id="paper", paper=True, warmup_from_ms=warm_from, trade_from_ms=START,
                until_ms=end - FIVE_MINUTES,
            )  # fmt: skip
            await asyncio.wait_for(session.run(asyncio.Event()), 600)
            return session

    tapes = load_tapes(store, SYMBOLS, START, end)
    with serving(tapes, START, speed=math.inf) as ex:
        ex.exchange.settle_ms = 20  # paper sends nothing back: no need to wait long
        session = asyncio.run(paper(ex.url))

    closed = [t for t in backtest.trades if t.exit_reason != "end_of_data"]
    logging.getLogger(__name__).warning(
        "paper parity, %g days: %d closed trades, %d open at the end", DAYS, len(closed),
        len(backtest.trades) - len(closed))  # fmt: skip
    at_end = [t for t in backtest.trades if t.exit_reason == "end_of_data"]
    assert len(closed) >= 20, "too few trades to prove anything"
    paper_trades = session.counts.trades
    assert len(paper_trades) == len(closed)
    for mine, theirs in zip(paper_trades, closed, strict=True):
        assert mine._replace(position_id=0) == theirs._replace(position_id=0)
    # What the backtest closed at the end of its data is still open in paper, entered alike.
    assert session.state is not None
    book = session.state.book.positions
    open_now = {s: (int(book[i]["side"]), float(book[i]["qty"]), float(book[i]["entry_price"]))
                for i, s in enumerate(SYMBOLS) if int(book[i]["side"])}  # fmt: skip
    expected = {t.symbol: (1 if t.side == "long" else -1, t.quantity, t.entry_price)
                for t in at_end}  # fmt: skip
    assert open_now == expected
    assert session.counts.gaps == 0 and session.late_candles == 0


def test_paper_in_three_processes_makes_the_backtests_trades(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same proof through the supervised runtime (feed and brain processes, the market
    ring between them), over ``SLT_PARITY_DAYS_PROCESSES`` days (3 in CI), with records and
    the learning loop on (training off: a promoted model would change the decisions)."""
    from slt.runtime.trading_runtime import run_trading
    from slt.runtime.trading_spec import TradingSpec

    days = float(os.environ.get("SLT_PARITY_DAYS_PROCESSES", "3"))
    end = START + int(days * 86_400_000)
    store, plan, backtest = backtest_of(tmp_path, end)
    for name, value in {"SLT_DATA_DIR": str(tmp_path), "SLT_DB_AUTO_MIGRATE": "true",
                        "DISABLE_MODEL_TRAINING": "true"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    tapes = load_tapes(store, SYMBOLS, START, end)
    with serving(tapes, START, speed=math.inf) as ex:
        ex.exchange.settle_ms = 20
        spec = TradingSpec(
            "paper", tuple(SYMBOLS), "5m", "paper3", ex.url, ex.url.replace("http://", "ws://"),
            str(tmp_path / "runs" / "paper3"), strategy="ema_cross",
            warmup_from_ms=START - warmup_ms(plan.strategy, "5m"), trade_from_ms=START,
            until_ms=end - FIVE_MINUTES,
        )  # fmt: skip
        result = run_trading(spec)

    closed = [t for t in backtest.trades if t.exit_reason != "end_of_data"]
    assert result.supervisor.stopped_by == "finished"
    assert len(closed) >= 8, "too few trades to prove anything"
    fields = ("symbol", "side", "entry_time_ms", "entry_price", "exit_time_ms", "exit_price",
              "quantity", "fees", "funding", "exit_reason")  # fmt: skip
    paper_trades = [tuple(t[f] for f in fields) for t in result.brain["trades"]]
    assert paper_trades == [tuple(getattr(t, f) for f in fields) for t in closed]
    assert result.brain["virtual_positions"] > 0
