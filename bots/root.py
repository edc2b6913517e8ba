"""The composition root: the one place that opens the database and the file store, builds the queue, the worker
and the core, and closes them in order. `easel run`, `easel worker`, the tests and the benchmarks all start here.

On SQLite the queue is this process's (`LocalQueue`); on PostgreSQL it is shared by every process on the database
(`SharedQueue`), which then listens for the others' notifications and relays its own jobs' events to them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial

from bots.config import ConfigError, Settings
from bots.core.facade import Core
from bots.core.files import Files
from bots.core.lifecycle import MAX_ATTEMPTS
from bots.core.relay import JOB_CHANNEL, Relay
from bots.core.shared_queue import STOP_CHANNEL, SharedQueue
from bots.instance import HOST, claimed
from generation import language_detection
from generation.engine import Engine, GenerationResult
from generation.held_batches import Loading
from generation.job_queue import JobQueue, LocalQueue
from generation.models import load_models
from generation.requests import GenerationRequest
from generation.safety import load_safety_checker
from generation.scheduler import FairScheduler
from generation.translation import load_translator
from generation.worker import GenerateFn, Worker
from storage.database import Database
from storage.files import FileStore
from storage.notifications import Listener, listens
from storage.queue_log import QUEUE_CHANNEL
from storage.records import JobState

log = logging.getLogger(__name__)


def build_scheduler(settings: Settings) -> FairScheduler:
    queue = settings.queue
    return FairScheduler(
        max_pending_per_user=queue.max_pending_per_user,
        max_queue=queue.max_queue,
        max_wait=queue.max_wait_seconds,
        communities=queue.fair_communities,
    )


def build_worker(
    settings: Settings, generate: GenerateFn, queue: JobQueue | None = None, loading: Loading | None = None
) -> Worker:
    chosen = queue if queue is not None else LocalQueue(build_scheduler(settings))
    return Worker(generate, chosen, max_batch_images=settings.queue.max_batch_images, loading=loading)


def shared(settings: Settings) -> bool:
    """Whether the queue lives in the database, for every process on it (PostgreSQL)."""
    return listens(settings.storage.database_url)


def check_roles(settings: Settings, *, local_worker: bool) -> None:
    if not local_worker and not shared(settings):
        raise ConfigError(
            "worker.local = false (or --no-worker) needs a PostgreSQL storage.database_url: on SQLite no other "
            "process can run the jobs"
        )


def no_gpu(requests: Sequence[GenerationRequest], *_: object) -> list[GenerationResult]:
    """A front end without a worker never runs a job; reaching here is a bug."""
    raise RuntimeError(f"this process has no worker, yet was given {len(requests)} job(s) to run")


async def load_engine(settings: Settings) -> Engine:
    """The model, the translator and the safety checker, loaded off the event loop; the language detector is
    loaded here too (about 1 s), not inside the first user's request."""
    models = await asyncio.to_thread(load_models, settings.model)
    translator = await asyncio.to_thread(load_translator, settings.translation, settings.model)
    safety = await asyncio.to_thread(load_safety_checker, settings.safety, settings.model)
    await asyncio.to_thread(language_detection.load)
    return Engine(models, translator, safety=safety, previews=settings.previews)


async def warm_front_end() -> GenerateFn:
    """A front end without a worker loads no model; only the language detector its requests use."""
    await asyncio.to_thread(language_detection.load)
    return no_gpu


