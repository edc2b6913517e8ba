"""The scheduler benchmark's batching figures: what a call of k one-image jobs costs on the tiny model, what a heavy
user's one-image flood does to light users when batching is on, and what batching still gains with 4 users waiting.

Why: a batch finishes all its jobs together, so a batch topped up from a heavy user's backlog makes the light user
at its head wait for the whole call, and a heavy user's own batch holds up whoever arrives meanwhile (issue 13).
The flood cases replay the pure scheduler on a model clock where a call of k jobs takes one job's time times
B(k)/B(1), as measured here; the throughput case runs the real `Worker` on the tiny engine.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence

from generation.config import DefaultsSettings, Limits, ModelSettings, resolve_defaults
from generation.engine import Engine
from generation.models import load_models
from generation.previews import Preview
from generation.requests import GenerationRequest, make_request
from generation.scheduler import FairScheduler, QueuedJob
from generation.worker import Cancelled, Ending, Worker, WorkItem

# The worker's default max_batch_images: as many one-image jobs as a call may hold.
CALL_IMAGES = 4
FLOOD_JOB_SECONDS = 27.5  # one one-image job alone on the model clock (the default request's cost)
THROUGHPUT_USERS = 4
THROUGHPUT_JOBS_PER_USER = 4
THROUGHPUT_TARGET = 1.2
WAIT_TARGET = 1.0


def tiny_engine() -> Engine:
    return Engine(load_models(ModelSettings(preset="tiny")))


def one_image(seed: int) -> GenerationRequest:
    defaults = resolve_defaults("tiny", DefaultsSettings())
    return make_request("txt2img", "a prompt", defaults=defaults, limits=Limits(), seed=seed)


def call_costs(engine: Engine, repeats: int) -> tuple[list[float], list[float]]:
    """Seconds of one pipeline call of k one-image requests, k = 1..CALL_IMAGES, and B(k)/B(1): medians over
    `repeats` rounds that take the sizes in turn, each ratio within one round, so that a busy spell on a shared
    machine skews a round's calls alike rather than one size's."""
    engine.generate([one_image(0)])  # warm-up
    rounds: list[list[float]] = []
    for _ in range(repeats):
        taken = []
        for size in range(1, CALL_IMAGES + 1):
            started = time.perf_counter()
            engine.generate([one_image(seed) for seed in range(size)])
            taken.append(time.perf_counter() - started)
        rounds.append(taken)
    seconds = [statistics.median(taken[size] for taken in rounds) for size in range(CALL_IMAGES)]
    ratios = [statistics.median(taken[size] / taken[0] for taken in rounds) for size in range(CALL_IMAGES)]
    return seconds, ratios


def _finishes(arrivals: Sequence[QueuedJob], ratios: Sequence[float]) -> tuple[dict[str, float], list[int]]:
    """Serve one-image jobs on the model clock as the worker does; when each job's call ends, and each call's size.

    Jobs that arrive while a call runs are submitted before it ends, as the chat layer would.
    """
    scheduler = FairScheduler(max_pending_per_user=100, max_queue=100, max_wait=900.0)
    waiting = sorted(arrivals, key=lambda queued: queued.submitted_at)
    finished: dict[str, float] = {}
    sizes: list[int] = []
    now = 0.0

    def submit_until(moment: float, *, inclusive: bool) -> None:
        while waiting and (waiting[0].submitted_at <= moment if inclusive else waiting[0].submitted_at < moment):
            queued = waiting.pop(0)
            scheduler.submit(queued, queued.submitted_at)

    while waiting or len(scheduler):
        submit_until(now, inclusive=True)
        if not len(scheduler):
            now = waiting[0].submitted_at
            continue
        batch = scheduler.next_batch(now, max_jobs=CALL_IMAGES, max_images=CALL_IMAGES)
        sizes.append(len(batch))
        end = now + FLOOD_JOB_SECONDS * ratios[len(batch) - 1]
        submit_until(end, inclusive=False)
        for queued in batch:
            scheduler.finished(queued.job_id, end)
            finished[queued.job_id] = end
        now = end
    return finished, sizes


def _one_image_job(job_id: str, user: str, at: float) -> QueuedJob:
    return QueuedJob(
        job_id=job_id, user=user, community=None, cost=FLOOD_JOB_SECONDS, batch_key="tiny", submitted_at=at
    )


def _heavy(jobs: int) -> list[QueuedJob]:
    return [_one_image_job(f"h{index}", "heavy", 0.0) for index in range(jobs)]


def _wait_for_heavy(heavy: list[QueuedJob], light: list[QueuedJob], ratios: Sequence[float]) -> float:
    """How much later the light jobs finish with the heavy user's flood than without it, at most, in jobs alone."""
    with_heavy, _ = _finishes(heavy + light, ratios)
    alone, _ = _finishes(light, ratios)
    return round(max(with_heavy[queued.job_id] - alone[queued.job_id] for queued in light) / FLOOD_JOB_SECONDS, 3)


