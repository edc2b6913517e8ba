"""A parameter grid's rows: the grid's own job (what its owner sees, the sheet it ends with) and one job per cell.

The cells are ordinary jobs that name their grid (`grid_id`), so the queue, the worker and recovery treat each as
any other job; the grid's job is never queued itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.inbox import mark_handled
from storage.models import JobRow
from storage.new_jobs import Waiting, job_row, over_quota
from storage.quotas import charge_row
from storage.records import Job, JobDraft, QuotaReservation
from storage.repository import Repository


class GridJobs(Repository):
    async def create_grid(
        self, grid: JobDraft, cells: Sequence[tuple[JobDraft, QuotaReservation | None]]
    ) -> tuple[Job, list[Job]]:
        """The grid's job and its cells, in the cells' order, in one transaction: charged together, all or none, so
        a grid that the owner's quota cannot hold whole is refused whole (`QuotaExceeded`)."""
        now = self._now()

        def work(session: Session) -> tuple[Job, list[Job]]:
            group = [Waiting(draft, reservation) for draft, reservation in cells]
            refused = over_quota(session, group)
            if refused:
                raise next(iter(refused.values()))
            head = job_row(grid, now)
            session.add(head)
            session.flush()
            rows = [
                job_row(replace(waiting.draft, grid_id=head.id), now + timedelta(microseconds=place + 1))
                for place, waiting in enumerate(group)
            ]
            session.add_all(rows)
            session.flush()
            session.add_all(
                charge_row(row.id, waiting.draft.owner_id, waiting.reservation, now)
                for row, waiting in zip(rows, group, strict=True)
                if waiting.reservation is not None
            )
            if grid.answers is not None:
                source, update_ids = grid.answers
                mark_handled(session, source, list(update_ids), now)
            session.flush()
            return head.record(), [row.record() for row in rows]

        return await self._sessions.run(work)

    async def grid_cells(self, grid_id: str) -> list[Job]:
        """A grid's cells in their order (the order they were written in)."""

        def work(session: Session) -> list[Job]:
            rows = session.scalars(select(JobRow).where(JobRow.grid_id == grid_id).order_by(JobRow.created_at))
            return [row.record() for row in rows]

        return await self._sessions.run(work)
