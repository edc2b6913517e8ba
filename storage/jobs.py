"""Jobs: their lifecycle, their outputs, and the delivery of their results.

Every state change is one guarded UPDATE: it applies only from the states listed in `TRANSITIONS`,
and otherwise raises `InvalidTransition` naming the current state (so cancelling a job that is done
fails loudly instead of passing silently), or `NotFound` for an unknown id.

    queued --> running --> done | failed | cancelled
      |           |
      |           +--> queued     (requeue: restart recovery puts a job left running back)
      +--> failed | cancelled
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from storage.columns import as_utc
from storage.errors import InvalidTransition, NotFound
from storage.models import JobRow, OutputRow
from storage.new_jobs import NewJobs
from storage.quotas import commit_charge
from storage.records import (
    FINISHED_STATES,
    DeliveryState,
    Job,
    JobDraft,
    JobState,
    Output,
    OutputDraft,
    QuotaReservation,
)
from storage.repository import Repository

TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.RUNNING: frozenset({JobState.QUEUED}),
    JobState.QUEUED: frozenset({JobState.RUNNING}),
    JobState.DONE: frozenset({JobState.RUNNING}),
    JobState.FAILED: frozenset({JobState.QUEUED, JobState.RUNNING}),
    JobState.CANCELLED: frozenset({JobState.QUEUED, JobState.RUNNING}),
}
"""For each target state, the states a job may reach it from."""


class Jobs(Repository):
    _new_jobs: NewJobs

    async def create_job(self, draft: JobDraft, reservation: QuotaReservation | None = None) -> Job:
        """Write a new job, queued, with a fresh id, and charge its quota in the same transaction.

        Over a limit of the reservation, `QuotaExceeded` is raised and nothing is written. The jobs submitted while
        another group is being written are written together (`storage.new_jobs`).
        """
        return await self._new_jobs.create(draft, reservation)

    async def get_jobs(self, job_ids: Sequence[str]) -> dict[str, Job]:
        """The jobs of `job_ids` that exist, by id, in one read."""
        return await self._sessions.run(_jobs, list(job_ids))

    async def get_job(self, job_id: str) -> Job | None:
        return await self._sessions.run(_job, job_id)

    async def job_with_outputs(self, job_id: str) -> tuple[Job, list[Output]] | None:
        """A job and its outputs in order, in one read (a page or an API call shows both)."""

        def work(session: Session) -> tuple[Job, list[Output]] | None:
            job = _job(session, job_id)
            if job is None:
                return None
            rows = session.scalars(select(OutputRow).where(OutputRow.job_id == job_id).order_by(OutputRow.index))
            return job, [row.record() for row in rows]

        return await self._sessions.run(work)

    async def mark_running(self, job_id: str, now: datetime) -> Job:
        """Start an attempt: counts it in `attempts`."""
        return await self._change_state(job_id, JobState.RUNNING, started_at=as_utc(now), attempts=JobRow.attempts + 1)

    async def mark_running_many(self, job_ids: Sequence[str], now: datetime) -> list[Job]:
        """Start the attempts of a batch in one transaction; a job that is no longer queued (cancelled in the
        instant before the GPU took it) is left as it is, and only the jobs started are returned."""
        return await self._sessions.run(_start, list(job_ids), as_utc(now))

    async def requeue_job(self, job_id: str) -> Job:
        """Put a job left running (by a crash or a restart) back in the queue; `attempts` keeps the count."""
        return await self._change_state(job_id, JobState.QUEUED, started_at=None)

    async def mark_done(
        self,
        job_id: str,
        now: datetime,
        outputs: Sequence[OutputDraft],
        gpu_seconds: float | None = None,
        processed_prompt: str | None = None,
    ) -> Job:
        """Finish a job, record its images, the prompt the model was given when it differs from the user's (a
        translation), and (given `gpu_seconds`) settle its quota: all happen, or none."""
        return await self._sessions.run(_finish, job_id, as_utc(now), outputs, gpu_seconds, processed_prompt)

    async def mark_failed(self, job_id: str, now: datetime, code: str, message: str | None = None) -> Job:
        return await self._change_state(
            job_id, JobState.FAILED, finished_at=as_utc(now), error_code=code, error_message=message
        )

    async def mark_cancelled(self, job_id: str, now: datetime) -> Job:
        return await self._change_state(job_id, JobState.CANCELLED, finished_at=as_utc(now))

    async def jobs_in_states(self, states: Iterable[JobState]) -> list[Job]:
        """Jobs in any of `states`, oldest first: what a restart re-enqueues or retries."""

        def work(session: Session) -> list[Job]:
            rows = session.scalars(
                select(JobRow).where(JobRow.state.in_(list(states))).order_by(JobRow.created_at, JobRow.id)
            )
            return [row.record() for row in rows]

        return await self._sessions.run(work)

    async def owner_jobs(
        self,
        user_id: int,
        states: Iterable[JobState] | None = None,
        id_prefix: str = "",
        limit: int = 10,
        community_id: int | None = None,
        deleted: bool = True,
    ) -> list[Job]:
        """A user's jobs, newest first, optionally only in `states`, with ids starting with `id_prefix`, or made
        in one community; without `deleted`, only those whose images were not deleted."""
        query = select(JobRow).where(JobRow.owner_id == user_id)
        if not deleted:
            query = query.where(JobRow.deleted_at.is_(None))
        if community_id is not None:
            query = query.where(JobRow.community_id == community_id)
        if states is not None:
            query = query.where(JobRow.state.in_(list(states)))
        if id_prefix:
            query = query.where(JobRow.id.startswith(id_prefix, autoescape=True))
        else:  # a grid's cells are its sheet's, not listed apart; a reference names one still
            query = query.where(JobRow.grid_id.is_(None))

        def work(session: Session) -> list[Job]:
            rows = session.scalars(query.order_by(JobRow.created_at.desc(), JobRow.id.desc()).limit(limit))
            return [row.record() for row in rows]

        return await self._sessions.run(work)

    async def active_jobs(self, user_id: int) -> list[Job]:
        """A user's queued and running jobs, oldest first. They are few (the per-user cap, and a batch), so they are
        found by the owner and state index and sorted here: ordered by time in SQL, SQLite would walk every job of
        the user by the owner and time index instead."""

        def work(session: Session) -> list[Job]:
            rows = session.scalars(
                select(JobRow).where(
                    JobRow.owner_id == user_id,
                    JobRow.state.in_([JobState.QUEUED, JobState.RUNNING]),
                    JobRow.grid_id.is_(None),
                )
            )
            return sorted((row.record() for row in rows), key=lambda job: (job.created_at, job.id))

        return await self._sessions.run(work)

    async def active_counts(self, excluding_operation: str) -> dict[str, int]:
        """How many jobs are queued and running, by state, leaving out the jobs of one operation (one that no
        worker runs: its work is counted in other jobs)."""

        def work(session: Session) -> dict[str, int]:
            rows = session.execute(
                select(JobRow.state, func.count())
                .where(JobRow.state.in_([JobState.QUEUED, JobState.RUNNING]), JobRow.operation != excluding_operation)
                .group_by(JobRow.state)
            )
            return {state.value: count for state, count in rows}

        return await self._sessions.run(work)

    async def mark_deleted(self, job_id: str, now: datetime) -> Job:
        """Note that a job's images were deleted; deleting again keeps the first time."""

        def work(session: Session) -> Job:
            row = session.get(JobRow, job_id)
            if row is None:
                raise NotFound("job", job_id)
            if row.deleted_at is None:
                row.deleted_at = as_utc(now)
            return row.record()

        return await self._sessions.run(work)

    async def undelivered_jobs(self) -> list[Job]:
        """Finished jobs whose result still has to reach the user, earliest finished first."""

        def work(session: Session) -> list[Job]:
            rows = session.scalars(
                select(JobRow)
                .where(
                    JobRow.delivery_state == DeliveryState.PENDING,
                    JobRow.state.in_(FINISHED_STATES),
                    JobRow.grid_id.is_(None),  # a cell is delivered in its grid's sheet
                )
                .order_by(JobRow.finished_at, JobRow.id)
            )
            return [row.record() for row in rows]

        return await self._sessions.run(work)

    async def mark_delivered(self, job_id: str, now: datetime) -> Job:
        return await self._record_delivery(job_id, now, DeliveryState.DELIVERED, error=None)

    async def mark_delivery_failed(self, job_id: str, now: datetime, error: str, *, final: bool = False) -> Job:
        """Record a failed delivery attempt. The job stays pending, so `undelivered_jobs` offers it again, unless
        `final`: then its delivery is failed for good."""
        target = DeliveryState.FAILED if final else DeliveryState.PENDING
        return await self._record_delivery(job_id, now, target, error=error)

    async def outputs_of(self, job_id: str) -> list[Output]:
        def work(session: Session) -> list[Output]:
            rows = session.scalars(select(OutputRow).where(OutputRow.job_id == job_id).order_by(OutputRow.index))
            return [row.record() for row in rows]

        return await self._sessions.run(work)

    async def outputs_of_jobs(self, job_ids: Sequence[str]) -> dict[str, list[Output]]:
        """The outputs of several jobs in one query, each job's in order; a job without any is left out."""
        found: dict[str, list[Output]] = {}
        if not job_ids:
            return found

        def work(session: Session) -> None:
            rows = session.scalars(
                select(OutputRow).where(OutputRow.job_id.in_(list(job_ids))).order_by(OutputRow.job_id, OutputRow.index)
            )
            for row in rows:
                found.setdefault(row.job_id, []).append(row.record())

        await self._sessions.run(work)
        return found

    async def _change_state(self, job_id: str, target: JobState, **values: Any) -> Job:
        return await self._sessions.run(_change, job_id, target, values)

    async def _record_delivery(self, job_id: str, now: datetime, target: DeliveryState, error: str | None) -> Job:
        """A delivery attempt on a finished job whose delivery is still pending."""
        return await self._sessions.run(_delivery_attempt, job_id, as_utc(now), target, error)


