"""The Telegram adapter: python-telegram-bot's `Application`, run inside easel's own event loop.

`run_polling` owns its loop and its signals, so the lifecycle is spelled out here instead, in the kit's three
steps (`bots.kit.lifetime`): `run` signs in (getMe) and polls or serves a webhook; `stop_receiving` stops the
updater and lets the updates already taken be handled; `close` shuts the bot's connections down.

Every call goes through PTB's `AIORateLimiter`: at most `messages_per_second` in all and
`group_messages_per_minute` per group (Telegram's 30 and 20), and after a 429 nothing at all is sent until its
`retry_after` has passed, then the call is made again. What PTB itself would log with a traceback for a platform
error is one line (`bots.telegram.logs`).

An unreachable Telegram is waited out through the kit's `Link`: signing in is tried again with backoff, and so
is each `getUpdates`, so PTB's own polling loop (a traceback per failure, fixed waits up to 30 s) never sees an
outage. Every call tells the link whether Telegram answered, so an outage that only a send ran into ends, and
what failed to go is delivered, as soon as the next poll gets through.

Intake is durable (`bots.telegram.intake`): an update is in the database before Telegram is told it arrived,
and what a previous run received and never finished handling is handled again before polling starts.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

from telegram import BotCommandScopeAllChatAdministrators, Update
from telegram.error import NetworkError, TelegramError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder

from bots.config import TelegramSettings
from bots.core.facade import Core
from bots.kit.lifetime import started
from bots.kit.outage import Link
from bots.telegram.admins import Admins
from bots.telegram.aiohttp_request import AiohttpRequest
from bots.telegram.chat import PLATFORM
from bots.telegram.commands import menus
from bots.telegram.delivery import Delivery
from bots.telegram.downloads import Downloads
from bots.telegram.handlers import Handlers
from bots.telegram.intake import Intake, IntakeApplication
from bots.telegram.logs import one_line_platform_errors
from bots.texts import SOURCE_LANGUAGE, available_languages

log = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
RATE_LIMIT_RETRIES = 5
"""Calls refused with a 429 that are made again once its `retry_after` has passed; after that the error is
raised, and logged in one line by the caller (a result is then delivered again by the core)."""


class TelegramAdapter:
    name = PLATFORM

    def __init__(
        self,
        core: Core,
        settings: TelegramSettings,
        token: str,
        *,
        webhook_secret: str | None = None,
        admin_cache_seconds: float = 60.0,
    ) -> None:
        """`admin_cache_seconds`: how long a group's administrators, as Telegram lists them, are trusted."""
        self.core = core
        self.settings = settings
        self.webhook_secret = webhook_secret
        self.link = Link(
            PLATFORM,
            first=settings.reconnect_first_seconds,
            longest=settings.reconnect_longest_seconds,
            is_outage=lambda error: isinstance(error, NetworkError),
            on_back=partial(core.redeliver, PLATFORM),
            counted=core.metrics.platform_error,
        )
        self.intake = Intake(core, token)
        one_line_platform_errors()
        self.application = build_application(settings, token, self.link, self.intake)
        bot = self.application.bot
        self.delivery = Delivery(core, bot, settings)
        downloads = Downloads(bot, settings)
        self.handlers = Handlers(
            core, settings, downloads, Admins(bot, admin_cache_seconds), self.intake, self.delivery.show
        )

    def register(self) -> None:
        self.core.listen(PLATFORM, self.delivery.on_event)
        self.handlers.install(self.application)

    async def run(self) -> None:
        """Sign in and take updates until cancelled."""
        application = self.application
        await self.link.patiently(application.initialize)
        log.info("telegram: signed in as @%s", application.bot.username)
        await self._publish_commands()
        await application.start()
        await self.intake.replay(application)
        updater = application.updater
        assert updater is not None
        if self.settings.mode == "webhook":
            await updater.start_webhook(
                listen=self.settings.webhook_listen,
                port=self.settings.webhook_port,
                url_path=PLATFORM,
                webhook_url=self.settings.webhook_url,
                secret_token=self.webhook_secret,
                allowed_updates=ALLOWED_UPDATES,
                bootstrap_retries=-1,
            )
        else:
            await updater.start_polling(
                allowed_updates=ALLOWED_UPDATES, bootstrap_retries=-1, error_callback=_polling_failed
            )
        started(PLATFORM)
        await asyncio.Event().wait()

    async def stop_receiving(self) -> None:
        """The link stops waiting out an outage (a poll in its backoff ends), the updater stops, and the
        application's stop waits for the updates already taken to be handled."""
        await self.link.close()
        application = self.application
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        await self.handlers.albums.close()

    async def close(self) -> None:
        """After the last deliveries; an application whose stop was cut short is stopped here first."""
        await self.delivery.close()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()

    async def _publish_commands(self) -> None:
        """The command menu in every language easel speaks (English for the rest), with the moderation
        commands only in group administrators' menus (the core refuses them to others anyway); best effort,
        since the bot works without it."""
        for language in available_languages():
            general, administrators = menus(language)
            code = None if language == SOURCE_LANGUAGE else language
            try:
                await self.application.bot.set_my_commands(general, language_code=code)
                await self.application.bot.set_my_commands(
                    administrators, scope=BotCommandScopeAllChatAdministrators(), language_code=code
                )
            except TelegramError as error:
                log.warning("telegram: the %s command menu could not be set: %r", language, error)


def build_application(settings: TelegramSettings, token: str, link: Link, intake: Intake) -> Application:  # type: ignore[type-arg]
    """Updates are handled concurrently: a slow download for one user never holds up another's message. Each
    goes through the intake, which keeps it in the database before Telegram is told it arrived."""
    return (
        ApplicationBuilder()
        .application_class(IntakeApplication)
        .update_queue(intake)
        .token(token)
        .base_url(settings.api_base_url)
        .base_file_url(settings.file_base_url)
        .local_mode(settings.local_mode)
        .concurrent_updates(True)
        .rate_limiter(
            AIORateLimiter(
                overall_max_rate=settings.messages_per_second,
                group_max_rate=settings.group_messages_per_minute,
                max_retries=RATE_LIMIT_RETRIES,
            )
        )
        .request(LinkedRequest(link, connection_pool_size=256))
        .get_updates_request(LinkedRequest(link, patient=True, connection_pool_size=1))
        .build()
    )


class LinkedRequest(AiohttpRequest):
    """PTB's connection, telling the link of each network error (Telegram unreachable, or a proxy's 502) and
    of each answer. A `patient` one (getUpdates') waits an outage out with the link's backoff instead of
    raising; the others raise, so a delivery fails at once and the core keeps it for later."""

    def __init__(self, link: Link, *, patient: bool = False, **options: Any) -> None:
        super().__init__(**options)
        self.link = link
        self.patient = patient

    async def post(self, *args: Any, **kwargs: Any) -> Any:
        if self.patient:
            return await self.link.patiently(partial(super().post, *args, **kwargs))
        try:
            result = await super().post(*args, **kwargs)
        except NetworkError as error:
            self.link.lost(error)
            raise
        self.link.answered()
        return result


def _polling_failed(error: TelegramError) -> None:
    """What PTB's polling loop still sees (a 409 Conflict: another process polls the same token): one line, where
    PTB would log a traceback."""
    log.warning("telegram: polling failed: %r", error)
