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
from typing import Protocol, TextIO

from bots.config import Environment, Settings
from bots.console.adapter import ConsoleAdapter
from bots.core.facade import Core
from bots.root import running_core
from generation.errors import EaselError
from generation.worker import GenerateFn

log = logging.getLogger("easel")

REDELIVERY_INTERVAL_SECONDS = 60.0


class NothingToRun(EaselError):
    """No adapter can start: no platform token, and no console asked for."""


class ChatAdapter(Protocol):
    """What `serve` needs of an adapter: `register` its listener, then `run` until cancelled (the console
    also returns at the end of its input). `run` releases what it holds when it is cancelled."""

    name: str

    def register(self) -> None: ...

    async def run(self) -> None: ...


def served_platforms(settings: Settings, environment: Environment) -> list[str]:
    """The enabled platforms whose token is in the environment; an enabled platform without one is named
    in the log (never its token), so an operator sees why it did not start."""
    platforms = []
    for platform, section, token in (
        ("telegram", settings.telegram, environment.telegram_token),
        ("discord", settings.discord, environment.discord_token),
    ):
        if token:
            platforms.append(platform)
        elif section.enabled:
            log.info("%s: %s is not set; the %s adapter does not start", platform, section.token_env, platform)
    return platforms


def _chat_adapters(settings: Settings, core: Core, environment: Environment) -> list[ChatAdapter]:
    adapters: list[ChatAdapter] = []
    if environment.telegram_token:
        from bots.telegram.adapter import TelegramAdapter

        token, secret = environment.telegram_token, environment.telegram_webhook_secret
        cache = settings.moderation.admin_cache_seconds
        adapters.append(
            TelegramAdapter(core, settings.telegram, token, webhook_secret=secret, admin_cache_seconds=cache)
        )
    if environment.discord_token:
        from bots.discord.adapter import DiscordAdapter

        adapters.append(DiscordAdapter(core, settings, environment.discord_token))
    return adapters


async def serve(
    settings: Settings,
    environment: Environment,
    *,
    console: bool,
    generate: GenerateFn | None = None,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
) -> None:
    """Run until a signal arrives (or the console's input ends). `generate` replaces the engine in benchmarks."""
    if not console and not served_platforms(settings, environment):
        raise NothingToRun(
            f"no chat platform to serve: set {settings.telegram.token_env} or {settings.discord.token_env} "
            "(with telegram.enabled / discord.enabled), or run `easel run --console`"
        )
    async with running_core(settings, generate) as runtime:
        core = runtime.core
        adapters = _chat_adapters(settings, core, environment)
        if console:
            language = settings.console.language or environment.locale
            adapters.append(ConsoleAdapter(core, language, stdin, stdout))
        for adapter in adapters:
            adapter.register()
        await core.recover()
        running = {asyncio.create_task(adapter.run(), name=f"easel-{adapter.name}"): adapter for adapter in adapters}
        for adapter in adapters:
            log.info("%s adapter started", adapter.name)
        await core.redeliver()
        redelivery = asyncio.create_task(_redeliver_periodically(core), name="easel-redelivery")
        try:
            assert runtime.task is not None
            await _until_done_or_signalled(set(running), runtime.task)
        finally:
            redelivery.cancel()
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


async def _redeliver_periodically(core: Core) -> None:
    while True:
        await asyncio.sleep(REDELIVERY_INTERVAL_SECONDS)
        try:
            await core.redeliver()
        except Exception:
            log.exception("redelivery failed")
