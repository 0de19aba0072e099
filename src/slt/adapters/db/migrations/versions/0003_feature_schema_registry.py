"""Feature schema registry: what each feature schema hash stands for.

Virtual trades, experience rows, signals and models carry a feature schema hash. This table
keeps, per hash, its description (base timeframe, each feature family's version and parameters,
the columns), so that the retrainer can say why it sets aside examples of another schema.
Hashes stored before this revision have no description: they hashed source code, and nothing
can tell now what they meant.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 15:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feature_schemas",
        sa.Column("feature_schema_hash", sa.String(length=64), nullable=False),
        sa.Column("base_timeframe", sa.String(length=8), nullable=False),
        sa.Column("description", sa.JSON(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("feature_schema_hash", name=op.f("pk_feature_schemas")),
    )


def downgrade() -> None:
    op.drop_table("feature_schemas")
