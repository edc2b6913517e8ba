"""Initial schema: users, communities, jobs and their outputs, message links, the quota ledger, the moderation log.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def timestamp(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def state(name: str, values: tuple[str, ...], constraint: str) -> sa.Column:
    kind = sa.Enum(*values, name=constraint, native_enum=False, create_constraint=True, length=16)
    return sa.Column(name, kind, nullable=False)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("platform_user_id", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=True),
        sa.Column("language", sa.String(16), nullable=True),
        sa.Column("tier", sa.String(32), nullable=False),
        timestamp("banned_until", nullable=True),
        sa.Column("ban_reason", sa.Text(), nullable=True),
        timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("platform", "platform_user_id", name=op.f("uq_users_platform_platform_user_id")),
    )
    op.create_table(
        "communities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("platform_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_communities")),
        sa.UniqueConstraint("platform", "platform_id", name=op.f("uq_communities_platform_platform_id")),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=True),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("processed_prompt", sa.Text(), nullable=True),
        sa.Column("negative_prompt", sa.Text(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.Double(), nullable=False),
        state("state", ("queued", "running", "done", "failed", "cancelled"), "job_state"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        timestamp("created_at"),
        timestamp("started_at", nullable=True),
        timestamp("finished_at", nullable=True),
        state("delivery_state", ("pending", "delivered", "failed"), "delivery_state"),
        sa.Column("delivery_attempts", sa.Integer(), nullable=False),
        timestamp("delivery_attempted_at", nullable=True),
        timestamp("delivered_at", nullable=True),
        sa.Column("delivery_error", sa.Text(), nullable=True),
        sa.Column("parent_id", sa.String(32), nullable=True),
        sa.Column("input_files", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_jobs_owner_id_users")),
        sa.ForeignKeyConstraint(["community_id"], ["communities.id"], name=op.f("fk_jobs_community_id_communities")),
        sa.ForeignKeyConstraint(["parent_id"], ["jobs.id"], name=op.f("fk_jobs_parent_id_jobs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index(op.f("ix_jobs_state"), "jobs", ["state"])
    op.create_index(op.f("ix_jobs_owner_id_created_at"), "jobs", ["owner_id", "created_at"])
    op.create_index(op.f("ix_jobs_delivery_state"), "jobs", ["delivery_state"])
    op.create_table(
        "outputs",
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_outputs_job_id_jobs")),
        sa.PrimaryKeyConstraint("job_id", "index", name=op.f("pk_outputs")),
    )
    op.create_table(
        "message_links",
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("chat_id", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("output_index", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_message_links_job_id_jobs")),
        sa.PrimaryKeyConstraint("platform", "chat_id", "message_id", name=op.f("pk_message_links")),
    )
    op.create_index(op.f("ix_message_links_job_id"), "message_links", ["job_id"])
    op.create_table(
        "quota_ledger",
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("images", sa.Integer(), nullable=False),
        sa.Column("gpu_seconds", sa.Double(), nullable=False),
        state("state", ("reserved", "committed", "refunded"), "quota_state"),
        timestamp("created_at"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_quota_ledger_job_id_jobs")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_quota_ledger_user_id_users")),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_quota_ledger")),
    )
    op.create_index(op.f("ix_quota_ledger_user_id_day"), "quota_ledger", ["user_id", "day"])
    op.create_table(
        "moderation_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_moderation_log_community_id_communities")
        ),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], name=op.f("fk_moderation_log_actor_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moderation_log")),
    )
    op.create_index(op.f("ix_moderation_log_community_id_created_at"), "moderation_log", ["community_id", "created_at"])


def downgrade() -> None:
    for table in ("moderation_log", "quota_ledger", "message_links", "outputs", "jobs", "communities", "users"):
        op.drop_table(table)
