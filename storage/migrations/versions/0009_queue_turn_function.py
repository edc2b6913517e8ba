"""A change of the shared queue starts with one round trip: `easel_queue_turn` takes the queue's lock, then reads
the database's clock and the events after a seq, each with a snapshot taken once the lock is held (a VOLATILE
PL/pgSQL function's statements each take a fresh one). PostgreSQL only: a SQLite file has one writer.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION easel_queue_turn(lock_key bigint, since_seq bigint)
        RETURNS TABLE (clock double precision, seq bigint, at double precision, kind varchar, data json)
        LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock(lock_key);
            RETURN QUERY SELECT extract(epoch FROM clock_timestamp())::double precision, NULL::bigint,
                NULL::double precision, NULL::varchar, NULL::json;
            RETURN QUERY SELECT NULL::double precision, e.seq, e.at, e.kind::varchar, e.data
                FROM queue_events AS e WHERE e.seq > since_seq ORDER BY e.seq;
        END
        $$
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION easel_queue_turn(bigint, bigint)")
