"""One process's copy of the shared queue: a `FairScheduler` fed the queue log's events in order.

Every process that applies the same events gets the same state, so the fair order has one definition, the
scheduler's; `bots.core.shared_queue` decides the changes and appends them. An event this copy cannot apply as it
was decided (a bug) marks it stale, to be rebuilt from the log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from generation.errors import QueueRefused
from generation.fair_queue_records import QueuedJob
from generation.job_queue import Measured
from generation.scheduler import FairScheduler
from storage.queue_log import RESET, QueueEvent

log = logging.getLogger(__name__)

ACTIVE_WORKER_SECONDS = 120.0
"""A worker that took or finished a batch this recently counts among the GPUs that ETAs share the work ahead by."""


class Diverged(RuntimeError):
    """This process's scheduler no longer agrees with the log: a bug, logged, and mended by replaying the log."""


class QueueReplica:
    def __init__(self, make_scheduler: Callable[[], FairScheduler], owner: str) -> None:
        self.make = make_scheduler
        self.owner = owner
        self.scheduler = make_scheduler()
        self.seq = 0
        """The last event applied."""
        self.stale = False
        self.jobs: dict[str, QueuedJob] = {}  # queued or running, on any host
        self.running: dict[str, str] = {}  # job -> the worker that runs it
        self.workers: dict[str, float] = {}  # worker -> the time of its last take or finish
        self.latest = 0.0
        self.on_measured: Callable[[Measured], None] = _ignore
        """Told another worker's measurement of a batch."""

    @property
    def parallelism(self) -> int:
        active = [seen for seen in self.workers.values() if seen >= self.latest - ACTIVE_WORKER_SECONDS]
        return max(len(active), 1)

    def running_here(self) -> list[str]:
        return sorted(job_id for job_id, worker in self.running.items() if worker == self.owner)

    def catch_up(self, events: Sequence[QueueEvent]) -> None:
        for event in events:
            self.apply(event)

    def reset(self, seq: int) -> None:
        """Start again from a log that begins after `seq`, a moment the queue stood empty (or from its start)."""
        self.scheduler = self.make()
        self.seq = seq
        self.jobs.clear()
        self.running.clear()
        self.stale = False

    def recorded(self, event: QueueEvent) -> None:
        """An event this copy has applied already (it decided it)."""
        self.seq = event.seq
        self.latest = max(self.latest, event.at)

    def apply(self, event: QueueEvent) -> None:
        if event.seq <= self.seq:
            return
        self.recorded(event)
        data = event.data
        if event.kind == RESET:
            self.reset(event.seq)
        elif event.kind == "submit":
            job = job_from(data)
            self.scheduler.submit(job, event.at)
            self.jobs[job.job_id] = job
        elif event.kind == "take":
            jobs = self.scheduler.next_batch(event.at, max_jobs=data["max_jobs"], max_images=data["max_images"])
            if [job.job_id for job in jobs] != data["jobs"]:
                self.stale = True
                raise Diverged(f"event {event.seq}: this process would take {[j.job_id for j in jobs]}, not {data}")
            self.took(data["worker"], data["jobs"], event.at)
        elif event.kind == "finish":
            self.workers[data["worker"]] = event.at
            for job_id in data["jobs"]:
                if self.running.pop(job_id, None) is not None:
                    self.scheduler.finished(job_id, event.at)
                    self.jobs.pop(job_id, None)
            if "measured" in data and data["worker"] != self.owner:
                self.on_measured(Measured(*data["measured"]))
        elif event.kind == "cancel":
            self.scheduler.cancel(data["job"])
            self.jobs.pop(data["job"], None)
        elif event.kind == "expire":
            self.expire(data["jobs"], data["retry"], event.at)
        else:
            log.error("queue event %d of an unknown kind %r: left out", event.seq, event.kind)

    def took(self, worker: str, job_ids: Sequence[str], at: float) -> None:
        self.workers[worker] = at
        for job_id in job_ids:
            self.running[job_id] = worker

    def expire(self, job_ids: Sequence[str], retry: Sequence[str], at: float) -> list[str]:
        """The jobs of dead workers end; those in `retry` go back to the queue where its caps let them, keeping
        their age. Returns those that went back."""
        for job_id in job_ids:
            if self.running.pop(job_id, None) is not None:
                self.scheduler.finished(job_id, at)
        retried = []
        for job_id in job_ids:
            job = self.jobs.pop(job_id, None)
            if job is None or job_id not in retry:
                continue
            try:
                self.scheduler.submit(job, at)
            except QueueRefused:
                continue
            self.jobs[job_id] = job
            retried.append(job_id)
        return retried


def job_data(job: QueuedJob, *, submitted_at: float) -> dict[str, Any]:
    return {
        "job": job.job_id,
        "user": job.user,
        "community": job.community,
        "cost": job.cost,
        "weight": job.weight,
        "batch_key": None if job.batch_key is None else json.dumps(job.batch_key, default=repr),
        "images": job.images,
        "kind": None if job.kind is None else str(job.kind),
        "submitted_at": submitted_at,
        "counted": job.counted,
    }


def job_from(data: dict[str, Any]) -> QueuedJob:
    return QueuedJob(
        job_id=data["job"],
        user=data["user"],
        community=data["community"],
        cost=data["cost"],
        weight=data["weight"],
        batch_key=data["batch_key"],
        images=data["images"],
        kind=data["kind"],
        submitted_at=data["submitted_at"],
        counted=data.get("counted", True),
    )


def _ignore(_: object) -> None:
    """Nothing to tell."""
