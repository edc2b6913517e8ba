"""The GPU worker: one asyncio task that feeds the engine, one thread that runs it.

The worker takes the next batch from the queue, runs it in its single dedicated thread, and hands the batch's
results to a `JobSink` (implemented by the chat core: database, files, events) in a separate task, so encoding,
writing and notifying overlap with the next batch on the GPU. That task starts once the next batch is claimed (or
after `CLAIM_HEAD_START_SECONDS`), so that the claim (with a queue in the database, a transaction) does not compete
with it while the GPU waits. A batch's endings go to the sink together, in the batch's fair order, which the sink
keeps when it tells the users. It knows nothing of storage or chat platforms.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from generation.costs import job_cost
from generation.engine import CancelCheck, GenerationResult, ProgressCallback
from generation.errors import GenerationCancelled
from generation.fair_queue_records import QueuedJob
from generation.held_batches import POLL_SECONDS, HeldBatches, Loading
from generation.job_queue import JobQueue, LocalQueue, Measured
from generation.previews import Preview
from generation.requests import GenerationRequest
from generation.scheduler import FairScheduler
from generation.throughput import Throughput

log = logging.getLogger(__name__)

CLAIM_HEAD_START_SECONDS = 0.05
"""How long a batch's endings wait for the next claim at most: a claim takes milliseconds, unless the database
is away, and then the results are better written as soon as it is back than after the claim."""

GenerateFn = Callable[[Sequence[GenerationRequest], ProgressCallback, CancelCheck], list[GenerationResult]]


@dataclass(frozen=True, eq=False)
class Done:
    """A job the GPU finished: its result, and its share of the batch's GPU seconds (by cost)."""

    job_id: str
    result: GenerationResult
    gpu_seconds: float


@dataclass(frozen=True)
class Cancelled:
    """A job cancelled while its batch ran, or whose batch was cancelled."""

    job_id: str


Ending = Done | Cancelled


@dataclass(frozen=True, eq=False)
class WorkItem:
    job_id: str
    request: GenerationRequest
    user: str
    community: str | None = None
    weight: float = 1.0
    counted: bool = True  # whether it holds a place of its user's cap (`QueuedJob.counted`)


class JobSink(Protocol):
    """What the worker reports; the core persists it and tells the users."""

    async def on_started(self, job_ids: Sequence[str]) -> None: ...

    async def on_progress(self, job_ids: Sequence[str], fraction: float, previews: Sequence[Preview] = ()) -> None:
        """`previews`, when there are some, has one per job, in the order of `job_ids`."""

    async def on_ended(self, endings: Sequence[Ending]) -> None:
        """A batch's endings in its fair order, in which the users are to be told them (each once the one before
        is told); one that fails is the sink's to log, and does not stop the rest."""

    async def on_failed(self, job_id: str, error: BaseException) -> None: ...

    async def requests(self, job_ids: Sequence[str]) -> dict[str, GenerationRequest]:
        """The requests of jobs queued by another process, read back from where they were stored; a job that
        cannot be read back is the sink's to fail, and is left out."""


