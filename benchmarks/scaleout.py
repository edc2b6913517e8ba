"""Scale-out on PostgreSQL: `easel worker`-like processes with a 200 ms stand-in pipeline, and a front end.

Each worker is a separate process built by the composition root as `easel worker` builds it (the shared queue, the
lifecycle that writes results, the relay), with the engine replaced by a stand-in that sleeps 200 ms per batch and
returns small noise images. The front end is this process (`easel run --no-worker` without a chat platform): it
submits through the core and counts the final events delivered to it. Batching is off (one job per pipeline call)
so that throughput counts jobs, not batch sizes. Each case gets a scratch database on the server.

Cases:
- throughput with 1, 2 and 4 workers: jobs submitted first, then all workers start together; jobs per second from
  the first start to the last finish (the database's timestamps), relative to one worker (target >= 0.95 x N);
- Jain's index over 100 equal users with 2 workers: each queues 3 jobs; jobs started per user among the first 200
  (fair: 2 each, index 1.0; target >= 0.99);
- the flood with 2 workers: a heavy user queues 40 jobs, a light user one job a second later: the heavy user's jobs
  claimed between the light job's entry in the queue and its claim (target: at most one);
- claim latency: the time a worker spends in `take` when it returns a batch (median and p99, target <= 5 ms), in
  the cases above, and alone: one process taking and finishing 300 jobs in turn with nothing else to do;
- a killed worker: 2 workers, a 6 s job, SIGKILL to its worker once it runs: the time until it starts again
  elsewhere, with `worker.lease_seconds` = 2;
- claim latency with 2 and 4 workers whose calls last 200 ms +- 20% (the throughput case again): with calls of one
  length the workers stay in step and their claims come together, each waiting for the others' on the queue's lock,
  which real jobs of different prompts and sizes do not do.

Run: PYTHONPATH=$PWD:$PWD/benchmarks .venv/bin/python benchmarks/scaleout.py [--postgres SERVER_URL] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import signal
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from bench_settings import bench_settings, scratch_postgres
from PIL import Image

from bots.config import Settings
from bots.core.shared_queue import SharedQueue
from bots.core.types import Actor, EventKind, JobEvent, Place
from bots.root import Runtime, open_runtime
from generation.asks import Ask, Options
from generation.engine import CancelCheck, GenerationResult, ProgressCallback
from generation.fair_queue_records import QueuedJob
from generation.requests import GenerationRequest
from generation.scheduler import FairScheduler
from storage.database import Database
from storage.records import JobState

SERVER = os.environ.get("EASEL_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
PIPELINE_SECONDS = 0.2
SLOW_SECONDS = 6.0
JOBS_PER_WORKER = 30
THROUGHPUT_USERS = 30
JAIN_USERS, JAIN_JOBS_EACH, JAIN_FIRST = 100, 3, 200
FLOOD_JOBS = 40
LEASE_SECONDS = 2.0
PLATFORM = "console"
SLOW_MARK = "EASEL_SCALEOUT_SLOW_MARK"
"""The file where the worker that runs the slow job writes its pid."""
JITTER = "EASEL_SCALEOUT_JITTER"
"""Set in a worker's environment: its calls last 200 ms +- this share, each drawn anew, so that the workers drift
out of step as real ones do (jobs of different prompts and sizes)."""
JITTER_SHARE = 0.2


def stand_in(
    requests: Sequence[GenerationRequest], on_progress: ProgressCallback, should_cancel: CancelCheck
) -> list[GenerationResult]:
    """200 ms a pipeline call (6 s for a prompt that asks to be slow, which says which process runs it), then 32 px
    noise per image."""
    if any("slow" in request.prompt for request in requests):
        Path(os.environ[SLOW_MARK]).write_text(str(os.getpid()))
        time.sleep(SLOW_SECONDS)
    else:
        share = float(os.environ.get(JITTER, "0"))
        time.sleep(PIPELINE_SECONDS * random.uniform(1 - share, 1 + share))
    on_progress(1.0)
    return [
        GenerationResult(
            request,
            tuple(
                Image.frombytes("RGB", (32, 32), random.Random(seed).randbytes(32 * 32 * 3)) for seed in request.seeds
            ),
            request.seeds,
        )
        for request in requests
    ]


def worker_process(settings_json: str, go: Any, ready: Any, stats: str) -> None:
    """One worker host: built and ready, it waits for `go`; on SIGTERM it finishes its batch and writes its claim
    latencies to `stats`."""
    asyncio.run(_serve_worker(Settings.model_validate_json(settings_json), go, ready, Path(stats)))


async def _serve_worker(settings: Settings, go: Any, ready: Any, stats: Path) -> None:
    runtime = await open_runtime(settings, stand_in, local_worker=True)
    queue = runtime.shared
    assert queue is not None
    claims: list[float] = []
    take = queue.take

    async def timed_take(max_jobs: int, max_images: int) -> list[Any]:
        began = time.perf_counter()
        jobs = await take(max_jobs, max_images)
        if jobs:
            claims.append(time.perf_counter() - began)
        return jobs

    queue.take = timed_take  # type: ignore[method-assign]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    ready.set()
    await asyncio.to_thread(go.wait)
    runtime.start()
    await stop.wait()
    await runtime.finish(30)
    await runtime.stop()
    stats.write_text(json.dumps(claims))


class Hosts:
    """The worker processes of one case, and this process as its front end."""

    def __init__(self, settings: Settings, workers: int, root: Path) -> None:
        context = multiprocessing.get_context("spawn")
        self.go = context.Event()
        self.ready = [context.Event() for _ in range(workers)]
        self.stats = [root / f"claims-{index}.json" for index in range(workers)]
        payload = settings.model_dump_json()
        self.processes = [
            context.Process(target=worker_process, args=(payload, self.go, ready, str(stats)), daemon=True)
            for ready, stats in zip(self.ready, self.stats, strict=True)
        ]
        self.delivered: Counter[str] = Counter()

    async def __aenter__(self) -> Hosts:
        for process in self.processes:
            process.start()
        for ready in self.ready:
            await asyncio.to_thread(ready.wait, 120)
        return self

    async def __aexit__(self, *_: object) -> None:
        for process in self.processes:
            if process.is_alive():
                assert process.pid is not None
                os.kill(process.pid, signal.SIGTERM)
        for process in self.processes:
            await asyncio.to_thread(process.join, 60)

    def claims(self) -> list[float]:
        return [value for path in self.stats if path.exists() for value in json.loads(path.read_text())]

    async def listen(self, event: JobEvent) -> None:
        if event.kind is EventKind.DONE:
            self.delivered[event.job_id] += 1


async def case(
    settings: Settings, workers: int, use: Callable[[Runtime, Hosts], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    async with scratch_postgres(SERVER) as url:
        assert url is not None
        scoped = bench_settings(Path(tempfile.mkdtemp(prefix="easel-scaleout-")), 10_000, url)
        merged = settings.model_copy(update={"storage": scoped.storage})
        front = await open_runtime(merged, local_worker=False)
        try:
            front.start()
            hosts = Hosts(merged, workers, merged.storage.outputs_dir)
            front.core.listen(PLATFORM, hosts.listen)
            async with hosts:
                result = await use(front, hosts)
            return result | {"claim_seconds": hosts.claims()}
        finally:
            await front.stop()


async def submit(front: Runtime, user: int, prompt: str = "a lighthouse") -> str:
    actor, place = Actor(PLATFORM, str(user), language="en"), Place(PLATFORM, str(user))
    receipt = await front.core.submit(actor, place, Ask("txt2img", prompt, Options(seed=user, count=1)))
    return receipt.job_id


async def until(done: Callable[[], Awaitable[bool]], limit: float = 300.0) -> None:
    """Polled every 50 ms: the cases poll what the front end was told, or one row, never the whole table."""
    deadline = time.monotonic() + limit
    while not await done():
        if time.monotonic() > deadline:
            raise TimeoutError("the case did not finish in time")
        await asyncio.sleep(0.05)


async def times(front: Runtime) -> list[tuple[str, int, float, float]]:
    """Every finished job: id, owner, start and end (seconds since the epoch), in the order they started."""
    rows = []
    for job in await front.db.jobs_in_states([JobState.DONE]):
        assert job.started_at is not None and job.finished_at is not None
        rows.append((job.id, job.owner_id, job.started_at.timestamp(), job.finished_at.timestamp()))
    return sorted(rows, key=lambda row: row[2])


def throughput(workers: int) -> Callable[[Runtime, Hosts], Awaitable[dict[str, Any]]]:
    async def use(front: Runtime, hosts: Hosts) -> dict[str, Any]:
        jobs = JOBS_PER_WORKER * workers
        await asyncio.gather(*(submit(front, index % THROUGHPUT_USERS) for index in range(jobs)))
        hosts.go.set()
        await until(lambda: _delivered(hosts, jobs))
        done = await times(front)
        window = max(end for *_, end in done) - min(start for _, _, start, _ in done)
        return {
            "jobs": jobs,
            "jobs_per_second": round(jobs / window, 3),
            "delivered_once": all(count == 1 for count in hosts.delivered.values()),
        }

    return use


async def _delivered(hosts: Hosts, jobs: int) -> bool:
    return len(hosts.delivered) >= jobs


async def jain(front: Runtime, hosts: Hosts) -> dict[str, Any]:
    jobs = [submit(front, user) for _ in range(JAIN_JOBS_EACH) for user in range(JAIN_USERS)]
    for job in jobs:
        await job
    hosts.go.set()
    await until(lambda: _delivered(hosts, JAIN_FIRST))
    served = Counter(owner for _, owner, _, _ in (await times(front))[:JAIN_FIRST])
    counts = [*served.values(), *[0] * (JAIN_USERS - len(served))]
    index = sum(counts) ** 2 / (len(counts) * sum(count * count for count in counts))
    return {"jain_index": round(index, 5), "min_max": [min(counts), max(counts)]}


async def flood(front: Runtime, hosts: Hosts) -> dict[str, Any]:
    """Read from the queue's log while the heavy user still waits (so it is not yet dropped): the heavy jobs
    claimed after the light job was queued and before it was."""
    for _ in range(FLOOD_JOBS):
        await submit(front, 1)
    hosts.go.set()
    await asyncio.sleep(1.0)
    light = await submit(front, 2)
    await until(lambda: _done(front, light))
    events = await front.db.queue_events(0)
    queued = next(event for event in events if event.kind == "submit" and event.data["job"] == light)
    claimed = next(event for event in events if event.kind == "take" and light in event.data["jobs"])
    passed = [
        job_id
        for event in events
        if event.kind == "take" and queued.seq < event.seq < claimed.seq
        for job_id in event.data["jobs"]
    ]
    return {"light_waited_jobs": len(passed), "light_wait_seconds": round(claimed.at - queued.at, 3)}


async def _done(front: Runtime, job_id: str) -> bool:
    job = await front.db.get_job(job_id)
    return job is not None and job.state.value == "done"


async def killed(front: Runtime, hosts: Hosts) -> dict[str, Any]:
    mark = Path(os.environ[SLOW_MARK])
    hosts.go.set()
    slow = await submit(front, 1, "a slow lighthouse")
    for _ in range(2400):
        if mark.exists() and mark.read_text():
            break
        await asyncio.sleep(0.05)
    killed_at = time.time()
    os.kill(int(mark.read_text()), signal.SIGKILL)
    await until(lambda: _done(front, slow), 120)
    job = await front.db.get_job(slow)
    assert job is not None and job.started_at is not None
    return {
        "lease_seconds": LEASE_SECONDS,
        "rerun_after_kill_seconds": round(job.started_at.timestamp() - killed_at, 3),
        "attempts": job.attempts,
    }


async def claims_alone(cycles: int = 300) -> dict[str, float]:
    """The queue's own cost of a claim: take and finish in turn, one process, nothing else running in it."""
    async with scratch_postgres(SERVER) as url:
        assert url is not None
        async with Database(url) as db:
            await db.upgrade()
            queue = SharedQueue(
                db, partial(FairScheduler, max_pending_per_user=cycles, max_queue=cycles, max_wait=1e9), owner="alone"
            )
            for index in range(cycles):
                await queue.submit(
                    QueuedJob(job_id=f"j{index}", user=f"u{index % 30}", community=None, cost=1.0, submitted_at=0.0)
                )
            samples = []
            for _ in range(cycles):
                began = time.perf_counter()
                jobs = await queue.take(1, 1)
                samples.append(time.perf_counter() - began)
                await queue.finished([job.job_id for job in jobs], None)
            return _ms(samples)


