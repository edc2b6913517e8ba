"""Who administers a Telegram group, as Telegram says, for the core to decide what they may do.

Telegram is asked once per chat and the answer trusted for `admin_cache_seconds`: moderation commands,
/cancel and the Cancel button all need it, and asking on every one would run into Telegram's rate limits.
A chat whose administrators cannot be read (the bot was removed, Telegram is down) has none: moderation
fails closed.
"""

from __future__ import annotations

import asyncio
import logging
import time

from telegram import Bot, ChatMemberAdministrator, ChatMemberOwner
from telegram.error import TelegramError

from bots.kit.context import Context
from bots.moderation.policy import Moderator, Role
from bots.telegram.chat import PLATFORM

log = logging.getLogger(__name__)


class Admins:
    def __init__(self, bot: Bot, cache_seconds: float) -> None:
        self.bot = bot
        self.cache_seconds = cache_seconds
        self._known: dict[int, tuple[float, frozenset[int]]] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    async def moderator(self, context: Context) -> Moderator:
        """The platform's facts about who acts: their group (none in a private chat), and whether they are one
        of its administrators (creator included)."""
        actor, group = context.actor, context.place.community_id
        if group is None:
            return Moderator(PLATFORM, actor.user_id, None, Role.USER, actor.display_name)
        role = Role.ADMIN if int(actor.user_id) in await self._ids(int(group)) else Role.USER
        return Moderator(PLATFORM, actor.user_id, group, role, actor.display_name)

    async def _ids(self, chat_id: int) -> frozenset[int]:
        """The chat's administrators, asked once per chat at a time (a burst of commands makes one call)."""
        async with self._locks.setdefault(chat_id, asyncio.Lock()):
            known = self._known.get(chat_id)
            if known is not None and time.monotonic() - known[0] < self.cache_seconds:
                return known[1]
            try:
                members = await self.bot.get_chat_administrators(chat_id)
            except TelegramError as error:
                log.warning("telegram: the administrators of chat %s could not be read: %r", chat_id, error)
                return frozenset()
            ids = frozenset(
                member.user.id for member in members if isinstance(member, ChatMemberAdministrator | ChatMemberOwner)
            )
            self._known[chat_id] = (time.monotonic(), ids)
            return ids
