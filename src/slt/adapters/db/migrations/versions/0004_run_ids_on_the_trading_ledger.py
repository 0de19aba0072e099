"""Mode and run id on every row of the trading ledger (orders, fills, positions, equity).

A paper or live session records under its run id, so `slt status` can show one session, and
the engine's position ids and equity times, which restart with each session, stay unique
under (mode, run id). Rows written before this revision get the run id ''; fills take the
mode and run id of their order.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-14 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _run_id() -> sa.Column[str]:
    return sa.Column("run_id", sa.String(length=32), server_default="", nullable=False)


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(_run_id())
        batch_op.create_index(
            batch_op.f("ix_orders_mode_run_id_status"), ["mode", "run_id", "status"], unique=False
        )

    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mode", sa.String(length=8), nullable=True))
        batch_op.add_column(_run_id())
    op.execute(
        "UPDATE fills SET mode = (SELECT orders.mode FROM orders WHERE orders.id = fills.order_id)"
    )
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.alter_column("mode", existing_type=sa.String(length=8), nullable=False)
        batch_op.create_index(
            batch_op.f("ix_fills_mode_run_id_time_ms"), ["mode", "run_id", "time_ms"], unique=False
        )

    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.add_column(_run_id())
        batch_op.drop_index(batch_op.f("ix_positions_mode_position_key"))
        batch_op.create_index(
            batch_op.f("ix_positions_mode_run_id_position_key"),
            ["mode", "run_id", "position_key"],
            unique=True,
        )

    with op.batch_alter_table("equity_snapshots", schema=None) as batch_op:
        batch_op.add_column(_run_id())
        batch_op.drop_constraint("pk_equity_snapshots", type_="primary")
        batch_op.create_primary_key("pk_equity_snapshots", ["mode", "run_id", "time_ms"])


def downgrade() -> None:
    # Snapshots of several runs at one (mode, time) cannot share the old key: one stays (the
    # greatest run id). Position keys take their run id in front, to stay unique per mode.
    op.execute(
        "DELETE FROM equity_snapshots WHERE EXISTS (SELECT 1 FROM equity_snapshots AS later "
        "WHERE later.mode = equity_snapshots.mode AND later.time_ms = equity_snapshots.time_ms "
        "AND later.run_id > equity_snapshots.run_id)"
    )
    with op.batch_alter_table("equity_snapshots", schema=None) as batch_op:
        batch_op.drop_constraint("pk_equity_snapshots", type_="primary")
        batch_op.create_primary_key("pk_equity_snapshots", ["mode", "time_ms"])
        batch_op.drop_column("run_id")

    op.execute(
        "UPDATE positions SET position_key = run_id || '-' || position_key WHERE run_id <> ''"
    )
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_positions_mode_run_id_position_key"))
        batch_op.create_index(
            batch_op.f("ix_positions_mode_position_key"), ["mode", "position_key"], unique=True
        )
        batch_op.drop_column("run_id")

    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fills_mode_run_id_time_ms"))
        batch_op.drop_column("run_id")
        batch_op.drop_column("mode")

    # ALTER TABLE ... DROP COLUMN (SQLite 3.35 and later), not a batch rebuild: fills refer to
    # orders, and dropping the old orders table would trip their foreign key.
    op.drop_index(op.f("ix_orders_mode_run_id_status"), table_name="orders")
    op.drop_column("orders", "run_id")
