"""The job queue as a contract, and its in-process implementation.

The worker and the core see the queue through `JobQueue`: submit, cancel, take the next batch, say it finished,
and read places and waits. `LocalQueue` is today's queue: the fair scheduler in this process's memory, over any
database. The PostgreSQL implementation (`bots.core.shared_queue`) keeps the same scheduler in every process,
fed from one log of queue events in the database, so both have one definition of the fair order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from generation.fair_queue_records import QueuedJob, Rate
from generation.scheduler import FairScheduler

Stop = Callable[[str], None]
"""Told the id of a running job that a cancel elsewhere asks to stop."""


@dataclass(frozen=True)
class Measured:
    """One batch's GPU time, for the throughput that every ETA is based on."""

    kind: str
    cost: float
    seconds: float


class JobQueue(Protocol):
    """Jobs waiting for a GPU, in the fair order, and the batches some worker runs.

    The reads (`__contains__`, `position`, `head`, `positions`, `eta`, `etas`, `queued`) answer from this process's
    view at once; the changes are awaited, since elsewhere they are written before they count.
    """

    @property
    def parallelism(self) -> int:
        """How many GPUs serve the queue: ETAs divide the work ahead among them."""

    @property
    def shared(self) -> bool:
        """Whether other processes take its jobs too: then a job's request is read back where it runs."""

    def check_capacity(self, user: str) -> None: ...

    async def submit(self, job: QueuedJob) -> None:
        """Queue a job; raises `QueueRefused` when a cap is reached, `DuplicateJob` when it is already there."""

    async def cancel(self, job_id: str) -> str | None:
        """'queued' if it was removed from the queue, 'running' if a worker runs it, else None."""

    async def stop(self, job_id: str) -> None:
        """Ask whichever worker runs the job to stop it at its next step."""

    async def take(self, max_jobs: int, max_images: int) -> list[QueuedJob]:
        """The next batch for this process's worker, now running; empty when nothing is queued."""

    async def finished(self, job_ids: Sequence[str], measured: Measured | None) -> None:
        """A batch taken by `take` has ended, however it ended."""

    async def wait(self) -> None:
        """Until something may have been queued; returns early, never late."""

    def wake(self) -> None:
        """End a `wait` now (a stop)."""

    def watch(self, stop: Stop, measured: Callable[[Measured], None]) -> None:
        """Where stop requests for this process's running jobs, and other workers' measurements, go."""

    def __contains__(self, job_id: object) -> bool: ...

    def queued(self, job_id: str) -> QueuedJob | None: ...

    def is_running(self, job_id: str) -> bool: ...

    def position(self, job_id: str) -> int: ...

    def positions(self) -> dict[str, int]: ...

    def head(self, count: int) -> list[str]: ...

    def eta(self, job_id: str, seconds_per_cost: Rate) -> float: ...

    def etas(self, seconds_per_cost: Rate) -> dict[str, float]: ...


class LocalQueue:
    """The fair scheduler in this process, served by this process's one worker."""

    parallelism = 1
    shared = False

    def __init__(self, scheduler: FairScheduler, clock: Callable[[], float] = time.monotonic) -> None:
        self.scheduler = scheduler
        self._clock = clock
        self._jobs: dict[str, QueuedJob] = {}
        self._running: set[str] = set()
        self._work = asyncio.Event()

    def check_capacity(self, user: str) -> None:
        self.scheduler.check_capacity(user)

    async def submit(self, job: QueuedJob) -> None:
        self.scheduler.submit(job, self._clock())
        self._jobs[job.job_id] = job
        self._work.set()

    async def cancel(self, job_id: str) -> str | None:
        if self.scheduler.cancel(job_id):
            del self._jobs[job_id]
            return "queued"
        return "running" if job_id in self._running else None

    async def stop(self, job_id: str) -> None:
        """Nothing to pass on: the one worker is in this process, and stops the job itself."""

    async def take(self, max_jobs: int, max_images: int) -> list[QueuedJob]:
        jobs = self.scheduler.next_batch(self._clock(), max_jobs=max_jobs, max_images=max_images)
        for job in jobs:
            del self._jobs[job.job_id]
            self._running.add(job.job_id)
        return jobs

    async def finished(self, job_ids: Sequence[str], measured: Measured | None) -> None:
        now = self._clock()
        for job_id in job_ids:
            self.scheduler.finished(job_id, now)
            self._running.discard(job_id)

    async def wait(self) -> None:
        await self._work.wait()
        self._work.clear()

    def wake(self) -> None:
        self._work.set()

    def watch(self, stop: Stop, measured: Callable[[Measured], None]) -> None:
        """Nothing comes from elsewhere."""

    def __contains__(self, job_id: object) -> bool:
        return job_id in self.scheduler

    def queued(self, job_id: str) -> QueuedJob | None:
        return self._jobs.get(job_id)

    def is_running(self, job_id: str) -> bool:
        return job_id in self._running

    def position(self, job_id: str) -> int:
        return self.scheduler.position(job_id, self._clock())

    def positions(self) -> dict[str, int]:
        return self.scheduler.positions(self._clock())

    def head(self, count: int) -> list[str]:
        return self.scheduler.head(self._clock(), count)

    def eta(self, job_id: str, seconds_per_cost: Rate) -> float:
        return self.scheduler.eta(job_id, self._clock(), seconds_per_cost)

    def etas(self, seconds_per_cost: Rate) -> dict[str, float]:
        return self.scheduler.etas(self._clock(), seconds_per_cost)
