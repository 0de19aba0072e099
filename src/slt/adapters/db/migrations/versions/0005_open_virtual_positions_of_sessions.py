"""Open virtual positions of paper and live sessions, kept across a restart.

A session writes each signal's virtual position when it is decided, before it enters: the
entry price becomes nullable. The signal time, the confidence, the close of the last candle
followed and the exit kernels' state (levels, best price, partial exits) rebuild it exactly;
the run id says which session opened it. Rows written before this revision keep NULLs and
the run id ''.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-20 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_MONEY = sa.Numeric(precision=38, scale=18)


def upgrade() -> None:
    with op.batch_alter_table("virtual_positions", schema=None) as batch_op:
        batch_op.alter_column("entry_price", existing_type=_MONEY, nullable=True)
        batch_op.add_column(sa.Column("signal_time_ms", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("confidence", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("seen_close_ms", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("exit_state", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("run_id", sa.String(length=32), server_default="", nullable=False)
        )


def downgrade() -> None:
    # The old schema cannot hold a position before its entry: those (never entered, so no
    # trade refers to them) go. SQLite rebuilds the table, and with foreign keys on it cannot
    # drop a table that trades refer to: their links, which 0004 never wrote, go first.
    op.execute("DELETE FROM virtual_positions WHERE entry_price IS NULL")
    op.execute("UPDATE virtual_trades SET position_id = NULL WHERE position_id IS NOT NULL")
    with op.batch_alter_table("virtual_positions", schema=None) as batch_op:
        batch_op.drop_column("run_id")
        batch_op.drop_column("exit_state")
        batch_op.drop_column("seen_close_ms")
        batch_op.drop_column("confidence")
        batch_op.drop_column("signal_time_ms")
        batch_op.alter_column("entry_price", existing_type=_MONEY, nullable=False)
