"""Scheduler benchmark: decision latency, fairness, the flood test, the worker's duty cycle and the service's overhead.

Why it exists: the fair-share scheduler promises O(log n) decisions, equal service for equal demand, and that one
user's flood cannot hold back newcomers; the worker promises that the GPU never waits for the database or the PNG
encoder; the service promises that its own bookkeeping adds next to nothing to a job's latency. This puts numbers
on all five, so a change that makes a decision scan the queue, skews the shares, lets a backlog jump ahead, puts a
write between two batches, or slows a state change shows up as a changed figure.

The first three are the pure scheduler on a model clock (a job takes its cost in seconds): no GPU, no asyncio.
The last two run a real `Worker` on a stand-in pipeline that sleeps instead of computing (DUTY_GPU_SECONDS per
batch) and returns small noise images: with a sink that only counts, and with the real `Core` over a SQLite
file and a file store in a temporary directory, wired as `easel run` wires them.

Run it from the repository root:

    python benchmarks/scheduler.py [--ops N] [--saturation-seconds S]

Latencies are the median and 99th percentile of N timed calls of each kind with about 10,000 jobs from 1,000
users queued, flat and with 50 communities (the clock barely moves, so nothing ages). Fairness is Jain's index of
the work served while every user keeps a backlog, with aging off. The batching figures (benchmarks/fair_batches.py)
time calls of 1 to 4 one-image jobs on the tiny model, replay the flood with one-image jobs and batching on a model
clock where calls take those times, and run the real worker on the tiny model with 4 users, batched and one by one.
The duty cycle is the time the stand-in ran over
the wall time from its first start to its last return, while DUTY_JOBS jobs of DUTY_USERS users keep it
saturated; each job asks for 4 images, a whole batch, so every job is one pipeline call. The service's overhead is
the median over OVERHEAD_JOBS jobs submitted one at a time to an idle worker. Then the saturation cases of
`benchmarks/saturation.py` (1,000 queued one-image prompts, a burst of 50, the overheads with 200 waiting, all
delivered through the Telegram adapter's delivery; see that module). Human-readable lines come first; the last line
of stdout is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import random
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import fair_batches
from bench_settings import bench_settings
from PIL import Image
from saturation import SECONDS as SATURATION_SECONDS
from saturation import print_saturation, saturation

from bots.core.facade import Core
from bots.core.lifecycle import Lifecycle
from bots.core.types import Actor, EventKind, JobEvent, Place
from bots.heap import set_start_up_aside
from bots.root import running_core
from generation.asks import Ask, Options
from generation.config import DefaultsSettings, Limits, resolve_defaults
from generation.engine import CancelCheck, GenerationResult, ProgressCallback
from generation.previews import Preview
from generation.requests import GenerationRequest, make_request
from generation.scheduler import FairScheduler, QueuedJob
from generation.worker import Cancelled, Ending, Worker, WorkItem

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
# Calls of each size timed on the tiny model, and rounds of the 4-user throughput run.
BATCH_REPEATS = 7
BATCH_ROUNDS = 5

# What one batch takes on the stand-in pipeline, in how many reported steps, and the size of its images.
DUTY_GPU_SECONDS = 0.2
STAND_IN_STEPS = 4
STAND_IN_SIZE = 64
DUTY_JOBS = 50
DUTY_USERS = 5
# Images per job: with the worker's default max_batch_images (4) a job fills a batch alone.
DUTY_IMAGES = 4
DUTY_TARGET = 0.98
OVERHEAD_JOBS = 100
# Short on purpose: the figures are the service's own time, which does not grow with the pipeline's.
OVERHEAD_GPU_SECONDS = 0.05
OVERHEAD_TARGET_MS = 10.0
PLATFORM = "bench"
# A stuck or dead worker fails the run instead of hanging it.
WAIT_LIMIT_SECONDS = 120.0

T = TypeVar("T")


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
    """Median and p99 microseconds of submit, next, cancel, position and eta with about QUEUED jobs waiting."""
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
    samples: dict[str, list[float]] = {"submit": [], "next": [], "cancel": [], "position": [], "eta": []}
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
        _, took = _timed(scheduler.eta, target, load.now, 1.0)
        samples["eta"].append(took)

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


class StandIn:
    """A `GenerateFn` that sleeps instead of computing, and notes when each call ran (perf_counter seconds).

    Like the engine it reports progress after every step and returns one image per seed; the images are noise, so
    that every PNG is encoded and written anew (the file store keeps identical bytes once).
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls: list[tuple[float, float]] = []
        self.returned: dict[int, float] = {}  # by the request's seed

    def __call__(
        self, requests: Sequence[GenerationRequest], on_progress: ProgressCallback, should_cancel: CancelCheck
    ) -> list[GenerationResult]:
        started = time.perf_counter()
        results = [GenerationResult(request, _noise_images(request.seeds), request.seeds) for request in requests]
        for step in range(1, STAND_IN_STEPS + 1):
            time.sleep(max(0.0, started + self.seconds * step / STAND_IN_STEPS - time.perf_counter()))
            on_progress(step / STAND_IN_STEPS)
        finished = time.perf_counter()
        self.calls.append((started, finished))
        for request in requests:
            self.returned[request.seed] = finished
        return results


