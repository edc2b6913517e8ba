"""The Discord adapter: discord.py's client wired to the core, with an explicit lifetime.

`register` hands the core its listener; `run` connects and serves until cancelled; `stop_receiving` leaves the
gateway, so no interaction arrives any more while REST stays open for the results still to deliver; `close` closes
the client (the kit's three steps, `bots.kit.lifetime`). The message-content intent is asked for so that replies to
the bot's images can edit them; when the bot's owner has not enabled it, the adapter connects again without it, and
the "Edit image" menu still works.
"""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands

from bots.config import Settings
from bots.core.facade import Core
from bots.discord.buttons import Buttons
from bots.discord.commands import Handlers, add_commands, sync_commands
from bots.discord.delivery import Delivery
from bots.discord.endpoints import point_at
from bots.discord.images import Images
from bots.discord.interactions import PLATFORM, on_command_error
from bots.discord.lookups import Lookups
from bots.discord.moderation import ModerationActions
from bots.discord.status import StatusBoard
from bots.discord.views import JobButton

log = logging.getLogger(__name__)


def intents(*, message_content: bool) -> discord.Intents:
    chosen = discord.Intents.none()
    chosen.guilds = True
    chosen.guild_messages = True
    chosen.dm_messages = True
    chosen.message_content = message_content
    return chosen


class EaselClient(discord.Client):
    """Mentions are off unless a message names them: a prompt that says @everyone notifies nobody."""

    def __init__(self, settings: Settings, handlers: Handlers, delivery: Delivery, **options: Any) -> None:
        super().__init__(allowed_mentions=discord.AllowedMentions.none(), **options)
        self.settings = settings
        self.handlers = handlers
        self.delivery = delivery
        self.tree: app_commands.CommandTree[EaselClient] = app_commands.CommandTree(self)
        self.tree.error(on_command_error)
        add_commands(self.tree, settings)

    async def setup_hook(self) -> None:
        self.add_dynamic_items(JobButton)
        if self.settings.discord.sync_commands:
            names = await sync_commands(self.tree, self.settings)
            log.info("discord: synced %d application commands", len(names))

    async def on_ready(self) -> None:
        log.info("discord: connected as %s (id %s)", self.user, self.user.id if self.user else "?")
        self.delivery.ready.set()

    async def on_message(self, message: discord.Message) -> None:
        try:
            await self.handlers.buttons.reply_edit(message)
        except Exception:
            log.exception("handling message %s failed", message.id)


class DiscordAdapter:
    name = PLATFORM

    def __init__(self, core: Core, settings: Settings, token: str, *, guild_ready_timeout: float = 2.0) -> None:
        """`settings` whole: the adapter reads its own section, the limits and defaults its commands offer, and
        the moderator role."""
        self.core = core
        self.settings = settings
        self._token = token
        self._guild_ready_timeout = guild_ready_timeout
        self.board = StatusBoard(settings.discord.progress_interval_seconds)
        moderator_role = settings.moderation.moderator_role
        images = Images(core, settings, self.board)
        lookups = Lookups(core, moderator_role)
        buttons = Buttons(core, settings.limits.max_prompt_length, images, lookups)
        self.handlers = Handlers(images, buttons, lookups, ModerationActions(core, moderator_role))
        self.delivery = Delivery(core, self.board)
        self.client: EaselClient | None = None

    def register(self) -> None:
        self.core.listen(PLATFORM, self.delivery.on_event)

    async def run(self) -> None:
        point_at(self.settings.discord)
        try:
            await self._serve(message_content=True)
        except discord.PrivilegedIntentsRequired:
            log.warning(
                "discord: the message content intent is not enabled for this bot, so replies to its images "
                "cannot edit them; the Edit image menu still can. Enable it in the developer portal to allow both."
            )
            await self.close()
            await self._serve(message_content=False)

    async def _serve(self, *, message_content: bool) -> None:
        client = EaselClient(
            self.settings,
            self.handlers,
            self.delivery,
            intents=intents(message_content=message_content),
            guild_ready_timeout=self._guild_ready_timeout,
        )
        self.client = client
        self.delivery.attach(client)
        await client.start(self._token)

    async def stop_receiving(self) -> None:
        """The gateway is left; interactions already received finish on their own tasks."""
        client = self.client
        if client is not None and client.ws is not None and client.ws.open:
            await client.ws.close(code=1000)

    async def close(self) -> None:
        self.delivery.ready.clear()
        await self.board.close()
        if self.client is not None:
            await self.client.close()


async def sync_once(settings: Settings, token: str) -> list[str]:
    """`easel discord sync`: log in over REST only, upload the command definitions, and close."""
    point_at(settings.discord)
    client = discord.Client(intents=intents(message_content=False))
    tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(client)
    add_commands(tree, settings)
    async with client:
        await client.login(token)
        return await sync_commands(tree, settings)
