"""The Telegram adapter: python-telegram-bot's `Application`, run inside easel's own event loop.

`run_polling` owns its loop and its signals, so the lifecycle is spelled out here instead, in the kit's three
steps (`bots.kit.lifetime`): `run` signs in (getMe) and polls or serves a webhook; `stop_receiving` stops the
updater and lets the updates already taken be handled; `close` shuts the bot's connections down.
"""

from __future__ import annotations

import asyncio
import logging

from telegram import BotCommandScopeAllChatAdministrators, Update
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationBuilder

from bots.config import TelegramSettings
from bots.core.facade import Core
from bots.telegram.admins import Admins
from bots.telegram.chat import PLATFORM
from bots.telegram.commands import menus
from bots.telegram.delivery import Delivery
from bots.telegram.downloads import Downloads
from bots.telegram.handlers import Handlers
from bots.texts import SOURCE_LANGUAGE, available_languages

log = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]


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
        self.application = build_application(settings, token)
        bot = self.application.bot
        self.delivery = Delivery(core, bot, settings)
        self.handlers = Handlers(core, settings, Downloads(bot, settings), Admins(bot, admin_cache_seconds))

    def register(self) -> None:
        self.core.listen(PLATFORM, self.delivery.on_event)
        self.handlers.install(self.application)

    async def run(self) -> None:
        """Sign in and take updates until cancelled."""
        application = self.application
        await application.initialize()
        log.info("telegram: signed in as @%s", application.bot.username)
        await self._publish_commands()
        await application.start()
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
            )
        else:
            await updater.start_polling(allowed_updates=ALLOWED_UPDATES)
        await asyncio.Event().wait()

    async def stop_receiving(self) -> None:
        """The updater stops (a poller in its retry backoff is cancelled by the kit); the application's stop waits
        for the updates already taken to be handled."""
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


def build_application(settings: TelegramSettings, token: str) -> Application:  # type: ignore[type-arg]
    """Updates are handled concurrently: a slow download for one user never holds up another's message."""
    return (
        ApplicationBuilder()
        .token(token)
        .base_url(settings.api_base_url)
        .base_file_url(settings.file_base_url)
        .local_mode(settings.local_mode)
        .concurrent_updates(True)
        .build()
    )
