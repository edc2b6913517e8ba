"""`easel worker`: a GPU host that serves the PostgreSQL queue, with no chat platform of its own.

It loads the model, takes the batches the fair order gives it, writes their results to the database (and the
files to `storage.outputs_dir`, which the front ends must share with it), and tells the front ends through
NOTIFY. On SIGINT/SIGTERM it takes no more work, finishes and writes the batch on its GPU, and exits: what is
still queued waits for the other workers. If the database goes away while it runs, it waits with backoff.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import make_url

from bots.config import ConfigError, Settings
from bots.heap import set_start_up_aside
from bots.root import running_core, shared
from bots.run import STOP_SECONDS, signals, until_done_or
from generation.worker import GenerateFn

log = logging.getLogger("easel")


async def serve_worker(settings: Settings, generate: GenerateFn | None = None) -> None:
    """Serve the queue until a signal arrives. `generate` replaces the engine in benchmarks."""
    url = settings.storage.database_url
    shown = make_url(url).render_as_string(hide_password=True)
    if not shared(settings):
        raise ConfigError(
            f"storage.database_url ({shown}): easel worker needs a PostgreSQL database that front ends share; "
            "on SQLite, easel run runs the jobs itself"
        )
    async with running_core(settings, generate, local_worker=True) as runtime:
        set_start_up_aside()
        await runtime.core.recover()
        assert runtime.shared is not None and runtime.task is not None
        log.info("worker %s serves the queue of %s", runtime.shared.owner, shown)
        stop = asyncio.Event()
        with signals(stop):
            await until_done_or(stop, set(), runtime.task)
        await runtime.finish(STOP_SECONDS)
    log.info("stopped")
