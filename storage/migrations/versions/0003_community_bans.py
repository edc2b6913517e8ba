"""Bans from one community.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
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
        "community_bans",
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_community_bans_community_id_communities")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_community_bans_user_id_users")),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], name=op.f("fk_community_bans_actor_id_users")),
        sa.PrimaryKeyConstraint("community_id", "user_id", name=op.f("pk_community_bans")),
    )


def downgrade() -> None:
    op.drop_table("community_bans")
