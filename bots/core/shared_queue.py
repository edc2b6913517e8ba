"""The job queue on PostgreSQL, shared by front ends and workers on any number of hosts.

One definition of the fair order serves both queues: every process keeps its own `FairScheduler`, fed the
queue log's events (`storage.queue_log`) in the log's order, so every process computes the same order, the same
places and the same batches as the in-process queue would from the same submissions, cancels and claims. A
change is decided under the queue's lock on a scheduler that has caught up with the log, and appended as the event
that records the decision: a submit (its tags follow from the log before it), a take (the batch a worker claims:
its jobs get the worker's lease), a finish, a cancel, an expiry (the jobs of a worker whose lease ran out go back
to the queue, keeping their place by age, or fail after `max_attempts`).

Why not a claim by `FOR UPDATE SKIP LOCKED` over tags stored in the job rows: with communities on, the job that
fills a community's next slot is chosen when the slot comes up, not when the job is queued, and batching, aging and
a cancel's refund all read the scheduler's state; keeping them in SQL as well would be a second definition that
could drift from the first. The lock is held for one short transaction per change (see docs/benchmarks.md for
the claim latency it gives).

Processes wake each other with NOTIFY on `QUEUE_CHANNEL` (a new event) and `STOP_CHANNEL` (stop a running job
wherever it runs); a process also polls every `poll_seconds`, so a lost notification costs a delay, not a job.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from bots.core.lease_expiry import expire_leases
from bots.core.persistence import persistently
from bots.core.queue_replica import QueueReplica, job_data
from generation.errors import QueueRefused
from generation.fair_queue_records import QueuedJob, Rate
from generation.job_queue import Measured, Stop
from generation.scheduler import DuplicateJob, FairScheduler
from storage.database import Database
from storage.queue_log import QueueTurn
from storage.turns import Turns, urgent

log = logging.getLogger(__name__)

R = TypeVar("R")

STOP_CHANNEL = "easel_stop"


REFUSALS = (QueueRefused, DuplicateJob)
"""A change refused before anything was changed."""


REFRESH_GATHER_SECONDS = 0.1


class SharedQueue:
    def __init__(
        self,
        db: Database,
        make_scheduler: Callable[[], FairScheduler],
        *,
        owner: str,
        lease_seconds: float = 30.0,
        poll_seconds: float = 5.0,
        max_attempts: int = 2,
    ) -> None:
        self.owner = owner
        self._db = db
        self._lease = lease_seconds
        self._poll = poll_seconds
        self._max_attempts = max_attempts
        self._replica = QueueReplica(make_scheduler, owner)
        self._changing = Turns(1)  # this process's changes one at a time, the worker's before requests'
        self._ended: list[dict[str, Any]] = []  # finish events counted here, appended with the next change
        self._work = asyncio.Event()
        self._stop: Stop = _ignore
        self.give_up: Callable[[str], Awaitable[None]] | None = None
        """Fails a job whose workers died `max_attempts` times (the core closes it and tells its owner)."""
        self.orphaned: Callable[[str], Awaitable[None]] | None = None
        """Queues again a job the queue no longer holds (the core rebuilds it as after a restart)."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._refresh_due = False
        self._waiting = False
        self._claiming = False

    # --- reads: this process's view, at once, at the time of the last change it knows -----------
    # (A read at this host's time would move its scheduler's clock, and so its aging, apart from the others'.)

    shared = True

    @property
    def parallelism(self) -> int:
        return self._replica.parallelism

    @property
    def _scheduler(self) -> FairScheduler:
        return self._replica.scheduler

    def check_capacity(self, user: str) -> None:
        self._scheduler.check_capacity(user)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._scheduler

    def queued(self, job_id: str) -> QueuedJob | None:
        return self._replica.jobs.get(job_id) if job_id in self._scheduler else None

    def is_running(self, job_id: str) -> bool:
        return job_id in self._replica.running

    def position(self, job_id: str) -> int:
        return self._scheduler.position(job_id, self._replica.latest)

    def positions(self) -> dict[str, int]:
        return self._scheduler.positions(self._replica.latest)

    def head(self, count: int) -> list[str]:
        return self._scheduler.head(self._replica.latest, count)

    def eta(self, job_id: str, seconds_per_cost: Rate) -> float:
        return self._scheduler.eta(job_id, self._replica.latest, seconds_per_cost)

    def etas(self, seconds_per_cost: Rate) -> dict[str, float]:
        return self._scheduler.etas(self._replica.latest, seconds_per_cost)

    def watch(self, stop: Stop, measured: Callable[[Measured], None]) -> None:
        self._stop, self._replica.on_measured = stop, measured

    # --- changes: decided under the queue's lock, appended to the log ---------------------------

    async def submit(self, job: QueuedJob) -> None:
        def decide(turn: QueueTurn) -> None:
            if job.job_id in self._replica.jobs:
                raise DuplicateJob(job.job_id)
            self._scheduler.check_capacity(job.user if job.counted else None)
            self._replica.apply(turn.append("submit", job_data(job, submitted_at=turn.now)))

        await self._turn(decide)
        self._work.set()

    async def cancel(self, job_id: str) -> str | None:
        def decide(turn: QueueTurn) -> str | None:
            if job_id in self._scheduler:
                self._replica.apply(turn.append("cancel", {"job": job_id}))
                return "queued"
            return "running" if job_id in self._replica.running else None

        return await self._turn(decide)

    async def stop(self, job_id: str) -> None:
        await self._db.notify(STOP_CHANNEL, job_id)

    async def take(self, max_jobs: int, max_images: int) -> list[QueuedJob]:
        """One transaction with the end of the batch before (`finished`): the claim is all that lies between two
        pipeline calls, and it goes before this process's requests waiting for the queue."""
        if not len(self._scheduler) and not self._replica.stale and not self._ended:
            return []

        def decide(turn: QueueTurn) -> list[QueuedJob]:
            jobs = self._scheduler.next_batch(turn.now, max_jobs=max_jobs, max_images=max_images)
            if not jobs:
                return []
            ids = [job.job_id for job in jobs]
            data = {"worker": self.owner, "jobs": ids, "max_jobs": max_jobs, "max_images": max_images}
            event = turn.append("take", data, lease=(ids, self.owner, turn.now + self._lease))
            self._replica.recorded(event)
            self._replica.took(self.owner, ids, event.at)
            return jobs

        self._claiming = True
        try:
            with urgent():
                return await persistently(lambda: self._turn(decide), "taking the next batch")
        finally:
            self._claiming = False

    async def finished(self, job_ids: Sequence[str], measured: Measured | None) -> None:
        """Counted with the worker's next claim, which follows at once; or on its own, if none does."""
        data: dict[str, Any] = {"worker": self.owner, "jobs": list(job_ids)}
        if measured is not None:
            data["measured"] = [measured.kind, measured.cost, measured.seconds]
        self._ended.append(data)
        self._spawn(self._count_ended())

    async def _count_ended(self) -> None:
        await asyncio.sleep(0)  # the worker's next claim, if it comes at once, carries the ending
        if self._ended and not self._claiming:
            with urgent():
                await persistently(lambda: self._turn(_nothing), "the end of a batch")

    def _append_ended(self, turn: QueueTurn) -> int:
        """The finish events counted here, appended; the queue's log dropped if it stands empty now."""
        ended = list(self._ended)
        for data in ended:
            self._replica.apply(turn.append("finish", data))
        if ended and not len(self._scheduler) and not self._replica.running:
            self._replica.apply(turn.trim())
        return len(ended)

    async def expire(self) -> list[str]:
        """Put back the jobs whose worker's lease ran out; returns those that failed too often to go back. A job
        whose end was counted in the queue but not written (its worker died in between) is given to `orphaned`."""

        def decide(turn: QueueTurn) -> tuple[list[str], list[str]]:
            failed, orphans = expire_leases(turn, self._replica, self._lease, self._max_attempts)
            return failed, [job_id for job_id in orphans if job_id not in self]

        failed, orphans = await self._turn(decide)
        for job_id in failed:
            log.error("job %s: its workers died too often, or it no longer fits the queue; giving up", job_id)
            if self.give_up is not None:
                await self.give_up(job_id)
        for job_id in orphans:
            log.warning("job %s: its worker died after its end was counted and before it was written", job_id)
            if self.orphaned is not None:
                await self.orphaned(job_id)
        return failed

    # --- keeping up -------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Catch up with the log without the lock (a reader sees a prefix of it)."""
        replica = self._replica
        async with self._changing.turn():
            if replica.stale:
                replica.reset(0)
            replica.catch_up(await self._db.queue_events(replica.seq))
        if len(self._scheduler):
            self._work.set()

    async def wait(self) -> None:
        if self._refresh_due:  # a change was announced: read it now rather than at the gathered read
            await persistently(self.refresh, "the queue")
            if len(self._scheduler):
                self._work.clear()
                return
        self._waiting = True
        try:
            await asyncio.wait_for(self._work.wait(), self._poll)
        except TimeoutError:
            await persistently(self.refresh, "the queue")
        finally:
            self._waiting = False
        self._work.clear()

    def wake(self) -> None:
        self._work.set()

    def notified(self, payload: str) -> None:
        """A NOTIFY on `QUEUE_CHANNEL` (the seq of the change): read it, unless it is known or a read is due. An idle
        worker reads at once; otherwise (places, ETAs) the reads of a busy moment are gathered into one per
        `REFRESH_GATHER_SECONDS`, so that N processes do not each read every change of the others."""
        if self._refresh_due or (payload.isdigit() and int(payload) <= self._replica.seq):
            return
        self._refresh_due = True
        self._spawn(self._refresh_quietly(0.0 if self._waiting else REFRESH_GATHER_SECONDS))

    def stop_notified(self, job_id: str) -> None:
        if self._replica.running.get(job_id) == self.owner:
            self._stop(job_id)

    def start(self) -> None:
        """The lease of this process's running jobs renewed, and other workers' expired leases looked for."""
        self._spawn(self._keep_leases())
        self._spawn(self._find_expired())

    async def close(self) -> None:
        """The endings not yet counted are counted (once: a database that is gone leaves them to the expiry sweep
        of the other processes, which counts the ends that were written)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._ended:
            try:
                await self._turn(_nothing)
            except Exception as error:
                log.warning("the end of %d batch(es) was not counted in the queue: %r", len(self._ended), error)

    async def _refresh_quietly(self, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
            self._refresh_due = False
            await self.refresh()
        except Exception as error:
            log.warning("the queue waits for the database: %r", error)

    async def _keep_leases(self) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            mine = self._replica.running_here()
            if mine:
                try:
                    await self._db.renew_leases(self.owner, mine, self._lease)
                except Exception as error:
                    log.warning("renewing the leases of job(s) %s failed: %r", ", ".join(mine), error)

    async def _find_expired(self) -> None:
        while True:
            await asyncio.sleep(self._lease / 2)
            try:
                if await self._db.leases_lapsed(sorted(self._replica.running), self._lease):
                    await self.expire()
            except Exception as error:
                log.warning("looking for expired leases failed: %r", error)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- the log ----------------------------------------------------------------------------

    async def _turn(self, decide: Callable[[QueueTurn], R]) -> R:
        """`decide` on a scheduler caught up with the log, under the queue's lock. A change that did not commit
        leaves this process's scheduler ahead of the log: it is rebuilt from the log before the next change."""

        replica = self._replica
        counted = 0

        def work(turn: QueueTurn) -> R:
            nonlocal counted
            if replica.stale:
                replica.reset(0)
            replica.catch_up(turn.events)
            try:
                counted = self._append_ended(turn)
                return decide(turn)
            except REFUSALS:
                replica.stale = replica.stale or counted > 0
                raise
            except BaseException:
                replica.stale = True
                raise

        async with self._changing.turn():
            try:
                result = await self._db.queue_turn(0 if replica.stale else replica.seq, work)
            except REFUSALS:
                raise
            except BaseException:
                replica.stale = True
                raise
            del self._ended[:counted]
            return result


def _ignore(_: object) -> None:
    """Nothing to tell."""


def _nothing(_: QueueTurn) -> None:
    """A change with nothing to decide: the endings counted here are appended."""