def _jobs(session: Session, job_ids: list[str]) -> dict[str, Job]:
    return {row.id: row.record() for row in session.scalars(select(JobRow).where(JobRow.id.in_(job_ids)))}


def _job(session: Session, job_id: str) -> Job | None:
    row = session.get(JobRow, job_id)
    return None if row is None else row.record()


def _start(session: Session, job_ids: list[str], now: datetime) -> list[Job]:
    rows = session.scalars(
        update(JobRow)
        .where(JobRow.id.in_(job_ids), JobRow.state.in_(TRANSITIONS[JobState.RUNNING]))
        .values(state=JobState.RUNNING, started_at=now, attempts=JobRow.attempts + 1)
        .returning(JobRow),
        execution_options={"synchronize_session": False},
    )
    return [row.record() for row in rows]


def _finish(
    session: Session,
    job_id: str,
    now: datetime,
    outputs: Sequence[OutputDraft],
    gpu_seconds: float | None,
    processed_prompt: str | None,
) -> Job:
    changes: dict[str, Any] = {"finished_at": now}
    if processed_prompt is not None:
        changes["processed_prompt"] = processed_prompt
    row = _transition(session, job_id, JobState.DONE, **changes)
    if gpu_seconds is not None:
        commit_charge(session, job_id, gpu_seconds)
    session.add_all(
        OutputRow(
            job_id=job_id,
            index=output.index,
            path=output.path,
            sha256=output.sha256,
            size=output.size,
            width=output.width,
            height=output.height,
            seed=output.seed,
            nsfw_score=output.nsfw_score,
        )
        for output in outputs
    )
    return row.record()


