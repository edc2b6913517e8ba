"""The composition root: the one place that opens the database and the file store, builds the worker and
the core, and closes them in order. `easel run`, the tests and the benchmarks all start easel here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from bots.config import Settings
from bots.core.facade import Core
from bots.instance import claimed
from generation.engine import Engine
from generation.models import load_models
from generation.safety import load_safety_checker
from generation.scheduler import FairScheduler
from generation.translation import detect_language, load_translator
from generation.worker import GenerateFn, Worker
from storage.database import Database
from storage.files import FileStore

log = logging.getLogger(__name__)


def build_worker(settings: Settings, generate: GenerateFn) -> Worker:
    queue = settings.queue
    scheduler = FairScheduler(
        max_pending_per_user=queue.max_pending_per_user,
        max_queue=queue.max_queue,
        max_wait=queue.max_wait_seconds,
        communities=queue.fair_communities,
    )
    return Worker(generate, scheduler, max_batch_images=queue.max_batch_images)


async def load_engine(settings: Settings) -> GenerateFn:
    """The model, the translator and the safety checker, loaded off the event loop; the language detector is
    warmed here too (0.4 s), not inside the first user's request."""
    models = await asyncio.to_thread(load_models, settings.model)
    translator = await asyncio.to_thread(load_translator, settings.translation, settings.model)
    safety = await asyncio.to_thread(load_safety_checker, settings.safety, settings.model)
    await asyncio.to_thread(detect_language, "warm up")
    return Engine(models, translator, safety=safety, previews=settings.previews).generate


class Runtime:
    """One process's database, file store, worker and core."""

    def __init__(self, settings: Settings, db: Database, generate: GenerateFn) -> None:
        self.settings = settings
        self.db = db
        self.files = FileStore(settings.storage.outputs_dir)
        self.worker = build_worker(settings, generate)
        self.core = Core(settings, db, self.files, self.worker)
        self.task: asyncio.Task[None] | None = None
        self._positions: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[None]:
        """The worker's task, and beside it the one that tells waiting users their places."""
        self.task = asyncio.create_task(self.worker.run(self.core.lifecycle), name="easel-worker")
        self._positions = asyncio.create_task(self.core.positions.run(), name="easel-positions")
        return self.task

    async def finish(self, timeout: float | None = None) -> None:
        """Let the batch on the GPU finish, be written down and delivered; jobs still queued wait in the database
        for the next start. Past `timeout` seconds the batch stops at its next step and reports nothing: its jobs
        run again, and undelivered results are delivered, at the next start."""
        if self.task is None:
            return
        if self._positions is not None:
            self._positions.cancel()
            await asyncio.wait({self._positions})
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
            await self.db.close()


async def open_runtime(settings: Settings, generate: GenerateFn | None = None) -> Runtime:
    """Connect and migrate the database (a problem there shows before minutes of model loading), load the
    engine unless `generate` stands in for it, and build everything on them; the worker is not started yet."""
    db = Database(settings.storage.database_url)
    await db.connect()
    try:
        await db.upgrade()
        return Runtime(settings, db, generate or await load_engine(settings))
    except BaseException:
        await db.close()
        raise


@asynccontextmanager
async def running_core(
    settings: Settings, generate: GenerateFn | None = None, *, tokens: Mapping[str, str] | None = None
) -> AsyncIterator[Runtime]:
    """A started runtime for the length of the block, stopped in order however the block ends. The database and
    the platform `tokens` it serves (by platform) are claimed first, for this process alone (`bots.instance`)."""
    async with claimed(settings, tokens or {}):
        runtime = await open_runtime(settings, generate)
        try:
            runtime.start()
            yield runtime
        finally:
            await runtime.stop()
