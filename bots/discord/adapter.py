"""The Discord adapter: discord.py's client wired to the core, with an explicit lifetime.

`register` hands the core its listener; `run` connects and serves until cancelled; `stop_receiving` leaves the
gateway, so no interaction arrives any more while REST stays open for the results still to deliver, and lets what
was taken be handled; `close` closes the client (the kit's three steps, `bots.kit.lifetime`). The message-content
intent is asked for so that replies to the bot's images can edit them; when the bot's owner has not enabled it,
the adapter connects again without it, and the "Edit image" menu still works. What the gateway hands over is
recorded before it is acknowledged, and what an earlier process recorded and never finished is handled again on
the first READY (`intake`).

discord.py waits out 429s and reconnects a lost gateway connection itself, but not a first connection that
fails: signing in and reaching the gateway are tried again through the kit's `Link` until Discord answers.
discord.py tells of a lost connection only in its log, with a traceback at every try; those records become the
link's one warning per outage, and the connection's return (READY or RESUMED) its one line and the core's
redelivery.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

import aiohttp
import discord
from discord import app_commands

from bots.config import Settings
from bots.core.facade import Core
from bots.discord.buttons import Buttons
from bots.discord.commands import add_commands, sync_commands
from bots.discord.delivery import Delivery
from bots.discord.endpoints import point_at
from bots.discord.handlers import Handlers
from bots.discord.images import Images
from bots.discord.intake import Intake
from bots.discord.interactions import PLATFORM, on_command_error
from bots.discord.lookups import Lookups
from bots.discord.moderation import ModerationActions
from bots.discord.status import StatusBoard
from bots.discord.views import JobButton
from bots.kit.lifetime import started
from bots.kit.outage import Link

log = logging.getLogger(__name__)

RECONNECT_LOG = "Attempting a reconnect in %.2fs"
"""What discord.py's `Client.connect` logs, with the error, each time a lost gateway connection is tried again."""


def intents(*, message_content: bool) -> discord.Intents:
    chosen = discord.Intents.none()
    chosen.guilds = True
    chosen.guild_messages = True
    chosen.dm_messages = True
    chosen.message_content = message_content
    return chosen


class EaselClient(discord.Client):
    """Mentions are off unless a message names them: a prompt that says @everyone notifies nobody."""

    def __init__(
        self,
        settings: Settings,
        handlers: Handlers,
        delivery: Delivery,
        link: Link,
        intake: Intake,
        **options: Any,
    ) -> None:
        super().__init__(allowed_mentions=discord.AllowedMentions.none(), **options)
        self.settings = settings
        self.handlers = handlers
        self.delivery = delivery
        self.link = link
        self.intake = intake
        self._connected_before = False
        intake.attach(self)
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
        if not self._connected_before:
            self._connected_before = True
            started(PLATFORM)
        self.delivery.ready.set()
        self.link.answered()
        await self.intake.replay(self.handlers.buttons.form)

    async def on_resumed(self) -> None:
        self.link.answered()

    async def on_message(self, message: discord.Message) -> None:
        try:
            await self.handlers.buttons.reply_edit(message, self.intake)
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
        self.intake = Intake(core)
        self.client: EaselClient | None = None
        self.link = Link(
            PLATFORM,
            first=settings.discord.reconnect_first_seconds,
            longest=settings.discord.reconnect_longest_seconds,
            is_outage=unreachable,
            on_back=partial(core.redeliver, PLATFORM),
            counted=core.metrics.platform_error,
        )

    def register(self) -> None:
        self.core.listen(PLATFORM, self.delivery.on_event)

    async def run(self) -> None:
        point_at(self.settings.discord)
        lost = _LostConnections(self.link)
        logging.getLogger("discord.client").addFilter(lost)
        try:
            await self._serve(message_content=True)
        except discord.PrivilegedIntentsRequired:
            log.warning(
                "discord: the message content intent is not enabled for this bot, so replies to its images "
                "cannot edit them; the Edit image menu still can. Enable it in the developer portal to allow both."
            )
            await self.close()
            await self._serve(message_content=False)
        finally:
            logging.getLogger("discord.client").removeFilter(lost)
            await self.link.close()

    async def _serve(self, *, message_content: bool) -> None:
        client = await self.link.patiently(partial(self._reach, message_content))
        self.client = client
        self.delivery.attach(client)
        await client.connect()

    async def stop_receiving(self) -> None:
        """The gateway is left, and what was already taken is handled to its end (the kit bounds the wait)."""
        client = self.client
        if client is not None and client.ws is not None and client.ws.open:
            await client.ws.close(code=1000)
        await self.intake.settle()

    async def close(self) -> None:
        self.delivery.ready.clear()
        await self.board.close()
        if self.client is not None:
            await self.client.close()

    async def _reach(self, message_content: bool) -> EaselClient:
        """A client signed in, once the gateway answers too (discord.py does not try a failed first connection
        again); a new client for each try, since a failed one cannot sign in again."""
        client = EaselClient(
            self.settings,
            self.handlers,
            self.delivery,
            self.link,
            self.intake,
            intents=intents(message_content=message_content),
            guild_ready_timeout=self._guild_ready_timeout,
        )
        try:
            await client.login(self._token)
            socket = await client.http.ws_connect(self.settings.discord.gateway_url)
            await socket.close()
        except BaseException:
            await client.close()
            raise
        return client


def unreachable(error: BaseException) -> bool:
    """A network error or Discord's own 5xx: Discord cannot be reached now (a refused token is not that)."""
    network = (OSError, aiohttp.ClientError, asyncio.TimeoutError, discord.GatewayNotFound, discord.DiscordServerError)
    return isinstance(error, network)


class _LostConnections(logging.Filter):
    """discord.py's record of each try to reconnect a lost gateway connection, with its traceback, becomes the
    link's one warning for the whole outage."""

    def __init__(self, link: Link) -> None:
        super().__init__()
        self.link = link

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != RECONNECT_LOG or record.exc_info is None or record.exc_info[1] is None:
            return True
        self.link.lost(record.exc_info[1])
        return False


async def sync_once(settings: Settings, token: str) -> list[str]:
    """`easel discord sync`: log in over REST only, upload the command definitions, and close."""
    point_at(settings.discord)
    client = discord.Client(intents=intents(message_content=False))
    tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(client)
    add_commands(tree, settings)
    async with client:
        await client.login(token)
        return await sync_commands(tree, settings)