class Runtime:
    """One process's database, file store, queue, worker and core; `local_worker` False: a front end only."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        generate: GenerateFn,
        *,
        local_worker: bool = True,
        loading: Loading | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.local_worker = local_worker
        carried = shared(settings) and not settings.storage.shared_outputs_dir
        self.files = Files(FileStore(settings.storage.outputs_dir), db if carried else None)
        self.shared: SharedQueue | None = None
        if shared(settings):
            owner = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
            self.shared = SharedQueue(
                db,
                partial(build_scheduler, settings),
                owner=owner,
                lease_seconds=settings.worker.lease_seconds,
                poll_seconds=settings.worker.poll_seconds,
                max_attempts=MAX_ATTEMPTS,
            )
        self.worker = build_worker(settings, generate, self.shared, loading)
        self.core = Core(settings, db, self.files, self.worker)
        self.relay: Relay | None = None
        self._listener: Listener | None = None
        if self.shared is not None:
            self.relay = Relay(db, self.core.deliveries)
            self.core.announcer.relay = self.relay.publish
            self.shared.give_up = self._give_up
            self.shared.orphaned = self._orphaned
            handlers = {
                QUEUE_CHANNEL: self.shared.notified,
                STOP_CHANNEL: self.shared.stop_notified,
                JOB_CHANNEL: self.relay.notified,
            }
            self._listener = Listener(settings.storage.database_url, handlers, on_connect=self._caught_up)
        self.task: asyncio.Task[None] | None = None
        self._positions: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()

    async def prepare(self) -> None:
        """A shared queue read from the log and its notifications listened to, before any work is taken."""
        if self.shared is not None and self._listener is not None:
            await self.shared.refresh()
            self._listener.start()
            self.shared.start()

    def start(self) -> asyncio.Task[None]:
        """The worker's task (for a front end only, one that waits for the stop), and beside it the one that tells
        waiting users their places."""
        work = self.worker.run(self.core.lifecycle) if self.local_worker else self._idle.wait()
        self.task = asyncio.create_task(_ended(work), name="easel-worker")
        self._positions = asyncio.create_task(self.core.positions.run(), name="easel-positions")
        return self.task

    def _caught_up(self) -> None:
        """After a (re)connection of the notifications, what they missed is read from the log."""
        if self.shared is not None:
            self.shared.notified("")

    async def _give_up(self, job_id: str) -> None:
        await self.core.lifecycle.close(job_id, JobState.FAILED, error_key="error.internal")

    async def _orphaned(self, job_id: str) -> None:
        job = await self.db.get_job(job_id)
        if job is not None and job.state in (JobState.QUEUED, JobState.RUNNING):
            await self.core.recovery.requeue(job)

    async def finish(self, timeout: float | None = None) -> None:
        """Let the batch on the GPU finish, be written down and delivered; jobs still queued wait in the database
        for the next start. Past `timeout` seconds the batch stops at its next step and reports nothing: its jobs
        run again, and undelivered results are delivered, at the next start."""
        if self.task is None:
            return
        if self._positions is not None:
            self._positions.cancel()
            await asyncio.wait({self._positions})
        self._idle.set()
        await self.worker.stop()
        done, _ = await asyncio.wait({self.task}, timeout=timeout)
        if not done:
            log.warning("the batch on the GPU and its deliveries took over %.0f s: left for the next start", timeout)
            self.worker.abandon()
            self.task.cancel()
            await asyncio.wait({self.task})

    async def stop(self) -> None:
        """`finish`, then close; a worker that died raises here what ended it."""
        try:
            await self.finish()
            self.worker.close()
            if self.task is not None and not self.task.cancelled():
                self.task.result()
        finally:
            if self._listener is not None:
                await self._listener.close()
            if self.shared is not None:
                await self.shared.close()
            if self.relay is not None:
                await self.relay.close()
            await self.db.close()


async def open_runtime(
    settings: Settings, generate: GenerateFn | None = None, *, local_worker: bool | None = None
) -> Runtime:
    """Connect and migrate the database (a problem there shows before minutes of model loading), load the
    engine unless `generate` stands in for it (or no worker runs here), and build everything on them; the worker
    is not started yet. `local_worker` defaults to `worker.local`."""
    local = settings.worker.local if local_worker is None else local_worker
    check_roles(settings, local_worker=local)
    db = Database(settings.storage.database_url)
    await db.connect()
    try:
        await db.upgrade()
        loading: Loading | None = None
        if generate is None and local:
            engine = await load_engine(settings)
            generate, loading = engine.generate, engine
        elif generate is None:
            generate = await warm_front_end()
        runtime = Runtime(settings, db, generate, local_worker=local, loading=loading)
        await runtime.prepare()
        return runtime
    except BaseException:
        await db.close()
        raise


@asynccontextmanager
async def running_core(
    settings: Settings,
    generate: GenerateFn | None = None,
    *,
    tokens: Mapping[str, str] | None = None,
    local_worker: bool | None = None,
) -> AsyncIterator[Runtime]:
    """A started runtime for the length of the block, stopped in order however the block ends. The database (a
    SQLite file) and the platform `tokens` it serves (by platform) are claimed first, for this process alone
    (`bots.instance`)."""
    async with claimed(settings, tokens or {}):
        runtime = await open_runtime(settings, generate, local_worker=local_worker)
        try:
            runtime.start()
            yield runtime
        finally:
            await runtime.stop()


async def _ended(work: Awaitable[object]) -> None:
    await work
