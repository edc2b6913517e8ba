"""The log of a queue that several processes share: its events in one order, and the leases of running jobs.

Every process keeps the queue's state by applying the log's events in order; what an event means is the caller's
business. A change is a `QueueTurn`: one transaction that holds the queue's lock (a PostgreSQL transaction-level
advisory lock; a SQLite file has one writer anyway), reads the events this process has not seen, decides, and
appends. Since events are appended only under the lock, their order of `seq` is the order they were committed in,
and a reader without the lock always sees a prefix of the log.

The log is dropped up to a moment the queue stood empty (`trim`), where every process's state equals a fresh one:
what is left starts with a `RESET` event, and a reader that meets one starts afresh from there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Text, cast, delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from storage.models import JobRow, QueueEventRow
from storage.records import JobState
from storage.repository import Repository

R = TypeVar("R")
Lease = tuple[Sequence[str], str, float]
"""The jobs a worker takes, the worker, and until when (the database's clock) they are its own unless renewed."""

QUEUE_LOCK_KEY = 0x6561_7365_6C71  # "easelq": the advisory lock that orders the queue's changes
QUEUE_CHANNEL = "easel_queue"
"""Where a change of the log is announced (its last seq), to wake the processes that keep the queue."""
RESET = "reset"
"""The kind of the event that starts a dropped log: the queue stood empty here."""
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
    server: bool
    """PostgreSQL: a change is announced (NOTIFY on `QUEUE_CHANNEL`) when it commits."""
    events: list[QueueEvent] = field(default_factory=list)

    def append(self, kind: str, data: dict[str, Any], lease: Lease | None = None) -> QueueEvent:
        """The event, its announcement and (for a take) the worker's `lease` on its jobs, in one statement."""
        added = insert(QueueEventRow).values(at=self.now, kind=kind, data=data).returning(QueueEventRow.seq)
        leased = None
        if lease is not None:
            job_ids, owner, until = lease
            leased = update(JobRow).where(JobRow.id.in_(job_ids)).values(leased_by=owner, lease_until=until)
        if not self.server:
            seq = self.session.execute(added).scalar_one()
            if leased is not None:
                self.session.execute(leased, execution_options={"synchronize_session": False})
            return QueueEvent(seq, self.now, kind, data)
        event = added.cte("event")
        announced = select(event.c.seq, func.pg_notify(QUEUE_CHANNEL, cast(event.c.seq, Text)))
        if leased is not None:
            announced = announced.add_cte(leased.cte("leased"))
        row = self.session.execute(announced).one()
        return QueueEvent(row[0], self.now, kind, data)

    def expired(self) -> list[tuple[str, int, bool]]:
        """Jobs whose worker's lease ran out (it died, or lost the database for longer): their attempts, and whether
        they are still to run (a job can also have ended in the instant before its worker died)."""
        rows = self.session.execute(
            select(JobRow.id, JobRow.attempts, JobRow.state)
            .where(JobRow.leased_by.is_not(None), JobRow.lease_until < self.now)
            .order_by(JobRow.created_at)
        )
        return [(job_id, attempts, state in ACTIVE) for job_id, attempts, state in rows]

    def ended(self, job_ids: Sequence[str], before: float) -> list[str]:
        """Of `job_ids`, those that ended before `before` (seconds since the epoch)."""
        if not job_ids:
            return []
        cutoff = datetime.fromtimestamp(before, UTC)
        rows = self.session.execute(
            select(JobRow.id).where(JobRow.id.in_(job_ids), JobRow.state.not_in(ACTIVE), JobRow.finished_at < cutoff)
        )
        return sorted(job_id for (job_id,) in rows)

    def release(self, job_ids: Sequence[str]) -> None:
        """Expired jobs back to the queue: no worker, not running. (A job that ends drops its lease with the change
        of state, `storage.jobs`.)"""
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

    def trim(self) -> QueueEvent:
        """Drop the log up to now, a moment the queue stands empty: a `RESET` event is all that is left."""
        reset = self.append(RESET, {})
        self.session.execute(delete(QueueEventRow).where(QueueEventRow.seq < reset.seq))
        return reset


class QueueLog(Repository):
    async def queue_turn(self, after: int, work: Callable[[QueueTurn], R]) -> R:
        """`work` in one transaction that holds the queue's lock, given the events after `after`."""
        return await self._sessions.run(_turn, after, work)

    async def queue_events(self, after: int) -> list[QueueEvent]:
        """Without the lock: the events after `after`."""
        return await self._sessions.run(_events, after)

    async def renew_leases(self, owner: str, job_ids: Sequence[str], seconds: float) -> None:
        await self._sessions.run(_renew, owner, list(job_ids), seconds)


def _clock(session: Session) -> float:
    if session.get_bind().dialect.name == "postgresql":
        return float(session.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one())
    return time.time()


def _events(session: Session, after: int) -> list[QueueEvent]:
    columns = (QueueEventRow.seq, QueueEventRow.at, QueueEventRow.kind, QueueEventRow.data)
    rows = session.execute(select(*columns).where(QueueEventRow.seq > after).order_by(QueueEventRow.seq))
    return [QueueEvent(seq, at, kind, dict(data)) for seq, at, kind, data in rows]


def _turn(session: Session, after: int, work: Callable[[QueueTurn], R]) -> R:
    """The lock and the clock in one round trip (the time is read once the lock is held), then the log."""
    server = session.get_bind().dialect.name == "postgresql"
    if server:
        now = session.execute(
            text("SELECT pg_advisory_xact_lock(:key), extract(epoch FROM clock_timestamp())"), {"key": QUEUE_LOCK_KEY}
        ).one()[1]
    else:
        now = time.time()
    turn = QueueTurn(session, after, float(now), server)
    turn.events = _events(session, after)
    return work(turn)


def _renew(session: Session, owner: str, job_ids: list[str], seconds: float) -> None:
    session.execute(
        update(JobRow)
        .where(JobRow.id.in_(job_ids), JobRow.leased_by == owner)
        .values(lease_until=_clock(session) + seconds),
        execution_options={"synchronize_session": False},
    )