def _noise_images(seeds: tuple[int, ...]) -> tuple[Image.Image, ...]:
    size = (STAND_IN_SIZE, STAND_IN_SIZE)
    return tuple(Image.frombytes("RGB", size, random.Random(seed).randbytes(size[0] * size[1] * 3)) for seed in seeds)


def _request(seed: int) -> GenerationRequest:
    defaults = resolve_defaults("tiny", DefaultsSettings())
    return make_request("txt2img", "a prompt", defaults=defaults, limits=Limits(), count=DUTY_IMAGES, seed=seed)


class Tally:
    """Jobs ended so far and the ones that ended badly; wakes whoever waits for a count."""

    def __init__(self) -> None:
        self.ended = 0
        self.problems: list[str] = []
        self._changed = asyncio.Event()

    def end(self, problem: str | None = None) -> None:
        self.ended += 1
        if problem is not None:
            self.problems.append(problem)
        self._changed.set()

    async def wait_for(self, target: int, worker: asyncio.Task[None]) -> None:
        """Until `target` jobs have ended; a job that fails, or a worker that dies or stalls, fails the run."""
        waiter = asyncio.create_task(self._reach(target))
        done, _ = await asyncio.wait({waiter, worker}, timeout=WAIT_LIMIT_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            waiter.cancel()
            if worker in done:
                worker.result()
            raise RuntimeError(f"only {self.ended} of {target} jobs ended within {WAIT_LIMIT_SECONDS} s")
        if self.problems:
            raise RuntimeError("; ".join(self.problems))

    async def _reach(self, target: int) -> None:
        while self.ended < target:
            self._changed.clear()
            await self._changed.wait()


class MemorySink:
    """A `JobSink` that only counts ended jobs: the worker's own overhead, with nothing to write."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    async def on_started(self, job_ids: Sequence[str]) -> None:
        pass

    async def on_progress(self, job_ids: Sequence[str], fraction: float, previews: Sequence[Preview] = ()) -> None:
        pass

    async def on_ended(self, endings: Sequence[Ending]) -> None:
        for ending in endings:
            self.tally.end(f"job {ending.job_id} was cancelled" if isinstance(ending, Cancelled) else None)

    async def on_failed(self, job_id: str, error: BaseException) -> None:
        self.tally.end(f"job {job_id} failed: {error!r}")


class DoneTimes(dict[str, float]):
    """When the real core's announcement of each job's result returned: written, announced and marked delivered."""

    def __init__(self, lifecycle: Lifecycle, tally: Tally) -> None:
        super().__init__()
        announcer = lifecycle.announcer
        emit = announcer.emit

        async def timed(kind: EventKind, job_id: str, delivery_attempts: int = 0, **values: Any) -> None:
            await emit(kind, job_id, delivery_attempts, **values)
            if kind is EventKind.DONE:
                self[job_id] = time.perf_counter()
                tally.end()

        announcer.emit = timed  # type: ignore[method-assign]


class Recorder:
    """The bench platform's listener: when each kind of event of each job arrived; failures end a job badly."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.arrived: dict[tuple[str, str], float] = {}

    async def __call__(self, event: JobEvent) -> None:
        self.arrived[(event.kind, event.job_id)] = time.perf_counter()
        if event.kind.final and event.kind != "done":
            self.tally.end(f"job {event.job_id} ended {event.kind} ({event.error_key})")


async def _with_service(
    generate: StandIn,
    tally: Tally,
    listener: Recorder,
    use: Callable[[Core, DoneTimes, Worker, asyncio.Task[None]], Awaitable[T]],
) -> T:
    """The core as `easel run` opens it (the composition root), over a SQLite file and a file store in a
    temporary directory."""
    with tempfile.TemporaryDirectory(prefix="easel-bench-") as root:
        async with running_core(bench_settings(Path(root), DUTY_JOBS), generate) as runtime:
            set_start_up_aside()  # as `easel run` does
            done_at = DoneTimes(runtime.core.lifecycle, tally)
            runtime.core.listen(PLATFORM, listener)
            assert runtime.task is not None
            return await use(runtime.core, done_at, runtime.worker, runtime.task)


def _duty_figures(stand_in: StandIn, worker_busy_seconds: float, last_ended: float) -> dict[str, Any]:
    """Duty cycle from the stand-in's own timestamps, with the gaps between calls and what came after the last."""
    first, last = stand_in.calls[0][0], stand_in.calls[-1][1]
    wall = last - first
    busy = sum(end - start for start, end in stand_in.calls)
    gaps = [after[0] - before[1] for before, after in itertools.pairwise(stand_in.calls)]
    return {
        "duty_cycle": round(busy / wall, 4),
        "batches": len(stand_in.calls),
        "wall_s": round(wall, 3),
        "gap_ms": {"median": round(statistics.median(gaps) * 1000, 2), "max": round(max(gaps) * 1000, 2)},
        "worker_busy_ratio": round(worker_busy_seconds / wall, 4),
        "tail_ms": round((last_ended - last) * 1000, 2),
    }


async def _duty_memory() -> dict[str, Any]:
    stand_in = StandIn(DUTY_GPU_SECONDS)
    tally = Tally()
    scheduler = FairScheduler(max_pending_per_user=DUTY_JOBS, max_queue=DUTY_JOBS, max_wait=MAX_WAIT_SECONDS)
    worker = Worker(stand_in, scheduler)
    task = asyncio.create_task(worker.run(MemorySink(tally)), name="easel-worker")
    try:
        for index in range(DUTY_JOBS):
            await worker.submit(WorkItem(f"job{index}", _request(index), f"user{index % DUTY_USERS}"))
        await tally.wait_for(DUTY_JOBS, task)
        last_ended = time.perf_counter()
    finally:
        await worker.stop()
        await task
        worker.close()
    return _duty_figures(stand_in, worker.busy_seconds, last_ended)


async def _duty_service() -> dict[str, Any]:
    stand_in = StandIn(DUTY_GPU_SECONDS)
    tally = Tally()

    async def use(core: Core, done_at: DoneTimes, worker: Worker, task: asyncio.Task[None]) -> dict[str, Any]:
        for index in range(DUTY_JOBS):
            actor = Actor(PLATFORM, f"user-{index % DUTY_USERS}")
            ask = Ask("txt2img", "a prompt", Options(seed=index, count=DUTY_IMAGES))
            await core.submit(actor, Place(PLATFORM, "channel"), ask)
        await tally.wait_for(DUTY_JOBS, task)
        return _duty_figures(stand_in, worker.busy_seconds, max(done_at.values()))

    return await _with_service(stand_in, tally, Recorder(tally), use)


def duty_cycle() -> dict[str, dict[str, Any]]:
    """How much of the wall time the pipeline runs while jobs wait, with a counting sink and with the real service.

    The jobs are submitted right after the worker starts (through the service one after another, each taking a
    few milliseconds while the first job already runs), so the queue is never empty until the last job. gap_ms is
    the time from one pipeline call's return to the next one's start; tail_ms, from the last return to the end of
    the last job in the sink; worker_busy_ratio is `Worker.busy_seconds` over the same wall time.
    """
    return {"memory_sink": asyncio.run(_duty_memory()), "service_sqlite": asyncio.run(_duty_service())}


def service_overhead(jobs: int = OVERHEAD_JOBS) -> dict[str, dict[str, float]]:
    """Milliseconds the service adds to a job on SQLite, with the worker idle before each submission.

    submit: the `submit` call itself. submit_to_running: from calling `submit` to the "started" event, which the
    service emits once the running state is written. done_to_event: from the pipeline's return to the "done"
    event (PNG encoded and stored, job and quota written). done_to_delivered: from the pipeline's return to the
    end of `on_done`, delivery mark included.
    """
    stand_in = StandIn(OVERHEAD_GPU_SECONDS)
    tally = Tally()
    recorder = Recorder(tally)

    async def use(core: Core, done_at: DoneTimes, worker: Worker, task: asyncio.Task[None]) -> dict[str, list[float]]:
        samples: dict[str, list[float]] = {
            "submit": [],
            "submit_to_running": [],
            "done_to_event": [],
            "done_to_delivered": [],
        }
        for index in range(jobs):
            actor = Actor(PLATFORM, f"user-{index % DUTY_USERS}")
            called = time.perf_counter()
            receipt = await core.submit(
                actor, Place(PLATFORM, "channel"), Ask("txt2img", "a prompt", Options(seed=index))
            )
            submitted = time.perf_counter()
            await tally.wait_for(index + 1, task)
            returned = stand_in.returned[index]
            samples["submit"].append(submitted - called)
            samples["submit_to_running"].append(recorder.arrived[("started", receipt.job_id)] - called)
            samples["done_to_event"].append(recorder.arrived[("done", receipt.job_id)] - returned)
            samples["done_to_delivered"].append(done_at[receipt.job_id] - returned)
        return samples

    samples = asyncio.run(_with_service(stand_in, tally, recorder, use))
    return {kind: _summary([value * 1000 for value in values]) for kind, values in samples.items()}


def print_latency(title: str, figures: dict[str, dict[str, float]]) -> None:
    print(f"\ndecision latency, {title} ({QUEUED} queued from {USERS} users), microseconds")
    for kind, summary in figures.items():
        print(f"  {kind:<9} median {summary['median']:8.2f}   p99 {summary['p99']:8.2f}")


def batching_figures() -> dict[str, Any]:
    """Calls of 1 to 4 one-image jobs timed on the tiny model, the one-image floods, and the 4-user throughput."""
    engine = fair_batches.tiny_engine()
    calls, ratios = fair_batches.call_costs(engine, BATCH_REPEATS)
    print(f"\none call of k one-image jobs on the tiny model, median of {BATCH_REPEATS}, seconds (B(k)/B(1)):")
    print("  " + "   ".join(f"k={k}: {calls[k - 1]:.3f} ({ratios[k - 1]:.2f})" for k in range(1, len(calls) + 1)))
    one_image = fair_batches.flood_one_image(ratios, FLOOD_HEAVY_JOBS, FLOOD_LIGHT_USERS)
    during_batch = fair_batches.flood_during_batch(ratios, FLOOD_HEAVY_JOBS)
    print("flood with one-image jobs and batching on, calls taking B(k)/B(1) of one job's time: the most a light job")
    print(f"finishes later than without the heavy user, in jobs (target <= {fair_batches.WAIT_TARGET:.0f})")
    print(f"  {FLOOD_LIGHT_USERS} light users halfway through one job's time: {one_image}")
    print(f"  one light user halfway through the heavy user's first call: {during_batch}")
    gain = fair_batches.throughput(engine, BATCH_ROUNDS)
    users, jobs = fair_batches.THROUGHPUT_USERS, fair_batches.THROUGHPUT_JOBS_PER_USER
    print(f"{users} users with {jobs} one-image jobs each, the real worker on the tiny model, ", end="")
    print(f"median of {BATCH_ROUNDS} pairs:")
    print(
        f"  batched {gain['batched_s']:.2f} s, one by one {gain['one_by_one_s']:.2f} s: {gain['ratio']:.2f}x ", end=""
    )
    print(f"(target >= {fair_batches.THROUGHPUT_TARGET})")
    return {
        "batch_call_s": [round(seconds, 4) for seconds in calls],
        "batch_call_ratio": [round(ratio, 3) for ratio in ratios],
        "flood_one_image_max_wait_jobs": one_image,
        "flood_during_batch_max_wait_jobs": during_batch,
        "batch_throughput_4_users": gain,
    }


def benchmark(ops: int, saturation_seconds: float = SATURATION_SECONDS) -> dict[str, Any]:
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

    batching = batching_figures()

    duty = duty_cycle()
    print(f"\nduty cycle: {DUTY_JOBS} jobs of {DUTY_USERS} users, {DUTY_IMAGES} images each, ", end="")
    print(f"a {DUTY_GPU_SECONDS * 1000:.0f} ms stand-in pipeline")
    for title, figures in duty.items():
        print(f"  {title:<15} {figures['duty_cycle']:.2%} busy (target >= {DUTY_TARGET:.0%}), ", end="")
        print(f"gap median {figures['gap_ms']['median']:.2f} ms, max {figures['gap_ms']['max']:.2f} ms, ", end="")
        print(f"tail {figures['tail_ms']:.2f} ms, Worker.busy_seconds says {figures['worker_busy_ratio']:.2%}")

    overhead = service_overhead()
    print(f"\nservice overhead on SQLite, {OVERHEAD_JOBS} jobs one at a time, milliseconds (target <= ", end="")
    print(f"{OVERHEAD_TARGET_MS:.0f} for submit_to_running and done_to_delivered)")
    for kind, summary in overhead.items():
        print(f"  {kind:<18} median {summary['median']:8.2f}   p99 {summary['p99']:8.2f}")

    saturated = saturation(saturation_seconds)
    print_saturation(saturated)

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
        **batching,
        "duty_gpu_seconds": DUTY_GPU_SECONDS,
        "duty_jobs": DUTY_JOBS,
        "duty": duty,
        "overhead_jobs": OVERHEAD_JOBS,
        "overhead_ms": overhead,
        **saturated,
        "cpus": os.cpu_count(),
        "load_average_1m": round(load_average, 2),
        "wall_s": round(wall_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=5000, help="timed calls of each kind per mode (default 5000)")
    parser.add_argument(
        "--saturation-seconds",
        type=float,
        default=SATURATION_SECONDS,
        help=f"stand-in seconds per pipeline call in the saturation cases (default {SATURATION_SECONDS})",
    )
    args = parser.parse_args()
    if args.ops < 100:
        parser.error("--ops must be at least 100 for a p99")
    print(json.dumps(benchmark(args.ops, args.saturation_seconds)))


if __name__ == "__main__":
    main()
