"""The fair queue's records: the job a caller queues, and what `FairScheduler` keeps per user, group and job.

They live apart from the scheduler so that its module reads as the algorithm alone. Callers need only `QueuedJob`
and `Rate`; the rest is the scheduler's bookkeeping, and what its fields mean is explained in `generation.scheduler`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from sortedcontainers import SortedList

from generation.sums import Costs


@dataclass(frozen=True, kw_only=True)
class QueuedJob:
    """One job waiting for the GPU: who asked, what it costs, and what it may share a pipeline call with.

    `cost` is the job's GPU work in any unit the caller keeps consistent; `weight` is the owner's tier weight;
    `batch_key` is `GenerationRequest.batch_key` (None: never batched); `images` is how many rows it adds to a batch;
    `kind` names the throughput an ETA measures it by (the operation).
    """

    job_id: str
    user: str
    community: str | None
    cost: float
    weight: float = 1.0
    batch_key: Hashable | None = None
    images: int = 1
    kind: Hashable | None = None
    submitted_at: float
    counted: bool = True
    """Whether it holds a place of its user's cap (`max_pending_per_user`): a grid's cells hold one between them,
    so a grid is one request there as it is in the chat."""

    def __post_init__(self) -> None:
        check_positive("cost", self.cost)
        check_positive("weight", self.weight)
        if not math.isfinite(self.submitted_at):
            raise ValueError(f"submitted_at {self.submitted_at!r} is not allowed: a finite time in seconds")


Rate = float | Callable[[Hashable | None], float]
"""Seconds per unit of cost: one figure for all jobs, or each kind's own (a function of `QueuedJob.kind`)."""


def check_positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} {value!r} is not allowed: a finite number above 0")


# Sort keys are tuples led by a tag or a time, then `seq`, which is unique: what follows is never compared.
FairKey = tuple[float, int, str]  # (user-level start tag, seq, job id)
TimeKey = tuple[float, int, str]  # (submitted_at, seq, job id)


@dataclass(eq=False, slots=True)
class User:
    settled: float = 0.0  # finish tag of the user's last job taken
    pending: list[Entry] = field(default_factory=list)  # queued jobs, fair or aged, in submission order

    def finish(self) -> float:
        return max(self.settled, self.pending[-1].finish) if self.pending else self.settled


@dataclass(eq=False, slots=True)
class Group:
    key: str | None
    weight: float
    vtime: float = 0.0  # user-level virtual time
    chain_end: float = 0.0  # group-level finish tag of the last slot
    slots: SortedList = field(default_factory=SortedList)  # (tag, seq, size), one per job in the fair order
    jobs: SortedList = field(default_factory=SortedList)  # FairKey of the group's jobs in the fair order
    costs: Costs = field(default_factory=Costs)  # their costs by kind, by FairKey: the work ahead of a job
    users: dict[str, User] = field(default_factory=dict)
    queued: int = 0  # fair and aged
    running: int = 0


@dataclass(eq=False, slots=True)
class Entry:
    job: QueuedJob
    seq: int
    group: Group
    user: User
    floor: float  # the group's virtual time at submission: a refund never takes the start tag below it
    start: float
    aged: bool = False

    @property
    def finish(self) -> float:
        return self.start + self.job.cost / self.job.weight

    @property
    def fair_key(self) -> FairKey:
        return (self.start, self.seq, self.job.job_id)

    @property
    def time_key(self) -> TimeKey:
        return (self.job.submitted_at, self.seq, self.job.job_id)


@dataclass(eq=False, slots=True)
class Batch:
    started_at: float
    cost: float
    jobs: tuple[QueuedJob, ...]


@dataclass(eq=False, slots=True)
class Running:
    group: Group
    batch: Batch
