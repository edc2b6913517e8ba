"""New jobs written in groups (`storage.groups`): the submissions that wait for the database while one group is
written go together in the next transaction (group commit).

Written alone, each job of a burst took a transaction of its own: about ten statements (the job, its update marked
handled, its owner's row locked, the day's usage read, its reservation), each some round trips to aiosqlite's thread,
and a commit. Written together, a group takes one insert of its jobs, one locked read of its owners' usage, one
insert of their reservations and one commit, whatever its size. A job over its owner's quota is refused alone
(`QuotaExceeded`), the others of its group are written; any other failure fails the group (a job is never written
twice by a retry of a commit whose outcome is unknown).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.errors import QuotaExceeded
from storage.groups import Grouped
from storage.inbox import mark_handled
from storage.models import JobRow, QuotaChargeRow, UserRow
from storage.quotas import charge_row, over_limit
from storage.records import DeliveryState, Job, JobDraft, JobState, QuotaReservation, QuotaState
from storage.turns import Sessions


@dataclass(eq=False)
class Waiting:
    draft: JobDraft
    reservation: QuotaReservation | None


class NewJobs:
    def __init__(self, sessions: Sessions, now: Callable[[], datetime]) -> None:
        self._now = now
        self._groups: Grouped[Waiting, Job] = Grouped(sessions, self._insert)

    async def create(self, draft: JobDraft, reservation: QuotaReservation | None) -> Job:
        return await self._groups(Waiting(draft, reservation))

    def _insert(self, session: Session, group: Sequence[Waiting]) -> list[Job | QuotaExceeded]:
        return _insert(session, group, self._now())


def _insert(session: Session, group: Sequence[Waiting], now: datetime) -> list[Job | QuotaExceeded]:
    """Within one transaction: the reservations checked against each owner's day (their rows locked), then every
    job that fits written with its reservation and its updates marked handled. Each job is stamped a microsecond
    after the one submitted before it, so that "oldest first" (a restart's order, /history) stays the order of
    submission within a group."""
    refused = over_quota(session, group)
    rows = {}
    for place, waiting in enumerate(group):
        if waiting not in refused:
            rows[waiting] = job_row(waiting.draft, now + timedelta(microseconds=place))
    session.add_all(rows.values())
    session.flush()
    charges = [
        charge_row(row.id, waiting.draft.owner_id, waiting.reservation, now)
        for waiting, row in rows.items()
        if waiting.reservation is not None
    ]
    session.add_all(charges)
    answers: dict[str, list[int]] = {}
    for waiting in rows:
        if waiting.draft.answers is not None:
            source, update_ids = waiting.draft.answers
            answers.setdefault(source, []).extend(update_ids)
    for source, handled in answers.items():
        mark_handled(session, source, handled, now)
    session.flush()
    return [refused[waiting] if waiting in refused else rows[waiting].record() for waiting in group]


def over_quota(session: Session, group: Sequence[Waiting]) -> dict[Waiting, QuotaExceeded]:
    """The reservations that would take their owner past a limit, counting the day's usage and the group's own
    reservations before them; the owners' rows are locked first, so that concurrent writers cannot overdraw."""
    reserving = [waiting for waiting in group if waiting.reservation is not None]
    if not reserving:
        return {}
    owners = sorted({waiting.draft.owner_id for waiting in reserving})
    days = sorted({waiting.reservation.day for waiting in reserving if waiting.reservation is not None})
    session.execute(select(UserRow.id).where(UserRow.id.in_(owners)).with_for_update())
    rows = session.execute(
        select(
            QuotaChargeRow.user_id,
            QuotaChargeRow.day,
            func.coalesce(func.sum(QuotaChargeRow.images), 0),
            func.coalesce(func.sum(QuotaChargeRow.gpu_seconds), 0.0),
        )
        .where(
            QuotaChargeRow.user_id.in_(owners),
            QuotaChargeRow.day.in_(days),
            QuotaChargeRow.state != QuotaState.REFUNDED,
        )
        .group_by(QuotaChargeRow.user_id, QuotaChargeRow.day)
    )
    used: dict[tuple[int, date], list[float]] = {(user, day): [images, seconds] for user, day, images, seconds in rows}
    refused = {}
    for waiting in reserving:
        reservation = waiting.reservation
        assert reservation is not None
        day = used.setdefault((waiting.draft.owner_id, reservation.day), [0, 0.0])
        over = over_limit(reservation, int(day[0]), float(day[1]))
        if over is not None:
            refused[waiting] = over
            continue
        day[0] += reservation.images
        day[1] += reservation.gpu_seconds
    return refused


def job_row(draft: JobDraft, now: datetime) -> JobRow:
    return JobRow(
        id=uuid.uuid4().hex,
        owner_id=draft.owner_id,
        community_id=draft.community_id,
        platform=draft.platform,
        channel_id=draft.channel_id,
        operation=draft.operation,
        parameters=dict(draft.parameters),
        prompt=draft.prompt,
        processed_prompt=draft.processed_prompt,
        negative_prompt=draft.negative_prompt,
        seed=draft.seed,
        cost=draft.cost,
        state=JobState.QUEUED,
        attempts=0,
        created_at=now,
        delivery_state=DeliveryState.PENDING,
        delivery_attempts=0,
        parent_id=draft.parent_id,
        grid_id=draft.grid_id,
        input_files=list(draft.input_files),
    )
