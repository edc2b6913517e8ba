"""Indexes for the lookups that scanned: outputs by path (deleting a job's images asks which other jobs show each
file) and a user's jobs by state (`/queue`, the newest active job), which the owner and time index served only by
reading every job of the user.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_outputs_path"), "outputs", ["path"])
    op.create_index(op.f("ix_jobs_owner_id_state_created_at"), "jobs", ["owner_id", "state", "created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_jobs_owner_id_state_created_at"), table_name="jobs")
    op.drop_index(op.f("ix_outputs_path"), table_name="outputs")
