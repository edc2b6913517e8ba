"""`easel run`: the wiring, with every lifetime explicit.

Open the database (upgrading it), load the model, start the worker and the adapters, recover what a
previous run left behind, and on SIGINT/SIGTERM stop taking work, let the batch on the GPU finish,
write everything down, and close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Mapping
from typing import Protocol, TextIO

from bots.config import Settings
from bots.console.adapter import ConsoleAdapter
from bots.service import Service
from generation.engine import Engine
from generation.models import load_models
from generation.safety import load_safety_checker
from generation.scheduler import FairScheduler
from generation.translation import detect_language, load_translator
from generation.worker import GenerateFn, Worker
from storage.database import Database
from storage.files import FileStore

log = logging.getLogger("easel")

REDELIVERY_INTERVAL_SECONDS = 60.0


class NothingToRun(Exception):
    """No adapter can start: no platform token, and no console asked for."""


class ChatAdapter(Protocol):
    """What `serve` needs of an adapter: `register` its listener, then `run` until cancelled (the console
    also returns at the end of its input). `run` releases what it holds when it is cancelled."""

    name: str

    def register(self) -> None: ...

    async def run(self) -> None: ...


def platform_tokens(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """The enabled platforms whose token is in the environment; an enabled platform without one is named
    in the log (never its token), so an operator sees why it did not start."""
    tokens = {}
    for platform, section in (("telegram", settings.telegram), ("discord", settings.discord)):
        if not section.enabled:
            continue
        token = environ.get(section.token_env, "").strip()
        if token:
            tokens[platform] = token
        else:
            log.info("%s: %s is not set; the %s adapter does not start", platform, section.token_env, platform)
    return tokens


def _chat_adapters(settings: Settings, service: Service, tokens: Mapping[str, str]) -> list[ChatAdapter]:
    adapters: list[ChatAdapter] = []
    if "telegram" in tokens:
        from bots.telegram.adapter import TelegramAdapter

        adapters.append(TelegramAdapter(service, settings.telegram, tokens["telegram"]))
    if "discord" in tokens:
        from bots.discord.adapter import DiscordAdapter

        adapters.append(DiscordAdapter(service, settings.discord, tokens["discord"]))
    return adapters


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
    environ: Mapping[str, str] | None = None,
) -> None:
    """Run until a signal arrives (or the console's input ends). `generate` replaces the engine in benchmarks."""
    tokens = platform_tokens(settings, os.environ if environ is None else environ)
    if not console and not tokens:
        raise NothingToRun(
            f"no chat platform to serve: set {settings.telegram.token_env} or {settings.discord.token_env} "
            "(with telegram.enabled / discord.enabled), or run `easel run --console`"
        )
    db = Database(settings.storage.database_url)
    await db.connect()
    try:
        await db.upgrade()
        if generate is None:
            models = await asyncio.to_thread(load_models, settings.model)
            translator = await asyncio.to_thread(load_translator, settings.translation, settings.model)
            safety = await asyncio.to_thread(load_safety_checker, settings.safety, settings.model)
            generate = Engine(models, translator, safety=safety).generate
        # The detector loads its model on first use (0.4 s): here, not inside the first user's request.
        await asyncio.to_thread(detect_language, "warm up")
        service = Service(settings, db, FileStore(settings.storage.outputs_dir))
        worker = build_worker(settings, service, generate)
        service.attach(worker)
        adapters = _chat_adapters(settings, service, tokens)
        if console:
            adapters.append(ConsoleAdapter(service, stdin, stdout))
        for adapter in adapters:
            adapter.register()
        await service.recover()
        worker_task = asyncio.create_task(worker.run(), name="easel-worker")
        running = {asyncio.create_task(adapter.run(), name=f"easel-{adapter.name}"): adapter for adapter in adapters}
        for adapter in adapters:
            log.info("%s adapter started", adapter.name)
        await service.redeliver()
        redelivery = asyncio.create_task(_redeliver_periodically(service), name="easel-redelivery")
        try:
            await _until_done_or_signalled(set(running), worker_task)
        finally:
            redelivery.cancel()
            await worker.stop()
            await worker_task
            worker.close()
    finally:
        await db.close()
    log.info("stopped")


async def _until_done_or_signalled(adapters: set[asyncio.Task[None]], worker: asyncio.Task[None]) -> None:
    """Wait for a signal or the first adapter to end (the console at the end of its input; a chat adapter
    only by failing), then stop the others. A worker that dies is a bug that stops the service."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    stopper = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({*adapters, stopper, worker}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        stopper.cancel()
    if stop.is_set():
        log.info("signal received: finishing the batch on the GPU, then stopping")
    for task in adapters - done:
        task.cancel()
    for task in adapters:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _redeliver_periodically(service: Service) -> None:
    while True:
        await asyncio.sleep(REDELIVERY_INTERVAL_SECONDS)
        try:
            await service.redeliver()
        except Exception:
            log.exception("redelivery failed")
