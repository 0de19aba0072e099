"""Every table of the database, as SQLAlchemy Core tables (the repositories write SQL here only).

Times are int64 ms UTC; money and prices are exact numerics; percentages and scores, which
are model inputs and outputs rather than money, are floats. A feature snapshot is the row of
the feature matrix as little-endian float64 bytes (NaN kept), named by the feature schema hash:
50,000 snapshots read back in milliseconds, where JSON would take seconds.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

SYMBOL = 32
RUN_ID = 32
# Prices and quantities: 38 digits, 18 after the point (BTC at 10^6 USDT and 10^-8 lots both fit).
MONEY = Numeric(38, 18)


def _features() -> tuple[Column[bytes], Column[str]]:
    return (
        Column("features", LargeBinary, nullable=False),
        Column("feature_schema_hash", String(64), nullable=False),
    )


def _entry(*, pending: bool = False) -> tuple[Column[object], ...]:
    """A virtual position's entry, as both the open position and the closed trade hold it
    (``pending``: the price may still be unknown)."""
    return (
        Column("symbol", String(SYMBOL), nullable=False),
        Column("direction", SmallInteger, nullable=False),
        Column("entry_time_ms", BigInteger, nullable=False),
        Column("entry_price", MONEY, nullable=pending),
        Column("stop_loss_pct", Float, nullable=False),
        Column("take_profit_pct", Float, nullable=False),
    )


def _run_id() -> Column[str]:
    """The trading session that wrote the row ('' on rows written before sessions were named)."""
    return Column("run_id", String(RUN_ID), nullable=False, server_default="")


def _id() -> Column[int]:
    return Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True)


signals = Table(
    "signals",
    metadata,
    _id(),
    Column("time_ms", BigInteger, nullable=False),
    Column("symbol", String(SYMBOL), nullable=False),
    Column("timeframe", String(8), nullable=False),
    Column("direction", SmallInteger, nullable=False),
    Column("raw_score", Float, nullable=False),
    Column("confidence", Float, nullable=False),
    *_features(),
    Column("strategy", String(64), nullable=False),
    Column("model_version", String(64), nullable=False),
    # One signal per strategy and candle: a retried write cannot store it twice.
    Index(None, "symbol", "time_ms", "timeframe", "strategy", unique=True),
)

market_data = Table(
    "market_data",
    metadata,
    Column("symbol", String(SYMBOL), primary_key=True),
    Column("market", String(8), primary_key=True),
    Column("timeframe", String(8), primary_key=True),
    Column("open_time_ms", BigInteger, primary_key=True),
    Column("open", MONEY, nullable=False),
    Column("high", MONEY, nullable=False),
    Column("low", MONEY, nullable=False),
    Column("close", MONEY, nullable=False),
    Column("volume", MONEY, nullable=False),
)

# Open virtual positions of paper and live sessions, kept so that a restart follows them on:
# 'open' until they close ('closed', with their virtual trade) or never enter because their
# entry candle was missing ('expired'). ``entry_price`` and ``exit_state`` (the exit kernels'
# record of the position, by field) stay NULL until the position enters at its open.
virtual_positions = Table(
    "virtual_positions",
    metadata,
    _id(),
    Column("signal_id", BigInteger, ForeignKey("signals.id"), nullable=True),
    *_entry(pending=True),
    Column("max_holding_ms", BigInteger, nullable=False),
    *_features(),
    Column("status", String(16), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("signal_time_ms", BigInteger, nullable=True),
    Column("confidence", Float, nullable=True),
    Column("seen_close_ms", BigInteger, nullable=True),
    Column("exit_state", JSON(none_as_null=True), nullable=True),
    _run_id(),
    Index(None, "status"),
    Index(None, "symbol", "entry_time_ms"),
)

virtual_trades = Table(
    "virtual_trades",
    metadata,
    _id(),
    Column("position_id", BigInteger, ForeignKey("virtual_positions.id"), nullable=True),
    *_entry(),
    Column("exit_time_ms", BigInteger, nullable=False),
    Column("exit_price", MONEY, nullable=False),
    Column("exit_reason", String(32), nullable=False),
    Column("return_pct", Float, nullable=False),
    Column("reward", Float, nullable=False),
    Column("won", Boolean, nullable=False),
    *_features(),
    Column("model_version", String(64), nullable=False),
    Index(None, "exit_time_ms"),
    Index(None, "symbol", "exit_time_ms"),
    Index(None, "model_version"),
)

ml_models = Table(
    "ml_models",
    metadata,
    Column("version", String(64), primary_key=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("train_start_ms", BigInteger, nullable=False),
    Column("train_end_ms", BigInteger, nullable=False),
    Column("feature_schema_hash", String(64), nullable=False),
    Column("params", JSON, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("model", LargeBinary, nullable=False),
    Column("promoted_ms", BigInteger, nullable=True),
    Index(None, "status"),
)

# What each feature schema hash stands for (family versions and parameters, columns), so that
# the learner can say why it sets aside data recorded under another schema.
feature_schemas = Table(
    "feature_schemas",
    metadata,
    Column("feature_schema_hash", String(64), primary_key=True),
    Column("base_timeframe", String(8), nullable=False),
    Column("description", JSON, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

experience_buffer = Table(
    "experience_buffer",
    metadata,
    _id(),
    Column("virtual_trade_id", BigInteger, ForeignKey("virtual_trades.id"), nullable=True),
    Column("time_ms", BigInteger, nullable=False),
    *_features(),
    Column("won", Boolean, nullable=False),
    Column("return_pct", Float, nullable=False),
    Column("reward", Float, nullable=False),
    Column("weight", Float, nullable=False),
    Index(None, "time_ms"),
)

account_state = Table(
    "account_state",
    metadata,
    _id(),
    Column("time_ms", BigInteger, nullable=False),
    Column("mode", String(8), nullable=False),
    Column("equity", MONEY, nullable=False),
    Column("balance", MONEY, nullable=False),
    Column("margin", MONEY, nullable=False),
    Index(None, "mode", "time_ms", unique=True),
)

orders = Table(
    "orders",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("mode", String(8), nullable=False),
    Column("symbol", String(SYMBOL), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("side", SmallInteger, nullable=False),
    Column("quantity", MONEY, nullable=False),
    Column("price", MONEY, nullable=True),
    Column("reduce_only", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("exchange_order_id", String(64), nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    _run_id(),
    Index(None, "status"),
    Index(None, "symbol", "created_ms"),
    Index(None, "mode", "run_id", "status"),
)

fills = Table(
    "fills",
    metadata,
    _id(),
    Column("order_id", String(64), ForeignKey("orders.id"), nullable=False),
    Column("time_ms", BigInteger, nullable=False),
    Column("price", MONEY, nullable=False),
    Column("quantity", MONEY, nullable=False),
    Column("fee", MONEY, nullable=False),
    Column("liquidation", Boolean, nullable=False),
    # The exchange's trade id: a fill written again after a lost commit acknowledgement is
    # recognised, not doubled.
    Column("fill_id", String(64), nullable=False),
    # Its order's mode and run id, so that a session's fills are read without a join.
    Column("mode", String(8), nullable=False),
    _run_id(),
    Index(None, "order_id", "fill_id", unique=True),
    Index(None, "time_ms"),
    Index(None, "mode", "run_id", "time_ms"),
)

positions = Table(
    "positions",
    metadata,
    _id(),
    Column("mode", String(8), nullable=False),
    Column("symbol", String(SYMBOL), nullable=False),
    Column("side", SmallInteger, nullable=False),
    Column("quantity", MONEY, nullable=False),
    Column("entry_price", MONEY, nullable=False),
    Column("leverage", Numeric(8, 2), nullable=False),
    Column("margin", MONEY, nullable=False),
    Column("opened_ms", BigInteger, nullable=False),
    Column("closed_ms", BigInteger, nullable=True),
    Column("status", String(16), nullable=False),
    Column("position_key", String(64), nullable=False),
    Column("realized_pnl", MONEY, nullable=False, server_default="0"),
    Column("fees", MONEY, nullable=False, server_default="0"),
    Column("funding", MONEY, nullable=False, server_default="0"),
    Column("exit_reason", String(32), nullable=True),
    _run_id(),
    Index(None, "status"),
    Index(None, "symbol", "opened_ms"),
    # The engine's position id restarts with each session: the run id makes it unique.
    Index(None, "mode", "run_id", "position_key", unique=True),
)

equity_snapshots = Table(
    "equity_snapshots",
    metadata,
    Column("mode", String(8), primary_key=True),
    Column("run_id", String(RUN_ID), primary_key=True, server_default=""),
    Column("time_ms", BigInteger, primary_key=True),
    Column("equity", MONEY, nullable=False),
    Column("cash", MONEY, nullable=False),
    Column("unrealized_pnl", MONEY, nullable=False),
)
