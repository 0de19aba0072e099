"""Idempotent keys (fills, positions, signals, account snapshots) and closed-position totals.

A record written again after a lost commit acknowledgement now meets a unique key instead of
becoming a second row. Before this revision no code wrote signals, fills or positions, so
only account snapshots can hold duplicates to merge; fills and positions get keys from their
ids.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 20:48:21.225322
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "DELETE FROM account_state WHERE id NOT IN "
        "(SELECT MIN(id) FROM account_state GROUP BY mode, time_ms)"
    )
    with op.batch_alter_table("account_state", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_state_mode_time_ms"))
        batch_op.create_index(
            batch_op.f("ix_account_state_mode_time_ms"), ["mode", "time_ms"], unique=True
        )

    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fill_id", sa.String(length=64), nullable=True))
    op.execute("UPDATE fills SET fill_id = 'legacy-' || CAST(id AS VARCHAR(20))")
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.alter_column("fill_id", existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_index(batch_op.f("ix_fills_order_id"))
        batch_op.create_index(
            batch_op.f("ix_fills_order_id_fill_id"), ["order_id", "fill_id"], unique=True
        )

    with op.batch_alter_table("ml_models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("promoted_ms", sa.BigInteger(), nullable=True))

    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("position_key", sa.String(length=64), nullable=True))
    op.execute("UPDATE positions SET position_key = 'legacy-' || CAST(id AS VARCHAR(20))")
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.alter_column("position_key", existing_type=sa.String(length=64), nullable=False)
        batch_op.add_column(
            sa.Column(
                "realized_pnl",
                sa.Numeric(precision=38, scale=18),
                server_default="0",
                nullable=False,
            )
        )
        batch_op.add_column(
            sa.Column(
                "fees", sa.Numeric(precision=38, scale=18), server_default="0", nullable=False
            )
        )
        batch_op.add_column(
            sa.Column(
                "funding", sa.Numeric(precision=38, scale=18), server_default="0", nullable=False
            )
        )
        batch_op.add_column(sa.Column("exit_reason", sa.String(length=32), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_positions_mode_position_key"), ["mode", "position_key"], unique=True
        )

    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signals_symbol_time_ms"))
        batch_op.create_index(
            batch_op.f("ix_signals_symbol_time_ms_timeframe_strategy"),
            ["symbol", "time_ms", "timeframe", "strategy"],
            unique=True,
        )


def downgrade() -> None:
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signals_symbol_time_ms_timeframe_strategy"))
        batch_op.create_index(
            batch_op.f("ix_signals_symbol_time_ms"), ["symbol", "time_ms"], unique=False
        )

    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_positions_mode_position_key"))
        batch_op.drop_column("exit_reason")
        batch_op.drop_column("funding")
        batch_op.drop_column("fees")
        batch_op.drop_column("realized_pnl")
        batch_op.drop_column("position_key")

    with op.batch_alter_table("ml_models", schema=None) as batch_op:
        batch_op.drop_column("promoted_ms")

    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fills_order_id_fill_id"))
        batch_op.create_index(batch_op.f("ix_fills_order_id"), ["order_id"], unique=False)
        batch_op.drop_column("fill_id")

    with op.batch_alter_table("account_state", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_state_mode_time_ms"))
        batch_op.create_index(
            batch_op.f("ix_account_state_mode_time_ms"), ["mode", "time_ms"], unique=False
        )
