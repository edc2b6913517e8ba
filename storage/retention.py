"""What retention and deletion need: the finished jobs older than a cut-off, and which files other jobs still use.

Files are named by their content, so two jobs may hold the same file (a reroll keeps its parent's upload, two
users upload the same picture): a file goes only when no undeleted job outside those being deleted names it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Text, and_, cast, or_, select, update
from sqlalchemy.orm import Session

from storage.columns import as_utc
from storage.models import JobRow, OutputRow
from storage.records import FINISHED_STATES, Job
from storage.repository import Repository

_PATHS_PER_QUERY = 200


class Retention(Repository):
    async def expired_jobs(
        self,
        before: datetime,
        *,
        community_ids: Sequence[int] | None = None,
        excluding: Sequence[int] = (),
        after: Job | None = None,
        limit: int = 500,
    ) -> list[Job]:
        """Finished, undeleted jobs that ended before `before`, oldest first, after the job `after`: in the
        communities `community_ids` (None: any, jobs outside communities included), none of `excluding`."""

        def work(session: Session) -> list[Job]:
            query = select(JobRow).where(
                JobRow.state.in_(FINISHED_STATES), JobRow.deleted_at.is_(None), JobRow.finished_at < as_utc(before)
            )
            if community_ids is not None:
                query = query.where(JobRow.community_id.in_(list(community_ids)))
            if excluding:
                query = query.where(or_(JobRow.community_id.is_(None), JobRow.community_id.not_in(list(excluding))))
            if after is not None:
                assert after.finished_at is not None
                finished = as_utc(after.finished_at)
                query = query.where(
                    or_(JobRow.finished_at > finished, and_(JobRow.finished_at == finished, JobRow.id > after.id))
                )
            rows = session.scalars(query.order_by(JobRow.finished_at, JobRow.id).limit(limit))
            return [row.record() for row in rows]

        return await self._sessions.run(work)

    async def paths_kept(self, paths: Iterable[str], job_ids: Sequence[str]) -> set[str]:
        """Which of `paths` an undeleted job other than `job_ids` names, as an image it made or as an input of its
        stored request (its `parameters`)."""
        wanted = sorted(set(paths))
        outputs = [path for path in wanted if not path.startswith("inputs/")]
        inputs = [path for path in wanted if path.startswith("inputs/")]

        def work(session: Session) -> set[str]:
            kept: set[str] = set()
            if outputs:
                kept |= set(
                    session.scalars(
                        select(OutputRow.path)
                        .join(JobRow, JobRow.id == OutputRow.job_id)
                        .where(
                            OutputRow.path.in_(outputs),
                            OutputRow.job_id.not_in(list(job_ids)),
                            JobRow.deleted_at.is_(None),
                        )
                    )
                )
            written = cast(JobRow.parameters, Text)  # a stored request names its inputs' paths, quoted
            for start in range(0, len(inputs), _PATHS_PER_QUERY):
                chunk = inputs[start : start + _PATHS_PER_QUERY]
                named = or_(*(written.contains(f'"{path}"', autoescape=True) for path in chunk))
                others = select(written).where(named, JobRow.id.not_in(list(job_ids)), JobRow.deleted_at.is_(None))
                for text in session.scalars(others):
                    kept |= {path for path in chunk if f'"{path}"' in text}
            return kept

        return await self._sessions.run(work)

    async def mark_deleted_many(self, job_ids: Sequence[str], now: datetime) -> None:
        """As `mark_deleted` for several jobs in one transaction; a job deleted before keeps its first time."""

        def work(session: Session) -> None:
            session.execute(
                update(JobRow)
                .where(JobRow.id.in_(list(job_ids)), JobRow.deleted_at.is_(None))
                .values(deleted_at=as_utc(now))
            )

        await self._sessions.run(work)
