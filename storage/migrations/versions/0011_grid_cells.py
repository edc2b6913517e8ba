"""Parameter grids: a grid's cells are jobs that name the grid's own job, so that their images make one sheet and
are never delivered one by one.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("grid_id", sa.String(32), nullable=True))
        batch.create_foreign_key("fk_jobs_grid_id_jobs", "jobs", ["grid_id"], ["id"])
        batch.create_index("ix_jobs_grid_id", ["grid_id"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_grid_id")
        batch.drop_constraint("fk_jobs_grid_id_jobs", type_="foreignkey")
        batch.drop_column("grid_id")