def _ms(samples: Sequence[float]) -> dict[str, float]:
    values = sorted(sample * 1000 for sample in samples)
    return {
        "median": round(statistics.median(values), 2),
        "p99": round(values[min(len(values) - 1, int(0.99 * len(values)))], 2),
        "samples": len(values),
    }


async def benchmark() -> dict[str, Any]:
    base = bench_settings(Path(tempfile.mkdtemp(prefix="easel-scaleout-")), 10_000)
    queue = base.queue.model_copy(update={"max_batch_images": 1})
    worker = base.worker.model_copy(update={"lease_seconds": LEASE_SECONDS, "poll_seconds": 1.0})
    settings = base.model_copy(update={"queue": queue, "worker": worker})
    figures: dict[str, Any] = {"cores": os.cpu_count(), "pipeline_seconds": PIPELINE_SECONDS}
    claims: list[float] = []
    rates = {}
    for workers in (1, 2, 4):
        result = await case(settings, workers, throughput(workers))
        result["claim_latency_ms"] = _ms(result["claim_seconds"])
        claims += result.pop("claim_seconds")
        rates[workers] = result["jobs_per_second"]
        figures[f"throughput_{workers}"] = result
    figures["relative_throughput"] = {str(n): round(rates[n] / rates[1], 3) for n in rates}
    for key, use in (("jain_2_workers", jain), ("flood_2_workers", flood), ("killed_worker", killed)):
        result = await case(settings, 2, use)
        claims += result.pop("claim_seconds")
        figures[key] = result
    figures["claim_latency_ms"] = _ms(claims)
    figures["claim_latency_alone_ms"] = await claims_alone()
    os.environ[JITTER] = str(JITTER_SHARE)
    try:
        for workers in (2, 4):
            result = await case(settings, workers, throughput(workers))
            figures[f"claim_latency_jittered_{workers}_ms"] = _ms(result["claim_seconds"])
    finally:
        del os.environ[JITTER]
    return figures


def main() -> None:
    global SERVER
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--postgres", default=SERVER, help="a PostgreSQL server URL (scratch databases are made there)")
    parser.add_argument("--json", action="store_true", help="one JSON line only")
    args = parser.parse_args()
    SERVER = args.postgres
    os.environ[SLOW_MARK] = str(Path(tempfile.mkdtemp(prefix="easel-scaleout-")) / "slow.pid")
    figures = asyncio.run(benchmark())
    if not args.json:
        for key, value in figures.items():
            print(f"{key}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
