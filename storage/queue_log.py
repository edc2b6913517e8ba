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

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import delete, insert, select, text, update
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
WRITE = text(
    f"""
    WITH added AS (
        INSERT INTO queue_events (seq, at, kind, data)
        SELECT * FROM unnest(
            CAST(:seqs AS text[])::bigint[], CAST(:ats AS text[])::double precision[], CAST(:kinds AS text[]),
            CAST(:data AS text[])::json[]
        )
    ), leased AS (
        UPDATE jobs SET leased_by = lease.owner, lease_until = lease.until
        FROM unnest(
            CAST(:lease_jobs AS text[]), CAST(:lease_owners AS text[]), CAST(:lease_until AS text[])::double precision[]
        ) AS lease (job, owner, until)
        WHERE jobs.id = lease.job
    ), dropped AS (
        DELETE FROM queue_events WHERE seq < :trim_below
    )
    SELECT pg_notify('{QUEUE_CHANNEL}', :last)
    """
)
"""A change's writes on PostgreSQL (`QueueTurn.write`). Its arrays come as text and are cast by the server: asyncpg
looks up any other array type in the catalog on each connection's first use, 6 to 20 ms with the lock held."""
TURN = text("SELECT * FROM easel_queue_turn(:key, :after)")
"""A change's start on PostgreSQL: the lock, the clock, the events not yet seen (migration 0009)."""


@dataclass(frozen=True)
class QueueEvent:
    seq: int
    at: float
    """When it happened, in seconds since the epoch on the database's clock, which all processes share."""
    kind: str
    data: dict[str, Any]


@dataclass(eq=False)
class QueueTurn:
    """Inside the locked transaction: what happened since `after`, the time now, and the writes a change makes.

    The events a change appends are numbered here (the lock makes this transaction the log's only writer) and
    written when the change is decided, all in one statement with their announcement, the leases of a take and
    the dropping of a log that a `trim` ended: one round trip while the lock is held, however many events."""

    session: Session
    after: int
    now: float
    server: bool
    """PostgreSQL: a change is announced (NOTIFY on `QUEUE_CHANNEL`) when it commits."""
    events: list[QueueEvent] = field(default_factory=list)
    appended: list[QueueEvent] = field(default_factory=list)
    leases: list[Lease] = field(default_factory=list)
    trimmed: bool = False

    @property
    def last(self) -> int:
        """The seq of the log's last event, appended ones included."""
        for events in (self.appended, self.events):
            if events:
                return events[-1].seq
        return self.after

    def append(self, kind: str, data: dict[str, Any], lease: Lease | None = None) -> QueueEvent:
        """The next event, and for a take the worker's `lease` on its jobs; written when the change is decided."""
        event = QueueEvent(self.last + 1, self.now, kind, data)
        self.appended.append(event)
        if lease is not None:
            self.leases.append(lease)
        return event

    def trim(self) -> QueueEvent:
        """Drop the log up to now, a moment the queue stands empty: a `RESET` event is all that is left."""
        reset = self.append(RESET, {})
        self.appended = [reset]
        self.trimmed = True
        return reset

    def write(self) -> None:
        """The appended events, their announcement, the leases and the trim; on PostgreSQL in one statement of one
        shape, prepared once, whatever the numbers of events and jobs."""
        if not self.appended:
            return
        trim_below = self.appended[0].seq if self.trimmed else 0
        leases = [(job_id, owner, until) for job_ids, owner, until in self.leases for job_id in job_ids]
        if self.server:
            self.session.execute(
                WRITE,
                {
                    "seqs": [str(event.seq) for event in self.appended],
                    "ats": [repr(event.at) for event in self.appended],
                    "kinds": [event.kind for event in self.appended],
                    "data": [json.dumps(event.data) for event in self.appended],
                    "lease_jobs": [job_id for job_id, _, _ in leases],
                    "lease_owners": [owner for _, owner, _ in leases],
                    "lease_until": [repr(until) for _, _, until in leases],
                    "trim_below": trim_below,
                    "last": str(self.last),
                },
            )
            return
        rows = [{"seq": e.seq, "at": e.at, "kind": e.kind, "data": e.data} for e in self.appended]
        self.session.execute(insert(QueueEventRow).values(rows))
        for job_id, owner, until in leases:
            self.session.execute(update(JobRow).where(JobRow.id == job_id).values(leased_by=owner, lease_until=until))
        self.session.execute(delete(QueueEventRow).where(QueueEventRow.seq < trim_below))

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


class QueueLog(Repository):
    async def queue_turn(self, after: int, work: Callable[[QueueTurn], R]) -> R:
        """`work` in one transaction that holds the queue's lock, given the events after `after`."""
        return await self._sessions.run(_turn, after, work)

    async def queue_events(self, after: int) -> list[QueueEvent]:
        """Without the lock: the events after `after`."""
        return await self._sessions.run(_events, after)

    async def leases_lapsed(self, job_ids: Sequence[str], grace: float) -> bool:
        """Without the lock: whether a lease ran out, or one of `job_ids` (running, as far as the caller knows) ended
        more than `grace` seconds ago; only then has the sweep of leases anything to mend under the lock."""
        return await self._sessions.run(_lapsed, list(job_ids), grace)

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
    """The lock, the clock (read once the lock is held) and the log in one round trip, then the change's writes."""
    server = session.get_bind().dialect.name == "postgresql"
    if server:
        rows = session.execute(TURN, {"key": QUEUE_LOCK_KEY, "after": after}).all()
        turn = QueueTurn(session, after, float(rows[0][0]), server)
        turn.events = [QueueEvent(seq, at, kind, _json(data)) for _, seq, at, kind, data in rows[1:]]
    else:
        turn = QueueTurn(session, after, time.time(), server)
        turn.events = _events(session, after)
    result = work(turn)
    turn.write()
    return result


def _json(data: str | dict[str, Any]) -> dict[str, Any]:
    return json.loads(data) if isinstance(data, str) else dict(data)


def _lapsed(session: Session, job_ids: list[str], grace: float) -> bool:
    now = _clock(session)
    look = QueueTurn(session, 0, now, session.get_bind().dialect.name == "postgresql")
    return bool(look.expired()) or bool(look.ended(job_ids, now - grace))


def _renew(session: Session, owner: str, job_ids: list[str], seconds: float) -> None:
    session.execute(
        update(JobRow)
        .where(JobRow.id.in_(job_ids), JobRow.leased_by == owner)
        .values(lease_until=_clock(session) + seconds),
        execution_options={"synchronize_session": False},
    )
