"""``slt paper`` and ``slt live``: a trading session on Binance's market data (or its
testnet's, or a local exchange's) until SIGINT/SIGTERM. Paper fills on the backtest's simulated
exchange and needs no keys; live sends real orders through the Binance adapter.

It refuses to start on Binance's main URLs without ``--confirm-real-money`` (or
``SLT_LIVE_CONFIRM=yes``) and shows what it would trade with how much; the testnet and a local
exchange need only keys. Everything is checked before anything is sent: the symbols against
the exchange's list, the timeframe, the keys, the exchange's state (a position it did not open
stops the start unless ``--adopt``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from slt.cli.context import app_context
from slt.cli.options import StrategyFile, StrategyName, Timeframe, TradingConfigFile
from slt.cli.output import stdout
from slt.errors import ConfigError

CONFIRM_ENV = "SLT_LIVE_CONFIRM"
MAIN_URLS = ("https://fapi.binance.com",)

Symbols = Annotated[str, typer.Option(help="Comma-separated symbols.")]
ExchangeUrl = Annotated[
    str | None,
    typer.Option("--exchange-url", help="REST base URL (BINANCE_FUTURES_REST_URL), e.g. a local "
                 "exchange at http://127.0.0.1:8090."),
]  # fmt: skip
ExchangeWsUrl = Annotated[
    str | None,
    typer.Option("--exchange-ws-url", help="WebSocket base URL (BINANCE_FUTURES_WS_URL)."),
]
SingleProcess = Annotated[
    bool,
    typer.Option("--single-process", help="Run feed, decisions and orders in one process "
                 "(the same decisions; for debugging) instead of three supervised ones."),
]  # fmt: skip


def paper(
    ctx: typer.Context,
    symbols: Symbols = "BTCUSDT",
    timeframe: Timeframe = "5m",
    strategy: StrategyName = None,
    strategy_file: StrategyFile = None,
    config: TradingConfigFile = None,
    exchange_url: ExchangeUrl = None,
    exchange_ws_url: ExchangeWsUrl = None,
    single_process: SingleProcess = False,
) -> None:
    """Paper-trade on live market data until SIGINT/SIGTERM: fills, fees, slippage, funding
    and liquidation as the backtest computes them; no keys, no orders."""
    _trade(ctx, "paper", symbols, timeframe, strategy, strategy_file, config, exchange_url,
           exchange_ws_url, adopt=False, confirm_real_money=False,
           single_process=single_process)  # fmt: skip


def live(
    ctx: typer.Context,
    symbols: Symbols = "BTCUSDT",
    timeframe: Timeframe = "5m",
    strategy: StrategyName = None,
    strategy_file: StrategyFile = None,
    config: TradingConfigFile = None,
    exchange_url: ExchangeUrl = None,
    exchange_ws_url: ExchangeWsUrl = None,
    adopt: Annotated[
        bool, typer.Option(help="Take over positions on the symbols that this bot did not open.")
    ] = False,
    confirm_real_money: Annotated[
        bool, typer.Option(help="Needed on Binance's main URLs (or SLT_LIVE_CONFIRM=yes).")
    ] = False,
    single_process: SingleProcess = False,
) -> None:
    """Trade with real orders until SIGINT/SIGTERM, then stop cleanly: no new entries, the
    protective orders left on the exchange, a summary printed."""
    _trade(ctx, "live", symbols, timeframe, strategy, strategy_file, config, exchange_url,
           exchange_ws_url, adopt=adopt, confirm_real_money=confirm_real_money,
           single_process=single_process)  # fmt: skip


def _trade(
    ctx: typer.Context, mode: str, symbols: str, timeframe: str, strategy: str | None,
    strategy_file: Path | None, config: Path | None, exchange_url: str | None,
    exchange_ws_url: str | None, *, adopt: bool, confirm_real_money: bool, single_process: bool,
) -> None:  # fmt: skip
    from slt.adapters.db.migrate import status as schema_status
    from slt.adapters.db.migrate import upgrade
    from slt.adapters.db.urls import shown
    from slt.adapters.exchange.binance_rest import BinanceRest
    from slt.domain.timeframes import timeframe_ms
    from slt.engine.identity import run_id_from
    from slt.runtime.bootstrap import choose_strategy
    from slt.runtime.live_session import LiveSession
    from slt.runtime.session_records import SessionRecorder
    from slt.runtime.storage import configured_url, open_storage
    from slt.runtime.trading_config_file import load_trading_config

    settings = app_context(ctx).settings()
    names = [s.strip().upper() for s in symbols.split(",") if s.strip()]
    if not names:
        raise ConfigError("--symbols: give at least one symbol")
    timeframe_ms(timeframe)
    trading = load_trading_config(config)
    chosen = choose_strategy(strategy or trading.strategy.name, strategy_file,
                             trading.strategy.relaxed or settings.relaxed_signal_mode)  # fmt: skip
    rest_url, ws_url = settings.futures_endpoints()
    rest_url = (exchange_url or rest_url).rstrip("/")
    ws_url = (exchange_ws_url or (exchange_url and _ws_of(exchange_url)) or ws_url).rstrip("/")
    key = settings.binance_api_key.get_secret_value() if settings.binance_api_key else ""
    secret = settings.binance_api_secret.get_secret_value() if settings.binance_api_secret else ""
    if mode == "live" and (not key or not secret):
        raise ConfigError("slt live needs BINANCE_API_KEY and BINANCE_API_SECRET (for a local "
                          "exchange, the key and secret it printed)")  # fmt: skip
    engine = trading.engine()
    out = stdout()
    real_money = mode == "live" and rest_url in MAIN_URLS
    out.print(f"slt {mode}: {', '.join(names)} {timeframe}, strategy {chosen.name}, "
              f"exchange {rest_url}" + (" (REAL MONEY)" if real_money else ""))  # fmt: skip
    z = engine.sizing
    out.print(f"Risk per trade: {z.risk_pct:g} % of equity, leverage {z.leverage_min:g}-"
              f"{z.leverage_max:g}x, at most {z.max_open_positions} positions")  # fmt: skip
    confirmed = confirm_real_money or os.environ.get(CONFIRM_ENV, "").lower() == "yes"
    if real_money and not confirmed:
        raise ConfigError(f"this would trade real money on {rest_url}; add "
                          f"--confirm-real-money (or {CONFIRM_ENV}=yes) to go on, or use "
                          "BINANCE_TESTNET=true")  # fmt: skip

    run_id = run_id_from(time.time_ns() // 1_000_000)  # one per session: ids never repeat
    out.print(f"Run id {run_id}: its orders, fills and positions are recorded under it "
              "(slt status shows them)")  # fmt: skip

    if not single_process:
        _supervised(mode, names, timeframe, strategy or trading.strategy.name, strategy_file,
                    trading.strategy.relaxed or settings.relaxed_signal_mode, config, rest_url,
                    ws_url, key, secret, run_id, adopt, settings)  # fmt: skip
        return

    async def main() -> LiveSession:
        url = configured_url(settings)
        if (await schema_status(url)).current is None:  # a new database holds nothing to lose
            out.print(f"Creating the database schema in {shown(url)}")
            await upgrade(url)
        storage = await open_storage(settings)  # the schema checked before anything is sent
        try:
            async with BinanceRest(rest_url, key, secret) as rest:
                recorder = SessionRecorder(storage.writer, mode, run_id, timeframe)
                session = LiveSession(
                    rest, ws_url, names, timeframe, chosen, engine, run_id=run_id,
                    paper=mode == "paper", adopt=adopt, observe=recorder.observe,
                    on_candle=recorder.candle,
                )  # fmt: skip
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    with contextlib.suppress(NotImplementedError):
                        loop.add_signal_handler(sig, stop.set)
                await session.run(stop)
                return session
        finally:
            await storage.close()  # every queued record flushed

    session = asyncio.run(main())
    c = session.counts
    orders = c.commands.get("PlaceOrder", 0)
    tail = "; protective orders stay on the exchange." if mode == "live" else "."
    out.print(f"Stopped. Candles {sum(c.candles.values()):,} ({dict(c.candles)}), signals "
              f"{c.signals:,}, orders {orders:,}, fills {len(c.fills):,}, closed trades "
              f"{c.closed_trades:,}{tail}")  # fmt: skip


def _ws_of(http_url: str) -> str:
    """A local exchange serves streams on its REST port."""
    return "ws" + http_url.removeprefix("http")


def _supervised(
    mode: str, names: list[str], timeframe: str, strategy: str, strategy_file: Path | None,
    relaxed: bool, config: Path | None, rest_url: str, ws_url: str, key: str, secret: str,
    run_id: str, adopt: bool, settings: Any,
) -> None:  # fmt: skip
    """The three supervised processes; the summary is the brain's."""
    from slt.adapters.db.migrate import status as schema_status
    from slt.adapters.db.migrate import upgrade
    from slt.adapters.db.urls import shown
    from slt.runtime.storage import configured_url
    from slt.runtime.trading_runtime import run_trading
    from slt.runtime.trading_spec import Keys, TradingSpec

    out = stdout()
    url = configured_url(settings)

    async def prepare() -> None:
        if (await schema_status(url)).current is None:  # a new database holds nothing to lose
            out.print(f"Creating the database schema in {shown(url)}")
            await upgrade(url)

    asyncio.run(prepare())
    asyncio.run(preflight(mode, names, rest_url, key, secret))
    spec = TradingSpec(
        "paper" if mode == "paper" else "live", tuple(names), timeframe, run_id, rest_url,
        ws_url, str(Path(settings.data_dir) / "runs" / run_id), Keys(key, secret),
        strategy=strategy, strategy_file=str(strategy_file) if strategy_file else None,
        relaxed=relaxed, config_file=str(config) if config else None, adopt=adopt,
    )  # fmt: skip
    children = "feed and brain" if mode == "paper" else "feed, brain and executor"
    out.print(f"Processes: {children} under a supervisor (Ctrl-C stops them in order)")
    result = run_trading(spec)
    if result.refused:
        why = spec.run_dir / "refused.txt"
        raise ConfigError(why.read_text() if why.exists() else "the brain refused to trade "
                          "(see the log above)")  # fmt: skip
    b = result.brain
    restarts = {n: c.restarts for n, c in result.supervisor.children.items() if c.restarts}
    tail = "; protective orders stay on the exchange." if mode == "live" else "."
    out.print(f"Stopped. By {result.supervisor.stopped_by}; candles "
              f"{sum(b.get('candles', {}).values()):,} ({b.get('candles', {})}), signals "
              f"{b.get('signals', 0):,}, orders {b.get('commands', {}).get('PlaceOrder', 0):,}, "
              f"fills {b.get('fills', 0):,}, closed trades {b.get('closed_trades', 0):,}"
              f"{tail}" + (f" Restarts: {restarts}." if restarts else ""))  # fmt: skip


async def preflight(mode: str, names: list[str], rest_url: str, key: str, secret: str) -> None:
    """What would make every child fail, said once before any starts: symbols the exchange
    does not list; live, keys it refuses."""
    from slt.adapters.exchange.binance_rest import BinanceRest
    from slt.errors import ExchangeRejected
    from slt.runtime.exchange_setup import listed

    async with BinanceRest(rest_url, key, secret) as rest:
        await rest.sync_clock()
        await listed(rest, names)
        if mode == "live":
            try:
                await rest.signed("GET", "/fapi/v3/balance", weight=5)
            except ExchangeRejected as exc:
                why = f"Binance {exc.code}: {exc.msg}"
                raise ConfigError(f"the exchange refuses these API keys ({why}); check "
                                  "BINANCE_API_KEY and BINANCE_API_SECRET, and that futures "
                                  "trading is enabled for them") from exc  # fmt: skip
