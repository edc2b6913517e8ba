"""`easel run`: the wiring, with every lifetime explicit.

Open the database (upgrading it), load the model, start the worker and the adapters, recover what a
previous run left behind, and on SIGINT/SIGTERM stop taking work, let the batch on the GPU finish,
write everything down, and close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from typing import TextIO

from bots.config import Settings
from bots.console.adapter import ConsoleAdapter
from bots.service import Service
from generation.engine import Engine
from generation.models import load_models
from generation.scheduler import FairScheduler
from generation.worker import GenerateFn, Worker
from storage.database import Database
from storage.files import FileStore

log = logging.getLogger("easel")

REDELIVERY_INTERVAL_SECONDS = 60.0


class NothingToRun(Exception):
    """No adapter can start: no platform token, and no console asked for."""


def build_worker(settings: Settings, service: Service, generate: GenerateFn) -> Worker:
    queue = settings.queue
    scheduler = FairScheduler(
        max_pending_per_user=queue.max_pending_per_user,
        max_queue=queue.max_queue,
        max_wait=queue.max_wait_seconds,
        communities=queue.fair_communities,
    )
    return Worker(generate, scheduler, service, max_batch_images=queue.max_batch_images)


async def serve(
    settings: Settings,
    *,
    console: bool,
    generate: GenerateFn | None = None,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
) -> None:
    """Run until the console input ends or a signal arrives. `generate` replaces the engine in benchmarks."""
    if not console:
        raise NothingToRun("no chat platform is configured yet; run `easel run --console` for the console adapter")
    db = Database(settings.storage.database_url)
    await db.connect()
    try:
        await db.upgrade()
        if generate is None:
            models = await asyncio.to_thread(load_models, settings.model)
            generate = Engine(models).generate
        service = Service(settings, db, FileStore(settings.storage.outputs_dir))
        worker = build_worker(settings, service, generate)
        service.attach(worker)
        adapter = ConsoleAdapter(service, stdin, stdout)
        adapter.register()
        log.info("console adapter started")
        await service.recover()
        worker_task = asyncio.create_task(worker.run(), name="easel-worker")
        await service.redeliver()
        redelivery = asyncio.create_task(_redeliver_periodically(service), name="easel-redelivery")
        try:
            await _until_done_or_signalled(asyncio.create_task(adapter.run(), name="easel-console"), worker_task)
        finally:
            redelivery.cancel()
            await worker.stop()
            await worker_task
            worker.close()
    finally:
        await db.close()
    log.info("stopped")


async def _until_done_or_signalled(main: asyncio.Task[None], worker: asyncio.Task[None]) -> None:
    """Wait for the adapter to finish or a signal; a worker that dies is a bug that stops the service."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    stopper = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({main, stopper, worker}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        stopper.cancel()
    if main in done:
        main.result()
        return
    if stop.is_set():
        log.info("signal received: finishing the batch on the GPU, then stopping")
    main.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await main


async def _redeliver_periodically(service: Service) -> None:
    while True:
        await asyncio.sleep(REDELIVERY_INTERVAL_SECONDS)
        try:
            await service.redeliver()
        except Exception:
            log.exception("redelivery failed")