def flood_one_image(ratios: Sequence[float], heavy_jobs: int, light_users: int) -> float:
    """The flood test with one-image jobs: a heavy user queues `heavy_jobs`, then, halfway through one job's time,
    `light_users` users submit one each."""
    light = [_one_image_job(f"l{index}", f"l{index}", FLOOD_JOB_SECONDS / 2) for index in range(light_users)]
    return _wait_for_heavy(_heavy(heavy_jobs), light, ratios)


def flood_during_batch(ratios: Sequence[float], heavy_jobs: int) -> float:
    """One light user submits halfway through the heavy user's first call, whatever that call holds."""
    _, sizes = _finishes(_heavy(heavy_jobs), ratios)
    light_at = FLOOD_JOB_SECONDS * ratios[sizes[0] - 1] / 2
    return _wait_for_heavy(_heavy(heavy_jobs), [_one_image_job("light", "light", light_at)], ratios)


class _Count:
    """A `JobSink` that counts finished jobs; a job that fails or is cancelled ends the wait and the run."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.done = 0
        self.problems: list[str] = []
        self.ended = asyncio.Event()

    async def on_started(self, job_ids: Sequence[str]) -> None:
        pass

    async def on_progress(self, job_ids: Sequence[str], fraction: float, previews: Sequence[Preview] = ()) -> None:
        pass

    async def on_ended(self, endings: Sequence[Ending]) -> None:
        for ending in endings:
            if isinstance(ending, Cancelled):
                self.problems.append(f"job {ending.job_id} was cancelled")
                self.ended.set()
                continue
            self.done += 1
            if self.done == self.expected:
                self.ended.set()

    async def on_failed(self, job_id: str, error: BaseException) -> None:
        self.problems.append(f"job {job_id} failed: {error!r}")
        self.ended.set()


async def _serve(engine: Engine, max_batch_images: int) -> float:
    """Seconds until THROUGHPUT_USERS users' one-image jobs, all queued at once, are done."""
    jobs = THROUGHPUT_USERS * THROUGHPUT_JOBS_PER_USER
    worker = Worker(
        engine.generate,
        FairScheduler(max_pending_per_user=jobs, max_queue=jobs, max_wait=900.0),
        max_batch_images=max_batch_images,
    )
    sink = _Count(jobs)
    task = asyncio.create_task(worker.run(sink))
    started = time.perf_counter()
    for index in range(jobs):
        await worker.submit(WorkItem(f"job{index}", one_image(index), f"user{index % THROUGHPUT_USERS}"))
    try:
        await asyncio.wait_for(sink.ended.wait(), 300)
        if sink.problems:
            raise RuntimeError("; ".join(sink.problems))
        return time.perf_counter() - started
    finally:
        await worker.stop()
        await task
        worker.close()


def throughput(engine: Engine, rounds: int) -> dict[str, float]:
    """Batched (the worker's default max_batch_images) against one by one, run in pairs: the median times, and the
    median of each pair's ratio."""
    pairs = [(asyncio.run(_serve(engine, CALL_IMAGES)), asyncio.run(_serve(engine, 1))) for _ in range(rounds)]
    return {
        "batched_s": round(statistics.median(batched for batched, _ in pairs), 3),
        "one_by_one_s": round(statistics.median(single for _, single in pairs), 3),
        "ratio": round(statistics.median(single / batched for batched, single in pairs), 3),
    }
