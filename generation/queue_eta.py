"""The arithmetic of an ETA: the seconds of work ahead of a queued job, O(log n) per group.

Kept apart from the scheduler, which owns the order; these read its groups' sum trees (`generation.sums`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping

from generation.fair_queue_records import Entry, Group, QueuedJob, Rate, Running
from generation.sums import Costs


def by_kind(seconds_per_cost: Rate) -> Callable[[Hashable | None], float]:
    if callable(seconds_per_cost):
        return seconds_per_cost
    return lambda _kind: seconds_per_cost


def _seconds(job: QueuedJob, seconds_per_cost: Rate) -> float:
    return job.cost * by_kind(seconds_per_cost)(job.kind)


def ahead_of(
    entry: Entry, groups: Mapping[str | None, Group], aged: Costs, rate: Callable[[Hashable | None], float]
) -> float:
    """Seconds of the queued work ahead of a job. Aged jobs come first. Then a group fills its slots with its jobs in
    order, so a group's jobs ahead are its first c, c being how many of its slots come before the job's slot: one
    bisection and one sum per group."""
    if entry.aged:
        return aged.seconds_below(entry.time_key, rate)
    ahead = aged.seconds(rate)
    group = entry.group
    index = group.jobs.index(entry.fair_key)
    tag, seq, _ = group.slots[index]
    for other in groups.values():
        count = index if other is group else other.slots.bisect_left((tag, seq))
        if count == len(other.jobs):
            ahead += other.costs.seconds(rate)
        elif count:
            ahead += other.costs.seconds_below(other.jobs[count], rate)
    return ahead


def running_left(running: Mapping[str, Running], now: float, seconds_per_cost: Rate) -> float:
    """Seconds left of the batches running (an overdue one counts as finishing now)."""
    batches = {job.batch for job in running.values()}
    return sum(
        max(0.0, sum(_seconds(job, seconds_per_cost) for job in batch.jobs) - (now - batch.started_at))
        for batch in batches
    )
