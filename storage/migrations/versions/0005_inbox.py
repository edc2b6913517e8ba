"""The inbox of updates taken from a platform and not yet handled (durable intake).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("source", "update_id", name=op.f("pk_inbox")),
    )
    op.create_index(op.f("ix_inbox_source_handled_at"), "inbox", ["source", "handled_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_inbox_source_handled_at"), table_name="inbox")
    op.drop_table("inbox")
