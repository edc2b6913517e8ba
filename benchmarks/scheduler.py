"""Scheduler benchmark: decision latency, fairness between equal users, and the flood test.

Why it exists: the fair-share scheduler promises O(log n) decisions, equal service for equal demand, and that one
user's flood cannot hold back newcomers. This puts numbers on all three, so a change that makes a decision scan
the queue, skews the shares, or lets a backlog jump ahead shows up as a changed figure.

Everything here is the pure scheduler on a model clock (a job takes its cost in seconds): no GPU, no asyncio, so
the figures say nothing about the worker's duty cycle or the service's overhead, which belong in their own
functions here.

Run it from the repository root:

    python benchmarks/scheduler.py [--ops N]

Latencies are the median and 99th percentile of N timed calls of each kind with about 10,000 jobs from 1,000
users queued, flat and with 50 communities (the clock barely moves, so nothing ages). Fairness is Jain's index of
the work served while every user keeps a backlog, with aging off. Human-readable lines come first; the last line
of stdout is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from generation.scheduler import FairScheduler, QueuedJob

QUEUED = 10_000
USERS = 1_000
COMMUNITIES = 50
MAX_PENDING_PER_USER = 20
MAX_WAIT_SECONDS = 900.0
# Typical costs (decoder steps at 512x512) of small, default and large requests, and three batch keys.
COSTS = (12.5, 27.5, 52.5, 110.0)
BATCH_KEYS = ("768-50", "512-25", None)

FAIR_USERS = 100
FAIR_BACKLOG = 5
FAIR_JOBS = 20_000
# Users per community in the community fairness run: very unequal on purpose.
COMMUNITY_SIZES = (1, 2, 3, 5, 8, 10, 12, 15, 19, 25)

FLOOD_HEAVY_JOBS = 50
FLOOD_LIGHT_USERS = 5
JAIN_TARGET = 0.99
FLOOD_TARGET = 1


class _Load:
    """Keeps a scheduler near QUEUED jobs and picks random users with room and random queued jobs."""

    def __init__(self, scheduler: FairScheduler, communities: bool, rng: random.Random) -> None:
        self.scheduler = scheduler
        self.communities = communities
        self.rng = rng
        self.now = 0.0
        self.serial = 0
        self.ids: list[str] = []
        self.slot: dict[str, int] = {}
        self.pending: Counter[str] = Counter()
        self.owner: dict[str, str] = {}

    def job(self) -> QueuedJob:
        index = self.rng.randrange(USERS)
        while self.pending[f"user{index}"] >= MAX_PENDING_PER_USER:
            index = self.rng.randrange(USERS)
        self.serial += 1
        self.now += 0.001
        return QueuedJob(
            job_id=f"job{self.serial}",
            user=f"user{index}",
            community=f"community{index % COMMUNITIES}" if self.communities else None,
            cost=self.rng.choice(COSTS),
            weight=self.rng.choice((1.0, 1.0, 2.0)),
            batch_key=self.rng.choice(BATCH_KEYS),
            submitted_at=self.now,
        )

    def added(self, job: QueuedJob) -> None:
        self.slot[job.job_id] = len(self.ids)
        self.ids.append(job.job_id)
        self.pending[job.user] += 1
        self.owner[job.job_id] = job.user

    def removed(self, job_id: str) -> None:
        index = self.slot.pop(job_id)
        last = self.ids.pop()
        if last != job_id:
            self.ids[index] = last
            self.slot[last] = index
        self.pending[self.owner.pop(job_id)] -= 1

    def any_queued(self) -> str:
        return self.rng.choice(self.ids)


def _timed(call: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    started = time.perf_counter_ns()
    result = call(*args)
    return result, (time.perf_counter_ns() - started) / 1000


def _summary(samples: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(samples), 2), "p99": round(statistics.quantiles(samples, n=100)[98], 2)}


def decision_latency(communities: bool, ops: int, seed: int = 0) -> dict[str, dict[str, float]]:
    """Median and p99 microseconds of submit, next, cancel and position with about QUEUED jobs waiting."""
    scheduler = FairScheduler(
        max_pending_per_user=MAX_PENDING_PER_USER,
        max_queue=2 * QUEUED,
        max_wait=MAX_WAIT_SECONDS,
        communities=communities,
    )
    load = _Load(scheduler, communities, random.Random(seed))
    for _ in range(QUEUED):
        job = load.job()
        scheduler.submit(job, load.now)
        load.added(job)
    samples: dict[str, list[float]] = {"submit": [], "next": [], "cancel": [], "position": []}
    for _ in range(ops):
        job = load.job()
        _, took = _timed(scheduler.submit, job, load.now)
        samples["submit"].append(took)
        load.added(job)

        batch, took = _timed(scheduler.next_batch, load.now)
        samples["next"].append(took)
        for taken in batch:
            load.removed(taken.job_id)
            scheduler.finished(taken.job_id, load.now)

        target = load.any_queued()
        _, took = _timed(scheduler.position, target, load.now)
        samples["position"].append(took)

        target = load.any_queued()
        cancelled, took = _timed(scheduler.cancel, target)
        samples["cancel"].append(took)
        assert cancelled
        load.removed(target)
        job = load.job()
        scheduler.submit(job, load.now)
        load.added(job)
    assert len(scheduler) == QUEUED
    return {kind: _summary(values) for kind, values in samples.items()}


def jain_index(values: list[float]) -> float:
    return sum(values) ** 2 / (len(values) * sum(value * value for value in values))


def _serve_backlogged(scheduler: FairScheduler, owners: dict[str, str | None], jobs: int, seed: int) -> Counter[str]:
    """Keep every user at FAIR_BACKLOG queued jobs of random cost, serve `jobs`; return cost served per user."""
    rng = random.Random(seed)
    now = 0.0
    serial = 0

    def submit(user: str) -> None:
        nonlocal serial
        serial += 1
        job = QueuedJob(
            job_id=f"j{serial}", user=user, community=owners[user], cost=rng.choice(COSTS), submitted_at=now
        )
        scheduler.submit(job, now)

    for _ in range(FAIR_BACKLOG):
        for user in owners:
            submit(user)
    served: Counter[str] = Counter()
    for _ in range(jobs):
        (job,) = scheduler.next_batch(now)
        served[job.user] += job.cost
        now += job.cost
        scheduler.finished(job.job_id, now)
        submit(job.user)
    return served


def fairness(jobs: int = FAIR_JOBS, seed: int = 0) -> dict[str, Any]:
    """Jain's index of the GPU work served to equally demanding users, and to communities of unequal size.

    Aging is off: with hundreds of jobs always waiting every job would outwait any `max_wait` and the run would
    measure first-come-first-served instead of the fair order.
    """
    settings = {"max_pending_per_user": FAIR_BACKLOG, "max_queue": 10 * FAIR_USERS, "max_wait": math.inf}
    users: dict[str, str | None] = {f"user{index}": None for index in range(FAIR_USERS)}
    served = _serve_backlogged(FairScheduler(**settings), users, jobs, seed)
    by_user = [served[user] for user in users]

    members = {f"c{c}-u{u}": f"c{c}" for c, size in enumerate(COMMUNITY_SIZES) for u in range(size)}
    served = _serve_backlogged(FairScheduler(**settings, communities=True), members, jobs, seed)
    by_community: Counter[str] = Counter()
    for user, community in members.items():
        by_community[community] += served[user]
    return {
        "jain_index": round(jain_index(by_user), 5),
        "jain_users": FAIR_USERS,
        "jain_jobs": jobs,
        "jain_min_max_share": round(min(by_user) / max(by_user), 4),
        "jain_index_communities": round(jain_index(list(by_community.values())), 5),
        "jain_community_sizes": list(COMMUNITY_SIZES),
    }


def flood(communities: bool) -> int:
    """Most heavy jobs that start between a light user's submission and the start of their job.

    One user queues FLOOD_HEAVY_JOBS; while the first runs, FLOOD_LIGHT_USERS others submit one job each (each in
    a community of their own when `communities` is set).
    """
    scheduler = FairScheduler(
        max_pending_per_user=100, max_queue=100, max_wait=MAX_WAIT_SECONDS, communities=communities
    )
    cost = COSTS[1]
    for index in range(FLOOD_HEAVY_JOBS):
        heavy = QueuedJob(job_id=f"h{index}", user="heavy", community="heavy", cost=cost, submitted_at=0.0)
        scheduler.submit(heavy, 0.0)
    starts = [(0.0, scheduler.next_batch(0.0)[0])]
    light_at = cost / 2
    for index in range(FLOOD_LIGHT_USERS):
        light = QueuedJob(job_id=f"l{index}", user=f"l{index}", community=f"l{index}", cost=cost, submitted_at=light_at)
        scheduler.submit(light, light_at)
    now = cost
    scheduler.finished("h0", now)
    while len(scheduler):
        (job,) = scheduler.next_batch(now)
        starts.append((now, job))
        now += job.cost
        scheduler.finished(job.job_id, now)
    light_starts = [at for at, job in starts if job.user != "heavy"]
    return max(
        sum(1 for at, job in starts if job.user == "heavy" and light_at < at < light_start)
        for light_start in light_starts
    )


def print_latency(title: str, figures: dict[str, dict[str, float]]) -> None:
    print(f"\ndecision latency, {title} ({QUEUED} queued from {USERS} users), microseconds")
    for kind, summary in figures.items():
        print(f"  {kind:<9} median {summary['median']:8.2f}   p99 {summary['p99']:8.2f}")


def benchmark(ops: int) -> dict[str, Any]:
    started = time.perf_counter()
    load_average = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, load average {load_average:.2f} (other work on the machine skews latency)")

    flat = decision_latency(communities=False, ops=ops)
    print_latency("flat", flat)
    grouped = decision_latency(communities=True, ops=ops)
    print_latency(f"{COMMUNITIES} communities", grouped)

    fair = fairness()
    print(f"\nfairness: {FAIR_USERS} users, each always {FAIR_BACKLOG} jobs queued, {fair['jain_jobs']} jobs served")
    print(f"  Jain's index over users: {fair['jain_index']:.5f} (target >= {JAIN_TARGET})")
    print(f"  least / most served user: {fair['jain_min_max_share']:.4f}")
    print(f"  Jain's index over communities of {'/'.join(map(str, COMMUNITY_SIZES))} users: ", end="")
    print(f"{fair['jain_index_communities']:.5f}")

    flood_flat = flood(communities=False)
    flood_grouped = flood(communities=True)
    print(f"\nflood: one user queues {FLOOD_HEAVY_JOBS} jobs, then {FLOOD_LIGHT_USERS} users submit one each")
    print(f"  most heavy jobs started while a light job waited: {flood_flat} (target <= {FLOOD_TARGET})")
    print(f"  the same with every user in a community of their own: {flood_grouped}")

    wall_s = time.perf_counter() - started
    print(f"\nwall time {wall_s:.1f} s")
    return {
        "benchmark": "scheduler",
        "queued": QUEUED,
        "users": USERS,
        "communities": COMMUNITIES,
        "ops": ops,
        "decision_us": flat,
        "decision_us_communities": grouped,
        **fair,
        "flood_max_wait_jobs": flood_flat,
        "flood_max_wait_jobs_communities": flood_grouped,
        "cpus": os.cpu_count(),
        "load_average_1m": round(load_average, 2),
        "wall_s": round(wall_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=5000, help="timed calls of each kind per mode (default 5000)")
    args = parser.parse_args()
    if args.ops < 100:
        parser.error("--ops must be at least 100 for a p99")
    print(json.dumps(benchmark(args.ops)))


if __name__ == "__main__":
    main()
