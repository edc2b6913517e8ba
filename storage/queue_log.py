"""The log of a queue that several processes share: its events in one order, and the leases of running jobs.

Every process keeps the queue's state by applying the log's events in order; what an event means is the caller's
business. A change is a `QueueTurn`: one transaction that holds the queue's lock (a PostgreSQL transaction-level
advisory lock; a SQLite file has one writer anyway), reads the events this process has not seen, decides, and
appends. Since events are appended only under the lock, their order of `seq` is the order they were committed in,
and a reader without the lock always sees a prefix of the log.

The log is dropped up to a moment the queue stood empty (`trim`), where every process's state equals a fresh one:
a reader that finds it dropped past what it has seen starts afresh from there (`QueueTurn.trimmed_through`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from storage.models import JobRow, QueueEventRow, QueueMarkRow
from storage.records import JobState
from storage.repository import Repository

R = TypeVar("R")

QUEUE_LOCK_KEY = 0x6561_7365_6C71  # "easelq": the advisory lock that orders the queue's changes
ACTIVE = (JobState.QUEUED, JobState.RUNNING)


@dataclass(frozen=True)
class QueueEvent:
    seq: int
    at: float
    """When it happened, in seconds since the epoch on the database's clock, which all processes share."""
    kind: str
    data: dict[str, Any]


@dataclass(eq=False)
class QueueTurn:
    """Inside the locked transaction: what happened since `after`, the time now, and the writes a change makes."""

    session: Session
    after: int
    now: float
    trimmed_through: int
    events: list[QueueEvent] = field(default_factory=list)

    def append(self, kind: str, data: dict[str, Any]) -> QueueEvent:
        row = QueueEventRow(at=self.now, kind=kind, data=data)
        self.session.add(row)
        self.session.flush()
        return QueueEvent(row.seq, row.at, row.kind, row.data)

    def lease(self, job_ids: Sequence[str], owner: str, until: float) -> None:
        """The jobs a worker takes are its own until `until`, unless it renews the lease."""
        self.session.execute(
            update(JobRow).where(JobRow.id.in_(job_ids)).values(leased_by=owner, lease_until=until),
            execution_options={"synchronize_session": False},
        )

    def expired(self) -> list[tuple[str, int]]:
        """Active jobs whose worker's lease ran out (it died, or lost the database for longer), with their attempts."""
        rows = self.session.execute(
            select(JobRow.id, JobRow.attempts)
            .where(JobRow.state.in_(ACTIVE), JobRow.leased_by.is_not(None), JobRow.lease_until < self.now)
            .order_by(JobRow.created_at)
        )
        return [(job_id, attempts) for job_id, attempts in rows]

    def release(self, job_ids: Sequence[str]) -> None:
        """Expired jobs back to the queue: no worker, not running."""
        self.session.execute(
            update(JobRow).where(JobRow.id.in_(job_ids)).values(leased_by=None, lease_until=None),
            execution_options={"synchronize_session": False},
        )
        self.session.execute(
            update(JobRow)
            .where(JobRow.id.in_(job_ids), JobRow.state == JobState.RUNNING)
            .values(state=JobState.QUEUED, started_at=None),
            execution_options={"synchronize_session": False},
        )

    def trim(self, through: int) -> None:
        """Drop the log up to `through`, a moment the queue stood empty."""
        self.session.execute(delete(QueueEventRow).where(QueueEventRow.seq <= through))
        mark = self.session.get(QueueMarkRow, 1)
        if mark is None:
            self.session.add(QueueMarkRow(id=1, trimmed_through=through))
        else:
            mark.trimmed_through = max(mark.trimmed_through, through)
        self.trimmed_through = max(self.trimmed_through, through)


class QueueLog(Repository):
    async def queue_turn(self, after: int, work: Callable[[QueueTurn], R]) -> R:
        """`work` in one transaction that holds the queue's lock, given the events after `after`."""
        return await self._sessions.run(_turn, after, work)

    async def queue_events(self, after: int) -> tuple[int, list[QueueEvent]]:
        """Without the lock: the mark up to which the log was dropped, and the events after `after`."""
        return await self._sessions.run(_read, after)

    async def renew_leases(self, owner: str, job_ids: Sequence[str], seconds: float) -> None:
        await self._sessions.run(_renew, owner, list(job_ids), seconds)

    async def lease_expiries(self) -> float | None:
        """The earliest end of a lease on an active job, on the database's clock; None without any."""
        return await self._sessions.run(_earliest_expiry)

    async def database_time(self) -> float:
        return await self._sessions.run(_clock)


def _clock(session: Session) -> float:
    if session.get_bind().dialect.name == "postgresql":
        return float(session.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one())
    return time.time()


def _trimmed(session: Session) -> int:
    return session.execute(select(func.coalesce(func.max(QueueMarkRow.trimmed_through), 0))).scalar_one()


def _events(session: Session, after: int) -> list[QueueEvent]:
    rows = session.scalars(select(QueueEventRow).where(QueueEventRow.seq > after).order_by(QueueEventRow.seq))
    return [QueueEvent(row.seq, row.at, row.kind, dict(row.data)) for row in rows]


def _turn(session: Session, after: int, work: Callable[[QueueTurn], R]) -> R:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": QUEUE_LOCK_KEY})
    turn = QueueTurn(session, after, _clock(session), _trimmed(session))
    turn.events = _events(session, max(after, turn.trimmed_through))
    return work(turn)


def _read(session: Session, after: int) -> tuple[int, list[QueueEvent]]:
    trimmed = _trimmed(session)
    return trimmed, _events(session, max(after, trimmed))


def _renew(session: Session, owner: str, job_ids: list[str], seconds: float) -> None:
    session.execute(
        update(JobRow)
        .where(JobRow.id.in_(job_ids), JobRow.leased_by == owner)
        .values(lease_until=_clock(session) + seconds),
        execution_options={"synchronize_session": False},
    )


def _earliest_expiry(session: Session) -> float | None:
    return session.execute(
        select(func.min(JobRow.lease_until)).where(JobRow.state.in_(ACTIVE), JobRow.leased_by.is_not(None))
    ).scalar_one()