class Worker:
    _sink: JobSink  # given to `run`; only the batch code, which runs inside it, reads it

    def __init__(
        self,
        generate: GenerateFn,
        queue: JobQueue | FairScheduler,
        *,
        max_batch_images: int = 4,
        seconds_per_cost: float = 1.0,
        progress_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        loading: Loading | None = None,
    ) -> None:
        self._generate = generate
        self._held = HeldBatches(loading)
        self.queue: JobQueue = LocalQueue(queue, clock) if isinstance(queue, FairScheduler) else queue
        self._max_batch_images = max_batch_images
        self.throughput = Throughput(seconds_per_cost)
        self._progress_interval = progress_interval
        self._clock = clock
        self._items: dict[str, WorkItem] = {}
        self._running: list[str] = []
        self._running_seconds = 0.0
        self._running_since = 0.0
        self._cancel_requested: set[str] = set()
        self._stopping = False
        self._serving = False
        self._abandoned = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._gpu = ThreadPoolExecutor(max_workers=1, thread_name_prefix="easel-gpu")
        self.busy_seconds = 0.0
        self._claimed = asyncio.Event()  # the batch after the one whose endings wait for it is claimed
        self._claimed.set()
        self.queue.watch(self._stop_requested, self._measured)

    async def submit(self, item: WorkItem) -> None:
        """Queue a job; raises the scheduler's `QueueRefused` when a cap is reached."""
        queued = QueuedJob(
            job_id=item.job_id,
            user=item.user,
            community=item.community,
            cost=job_cost(item.request),
            weight=item.weight,
            batch_key=item.request.batch_key,
            images=item.request.count,
            kind=str(item.request.operation),
            submitted_at=self._clock(),
            counted=item.counted,
        )
        if self.queue.shared and not self._serving:  # a front end only: the job runs elsewhere, read back there
            await self.queue.submit(queued)
            return
        self._items[item.job_id] = item
        try:
            await self.queue.submit(queued)
        except BaseException:
            self._items.pop(item.job_id, None)
            raise
        self._held.prepare(item)

    async def cancel(self, job_id: str) -> str | None:
        """'queued' if removed from the queue, 'running' if it will stop at the next step (on whichever host runs
        it), else None."""
        outcome = await self.queue.cancel(job_id)
        if outcome == "queued":
            self._items.pop(job_id, None)
        elif job_id in self._running or self._held.holds(job_id):
            self._cancel_requested.add(job_id)
            return "running"
        elif outcome == "running":
            await self.queue.stop(job_id)
        return outcome

    def is_running(self, job_id: str) -> bool:
        return job_id in self._running or self.queue.is_running(job_id)

    def position(self, job_id: str) -> int | None:
        """1-based place in the queue; None once the job has left it."""
        return self.queue.position(job_id) if job_id in self.queue else None

    def head(self, count: int) -> list[str]:
        """The first `count` queued jobs, in order."""
        return self.queue.head(count)

    def positions(self) -> dict[str, int]:
        return self.queue.positions()

    def etas(self) -> dict[str, float]:
        """`eta` for every queued job."""
        starts = self.queue.etas(self.throughput.rate)
        return {job_id: self._eta(job_id, start) for job_id, start in starts.items()}

    def eta(self, job_id: str) -> float | None:
        """Seconds until the job is done, from the measured throughput; None for a job the worker does not hold."""
        if job_id in self._running:
            return max(self._running_seconds - self._elapsed(), 0.0)
        if job_id not in self.queue:
            return None
        return self._eta(job_id, self.queue.eta(job_id, self.throughput.rate))

    def _eta(self, job_id: str, start: float) -> float:
        """The work ahead shared among the GPUs that serve the queue, then the job's own."""
        job = self.queue.queued(job_id)
        own = 0.0 if job is None else job.cost * self.throughput.rate(job.kind)
        return start / max(self.queue.parallelism, 1) + own

    def _stop_requested(self, job_id: str) -> None:
        if job_id in self._running:
            self._cancel_requested.add(job_id)

    def _measured(self, measured: Measured) -> None:
        self.throughput.record(measured.kind, measured.cost, measured.seconds)

    async def run(self, sink: JobSink) -> None:
        """Serve batches until `stop`, reporting to `sink`; the current batch always finishes, so nothing is lost.

        The sink comes here, not to the constructor, so that the core implementing it can be built from the worker
        and nothing has to be attached after construction.
        """
        self._sink = sink
        self._serving = True
        while not self._stopping:
            batch = self._held.take_ready() or await self._next_batch()
            if not batch:
                if not self._stopping:
                    await self._wait()
                continue
            if not self._held.hold(batch):
                await self._run_batch(batch)
        for batch in self._held.release():  # taken, so run before the stop ends, as the batch on the GPU is
            await self._run_batch(batch)
        self._claimed.set()
        await self._drain()

    async def _wait(self) -> None:
        """Until something may have been queued; while a held batch waits for its model, not longer than a poll."""
        if not self._held:
            await self.queue.wait()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.wait(), POLL_SECONDS)

    async def stop(self) -> None:
        self._stopping = True
        self.queue.wake()

    def abandon(self) -> None:
        """A stop that ran out of time: the batch on the GPU ends at its next step, and reports under way are
        cancelled. The worker's task is to be cancelled too; nothing more is reported, so the jobs stay as the
        database has them (running, or done and not yet delivered) for the next start."""
        self._abandoned = True
        self._claimed.set()
        for task in self._tasks:
            task.cancel()

    def close(self) -> None:
        self._gpu.shutdown(wait=True)

    async def _next_batch(self) -> list[WorkItem]:
        """The next batch, its jobs queued elsewhere read back through the sink; one that cannot be is over."""
        limit = self._max_batch_images
        try:
            jobs = await self.queue.take(limit, limit)
        finally:
            self._claimed.set()
        foreign = [job.job_id for job in jobs if job.job_id not in self._items]
        requests = await self._sink.requests(foreign) if foreign else {}
        batch, lost = [], []
        for job in jobs:
            item = self._items.pop(job.job_id, None)
            if item is None and job.job_id in requests:
                item = WorkItem(job.job_id, requests[job.job_id], job.user, job.community, job.weight)
            if item is None:
                lost.append(job.job_id)
            else:
                batch.append(item)
        if lost:
            await self.queue.finished(lost, None)
        if self.queue.shared and jobs:
            self._forget_gone()
        return batch

    def _forget_gone(self) -> None:
        """The requests kept for jobs that another worker took or a cancel removed (a shared queue)."""
        for job_id in [job_id for job_id in self._items if job_id not in self.queue]:
            del self._items[job_id]

    async def _run_batch(self, batch: list[WorkItem]) -> None:
        ids = [item.job_id for item in batch]
        measured = None
        began = self._clock()
        try:
            measured = await self._attempt(batch, announce=True)
            log.info("batch of %d job(s) %s: %.2f s", len(ids), ", ".join(ids), self._clock() - began)
        finally:
            self._cancel_requested.difference_update(ids)
            await self.queue.finished(ids, measured)

    async def _attempt(self, batch: list[WorkItem], *, announce: bool) -> Measured | None:
        """Run a batch; if it fails, run its jobs one by one so that a bad job fails alone."""
        ids = [item.job_id for item in batch]
        cost = sum(job_cost(item.request) for item in batch)
        self._running = ids
        self._running_seconds = sum(self.throughput.seconds(item.request) for item in batch)
        self._running_since = since = self._clock()
        started = self._spawn(self._sink.on_started(ids) if announce else asyncio.sleep(0))
        try:
            results = await self._on_gpu(batch, started)
        except GenerationCancelled:
            await asyncio.wait({started})
            self._spawn(self._report([Cancelled(job_id) for job_id in ids]))
            return None
        except Exception as error:
            await asyncio.wait({started})
            if len(batch) > 1:
                log.warning("batch %s failed (%r); running its jobs one by one", ids, error)
                for item in batch:
                    await self._attempt([item], announce=False)
                return None
            log.exception("job %s failed", ids[0])
            self._spawn(self._sink.on_failed(ids[0], error))
            return None
        finally:
            self._running = []
            self._running_seconds = 0.0
        elapsed = self._clock() - since
        measured = Measured(str(batch[0].request.operation), cost, elapsed)
        self._measured(measured)
        endings: list[Ending] = [
            Cancelled(item.job_id)
            if item.job_id in self._cancel_requested
            else Done(item.job_id, result, elapsed * job_cost(item.request) / cost)
            for item, result in zip(batch, results, strict=True)
        ]
        self._claimed.clear()
        self._spawn(self._report(endings), after=started)
        return measured

    async def _report(self, endings: list[Ending]) -> None:
        """A batch's endings, in its fair order; the next batch's endings do not wait for these."""
        with contextlib.suppress(TimeoutError):  # the claim of the next batch, which keeps the GPU waiting, goes first
            await asyncio.wait_for(self._claimed.wait(), CLAIM_HEAD_START_SECONDS)
        await self._sink.on_ended(endings)

    async def _on_gpu(self, batch: list[WorkItem], started: asyncio.Task[None]) -> list[GenerationResult]:
        """Run the batch in the GPU thread; its progress is reported only after its start is."""
        loop = asyncio.get_running_loop()
        ids = [item.job_id for item in batch]
        last_report = 0.0

        async def progress(fraction: float, previews: Sequence[Preview]) -> None:
            """A job cancelled while its batch runs on gets no more previews."""
            await started
            if not previews:
                await self._sink.on_progress(ids, fraction)
                return
            pairs = zip(ids, previews, strict=True)
            kept = [(job_id, preview) for job_id, preview in pairs if job_id not in self._cancel_requested]
            if kept:
                await self._sink.on_progress([job_id for job_id, _ in kept], fraction, [p for _, p in kept])

        def report(fraction: float, previews: Sequence[Preview] = ()) -> None:
            """A preview always goes (the engine makes them seldom); plain progress at most once an interval."""
            nonlocal last_report
            now = self._clock()
            if previews or fraction >= 1.0 or now - last_report >= self._progress_interval:
                last_report = now
                loop.call_soon_threadsafe(lambda: self._spawn(progress(fraction, previews)))

        def should_cancel() -> bool:
            return self._abandoned or all(job_id in self._cancel_requested for job_id in ids)

        def run() -> list[GenerationResult]:
            began = time.perf_counter()
            try:
                return self._generate([item.request for item in batch], report, should_cancel)
            finally:
                self.busy_seconds += time.perf_counter() - began

        return await loop.run_in_executor(self._gpu, run)

    def _elapsed(self) -> float:
        return self._clock() - self._running_since

    def _spawn(self, work: Coroutine[Any, Any, None], after: asyncio.Task[None] | None = None) -> asyncio.Task[None]:
        """Report in a task of its own; `after` (the batch's start report) ends first, however it ends, so that a
        job is written running before it is written done, without the next batch waiting for either."""
        task = asyncio.ensure_future(work if after is None else _after(after, work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)
        return task

    async def _drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


async def _after(first: asyncio.Task[None], work: Coroutine[Any, Any, None]) -> None:
    try:
        await asyncio.wait({first})
    except BaseException:
        work.close()
        raise
    await work


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("reporting a job failed", exc_info=task.exception())
