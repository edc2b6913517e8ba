"""`easel run`: the wiring, with every lifetime explicit.

Claim the database and the platform tokens for this process, open the database (upgrading it), load the model,
start the worker and the adapters, recover what a previous run left behind, and on SIGINT/SIGTERM stop in order:
take no more work, let the batch on the GPU finish and deliver its results through the still-open platform
clients, then close them, all within STOP_SECONDS.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn, TextIO

from bots.config import Settings
from bots.console.adapter import ConsoleAdapter
from bots.core.facade import Core
from bots.core.health import HealthCheck
from bots.core.retention import keeps_everything, prune_daily
from bots.environment import Environment
from bots.heap import set_start_up_aside
from bots.kit.lifetime import STEP_SECONDS, STOPPED_AT_ONCE, Adapter, Adapters
from bots.root import running_core
from generation.errors import EaselError
from generation.worker import GenerateFn
from storage.errors import DatabaseUnavailable

log = logging.getLogger("easel")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
REDELIVERY_INTERVAL_SECONDS = 60.0
STOP_SECONDS = 25.0
"""The most a stop takes from the signal: within the 30 s a service manager is commonly given to wait."""


class NothingToRun(EaselError):
    """No adapter can start: no platform token, and no console asked for."""


def served_platforms(environment: Environment) -> list[str]:
    """The enabled platforms whose token is in the environment (a disabled platform's token is not read)."""
    return list(_tokens(environment))


def _say_unserved(settings: Settings, environment: Environment) -> None:
    """Once per start: each enabled platform without a token, named (never its token), so that an operator sees
    why its adapter did not start."""
    for platform, section in (("telegram", settings.telegram), ("discord", settings.discord)):
        if section.enabled and platform not in _tokens(environment):
            log.info("%s: %s is not set; the %s adapter does not start", platform, section.token_env, platform)


def _tokens(environment: Environment) -> dict[str, str]:
    tokens = {"telegram": environment.telegram_token, "discord": environment.discord_token}
    return {platform: token for platform, token in tokens.items() if token}


def _chat_adapters(settings: Settings, core: Core, environment: Environment) -> list[Adapter]:
    adapters: list[Adapter] = []
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
    _say_unserved(settings, environment)
    if not console and not served_platforms(environment) and not settings.http.enabled:
        raise NothingToRun(
            f"no chat platform to serve: set {settings.telegram.token_env} or {settings.discord.token_env} "
            "(with telegram.enabled / discord.enabled), enable [http], or run `easel run --console`"
        )
    async with running_core(settings, generate, tokens=_tokens(environment)) as runtime:
        core = runtime.core
        chosen = _chat_adapters(settings, core, environment)
        set_start_up_aside()
        if console:
            language = settings.console.language or environment.locale
            chosen.append(ConsoleAdapter(core, language, stdin, stdout, settings.storage.outputs_dir / "previews"))
        if settings.http.enabled:
            from bots.http.adapter import HttpAdapter

            worker = runtime.task
            alive = (lambda: worker is not None and not worker.done()) if runtime.local_worker else None
            chosen.append(HttpAdapter(core, settings.http, HealthCheck(runtime.db, alive)))
        async with Adapters(chosen) as adapters:
            adapters.register()
            await core.recover()
            stop = asyncio.Event()
            with signals(stop):
                adapters.start()
                redelivery = asyncio.create_task(_redeliver_periodically(core), name="easel-redelivery")
                retention = _retention(settings, core)
                try:
                    assert runtime.task is not None
                    await until_done_or(stop, adapters.tasks, runtime.task)
                finally:
                    deadline = asyncio.get_running_loop().time() + STOP_SECONDS
                    await _end_redelivery(core, redelivery)
                    if retention is not None:
                        retention.cancel()
                        await asyncio.gather(retention, return_exceptions=True)
            await adapters.stop_receiving()
            await runtime.finish(max(deadline - asyncio.get_running_loop().time() - STEP_SECONDS, 0.0))
        if adapters.failure is not None:
            raise adapters.failure
    log.info("stopped")


@contextmanager
def signals(stop: asyncio.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set `stop` from the moment the adapters start taking work; once the stop has begun (and
    after this block), a second one ends the process at once, in one line: nothing is lost, as a kill loses
    nothing (a restart recovers from it), and waiting for the cleanup would mean waiting for the batch on the GPU,
    which no thread can interrupt. Before, SIGINT is Python's KeyboardInterrupt, which `easel` reports the same."""
    loop = asyncio.get_running_loop()

    def first() -> None:
        stop.set()
        at_once()

    def at_once() -> None:
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, _exit_at_once, signum)

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, first)
    try:
        yield
    finally:
        at_once()


def _exit_at_once(signum: int) -> NoReturn:
    print(STOPPED_AT_ONCE, file=sys.stderr, flush=True)
    os._exit(128 + signum)


async def until_done_or(stop: asyncio.Event, adapters: set[asyncio.Task[None]], worker: asyncio.Task[None]) -> None:
    """Wait for `stop` or the first adapter to end (the console at the end of its input; a chat adapter only by
    failing). A worker that dies is a bug that stops the service."""
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({*adapters, stopper, worker}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if stop.is_set():
        log.info("signal received: taking no more work, finishing the batch on the GPU and delivering it")


async def _end_redelivery(core: Core, sweeps: asyncio.Task[None]) -> None:
    """Before the adapters stop (their links cancel the sweeps they started): no redelivery starts, and the one in
    flight finishes the job it is delivering, within STEP_SECONDS; then the periodic sweeps end."""
    try:
        await asyncio.wait_for(core.stop_redelivering(), STEP_SECONDS)
    except TimeoutError:
        log.warning("the redelivery in flight took over %.0f s: cancelled, left for the next start", STEP_SECONDS)
    sweeps.cancel()
    await asyncio.gather(sweeps, return_exceptions=True)


def _retention(settings: Settings, core: Core) -> asyncio.Task[None] | None:
    """The daily prune, where the config deletes anything (a pruned file is a deleted one: nothing to finish)."""
    if keeps_everything(settings.storage):
        return None
    return asyncio.create_task(prune_daily(settings.storage, core.db, core.files), name="easel-retention")


async def _redeliver_periodically(core: Core) -> None:
    """Results never delivered (a platform was down, or a previous run ended first): at once, then every while."""
    while True:
        try:
            await core.redeliver()
        except DatabaseUnavailable as error:  # an outage, not a bug: the next sweep tries again
            log.warning("redelivery waits for the database: %s", error)
        except Exception:
            log.exception("redelivery failed")
        await asyncio.sleep(REDELIVERY_INTERVAL_SECONDS)
