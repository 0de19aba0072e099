"""Initial schema: signals, market data, virtual positions and trades, models, experience,
account state, orders, fills, positions and equity snapshots.

Revision ID: 0001
Revises:
Create Date: 2026-11-21 20:22:54.659021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account_state",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("equity", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("balance", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("margin", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_state")),
    )
    with op.batch_alter_table("account_state", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_account_state_mode_time_ms"), ["mode", "time_ms"], unique=False
        )

    op.create_table(
        "equity_snapshots",
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.Column("equity", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("cash", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("unrealized_pnl", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.PrimaryKeyConstraint("mode", "time_ms", name=op.f("pk_equity_snapshots")),
    )
    op.create_table(
        "market_data",
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("market", sa.String(length=8), nullable=False),
        sa.Column("timeframe", sa.String(length=8), nullable=False),
        sa.Column("open_time_ms", sa.BigInteger(), nullable=False),
        sa.Column("open", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("high", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("low", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("close", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("volume", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.PrimaryKeyConstraint(
            "symbol", "market", "timeframe", "open_time_ms", name=op.f("pk_market_data")
        ),
    )
    op.create_table(
        "ml_models",
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("train_start_ms", sa.BigInteger(), nullable=False),
        sa.Column("train_end_ms", sa.BigInteger(), nullable=False),
        sa.Column("feature_schema_hash", sa.String(length=64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("model", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_ml_models")),
    )
    with op.batch_alter_table("ml_models", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ml_models_status"), ["status"], unique=False)

    op.create_table(
        "orders",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("side", sa.SmallInteger(), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("price", sa.Numeric(precision=38, scale=18), nullable=True),
        sa.Column("reduce_only", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("exchange_order_id", sa.String(length=64), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_orders_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_orders_symbol_created_ms"), ["symbol", "created_ms"], unique=False
        )

    op.create_table(
        "positions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.SmallInteger(), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("entry_price", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("leverage", sa.Numeric(precision=8, scale=2), nullable=False),
        sa.Column("margin", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("opened_ms", sa.BigInteger(), nullable=False),
        sa.Column("closed_ms", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_positions")),
    )
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_positions_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_positions_symbol_opened_ms"), ["symbol", "opened_ms"], unique=False
        )

    op.create_table(
        "signals",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("timeframe", sa.String(length=8), nullable=False),
        sa.Column("direction", sa.SmallInteger(), nullable=False),
        sa.Column("raw_score", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("features", sa.LargeBinary(), nullable=False),
        sa.Column("feature_schema_hash", sa.String(length=64), nullable=False),
        sa.Column("strategy", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signals")),
    )
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_signals_symbol_time_ms"), ["symbol", "time_ms"], unique=False
        )

    op.create_table(
        "fills",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.Column("price", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("fee", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("liquidation", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_fills_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fills")),
    )
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fills_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_fills_time_ms"), ["time_ms"], unique=False)

    op.create_table(
        "virtual_positions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("signal_id", sa.BigInteger(), nullable=True),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("direction", sa.SmallInteger(), nullable=False),
        sa.Column("entry_time_ms", sa.BigInteger(), nullable=False),
        sa.Column("entry_price", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("stop_loss_pct", sa.Float(), nullable=False),
        sa.Column("take_profit_pct", sa.Float(), nullable=False),
        sa.Column("max_holding_ms", sa.BigInteger(), nullable=False),
        sa.Column("features", sa.LargeBinary(), nullable=False),
        sa.Column("feature_schema_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["signal_id"], ["signals.id"], name=op.f("fk_virtual_positions_signal_id_signals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_virtual_positions")),
    )
    with op.batch_alter_table("virtual_positions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_virtual_positions_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_virtual_positions_symbol_entry_time_ms"),
            ["symbol", "entry_time_ms"],
            unique=False,
        )

    op.create_table(
        "virtual_trades",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("position_id", sa.BigInteger(), nullable=True),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("direction", sa.SmallInteger(), nullable=False),
        sa.Column("entry_time_ms", sa.BigInteger(), nullable=False),
        sa.Column("entry_price", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("stop_loss_pct", sa.Float(), nullable=False),
        sa.Column("take_profit_pct", sa.Float(), nullable=False),
        sa.Column("exit_time_ms", sa.BigInteger(), nullable=False),
        sa.Column("exit_price", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("exit_reason", sa.String(length=32), nullable=False),
        sa.Column("return_pct", sa.Float(), nullable=False),
        sa.Column("reward", sa.Float(), nullable=False),
        sa.Column("won", sa.Boolean(), nullable=False),
        sa.Column("features", sa.LargeBinary(), nullable=False),
        sa.Column("feature_schema_hash", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["position_id"],
            ["virtual_positions.id"],
            name=op.f("fk_virtual_trades_position_id_virtual_positions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_virtual_trades")),
    )
    with op.batch_alter_table("virtual_trades", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_virtual_trades_exit_time_ms"), ["exit_time_ms"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_virtual_trades_model_version"), ["model_version"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_virtual_trades_symbol_exit_time_ms"),
            ["symbol", "exit_time_ms"],
            unique=False,
        )

    op.create_table(
        "experience_buffer",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("virtual_trade_id", sa.BigInteger(), nullable=True),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.Column("features", sa.LargeBinary(), nullable=False),
        sa.Column("feature_schema_hash", sa.String(length=64), nullable=False),
        sa.Column("won", sa.Boolean(), nullable=False),
        sa.Column("return_pct", sa.Float(), nullable=False),
        sa.Column("reward", sa.Float(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["virtual_trade_id"],
            ["virtual_trades.id"],
            name=op.f("fk_experience_buffer_virtual_trade_id_virtual_trades"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experience_buffer")),
    )
    with op.batch_alter_table("experience_buffer", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_experience_buffer_time_ms"), ["time_ms"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("experience_buffer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_experience_buffer_time_ms"))

    op.drop_table("experience_buffer")
    with op.batch_alter_table("virtual_trades", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_virtual_trades_symbol_exit_time_ms"))
        batch_op.drop_index(batch_op.f("ix_virtual_trades_model_version"))
        batch_op.drop_index(batch_op.f("ix_virtual_trades_exit_time_ms"))

    op.drop_table("virtual_trades")
    with op.batch_alter_table("virtual_positions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_virtual_positions_symbol_entry_time_ms"))
        batch_op.drop_index(batch_op.f("ix_virtual_positions_status"))

    op.drop_table("virtual_positions")
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fills_time_ms"))
        batch_op.drop_index(batch_op.f("ix_fills_order_id"))

    op.drop_table("fills")
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signals_symbol_time_ms"))

    op.drop_table("signals")
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_positions_symbol_opened_ms"))
        batch_op.drop_index(batch_op.f("ix_positions_status"))

    op.drop_table("positions")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_symbol_created_ms"))
        batch_op.drop_index(batch_op.f("ix_orders_status"))

    op.drop_table("orders")
    with op.batch_alter_table("ml_models", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ml_models_status"))

    op.drop_table("ml_models")
    op.drop_table("market_data")
    op.drop_table("equity_snapshots")
    with op.batch_alter_table("account_state", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_state_mode_time_ms"))

    op.drop_table("account_state")
