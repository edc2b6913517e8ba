"""The queue that processes share on PostgreSQL: a log of its events in order, and on each job the lease of the
worker that runs it (who, and until when it counts as alive).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queue_events",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_queue_events")),
    )
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("leased_by", sa.String(128), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("leased_by")
    op.drop_table("queue_events")