def _delivery_attempt(session: Session, job_id: str, now: datetime, target: DeliveryState, error: str | None) -> Job:
    """A delivery attempt on a finished job whose delivery is still pending."""
    row = session.scalar(
        update(JobRow)
        .where(
            JobRow.id == job_id,
            JobRow.state.in_(FINISHED_STATES),
            JobRow.delivery_state == DeliveryState.PENDING,
        )
        .values(
            delivery_state=target,
            delivery_attempts=JobRow.delivery_attempts + 1,
            delivery_attempted_at=now,
            delivered_at=now if target is DeliveryState.DELIVERED else None,
            delivery_error=error,
        )
        .returning(JobRow)
    )
    if row is not None:
        return row.record()
    found = session.execute(select(JobRow.state, JobRow.delivery_state).where(JobRow.id == job_id)).first()
    if found is None:
        raise NotFound("job", job_id)
    state, delivery = found
    raise InvalidTransition(f"delivery of job {job_id}", delivery if state.finished else state, target)


def _change(session: Session, job_id: str, target: JobState, values: dict[str, Any]) -> Job:
    return _transition(session, job_id, target, **values).record()


def _transition(session: Session, job_id: str, target: JobState, **values: Any) -> JobRow:
    """A job that ends (or goes back to the queue) is no worker's any more: its lease goes with the change."""
    if target in FINISHED_STATES or target is JobState.QUEUED:
        values = {"leased_by": None, "lease_until": None, **values}
    row = session.scalar(
        update(JobRow)
        .where(JobRow.id == job_id, JobRow.state.in_(TRANSITIONS[target]))
        .values(state=target, **values)
        .returning(JobRow)
    )
    if row is not None:
        return row
    current = session.scalar(select(JobRow.state).where(JobRow.id == job_id))
    if current is None:
        raise NotFound("job", job_id)
    raise InvalidTransition(f"job {job_id}", current, target)
