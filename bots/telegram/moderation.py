"""Moderation commands in Telegram groups: read here, decided by the core.

The adapter reports only what Telegram knows (the group, whether the sender administers it, whom a reply
points at) and the core checks the role for every command, whatever menu a member sees. Each command
except /delete and /modhelp first asks the core for the moderated community, so that a member who may not
moderate is refused with the core's message before any usage hint.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime

from telegram import Bot, Message
from telegram.error import TelegramError

from bots.core.facade import Core
from bots.core.types import Actor, short_id
from bots.errors import UserError
from bots.moderation.matching import BannedPattern
from bots.moderation.policy import LIMIT_KEYS, NSFW_POLICIES, LogEntry, Moderator
from bots.parsing import parse_duration
from bots.telegram.admins import Admins
from bots.telegram.delivery import PLATFORM
from bots.texts import render
from storage.records import Community, MessageLink

log = logging.getLogger(__name__)

MODERATION_COMMANDS = (
    "modhelp",
    "banword",
    "unbanword",
    "banwords",
    "ban",
    "unban",
    "nsfw",
    "limits",
    "modlog",
    "delete",
    "purge",
)
LOG_ENTRIES = 20
LOG_LINE_LIMIT = 300
MESSAGE_LIMIT = 4096
_REGEX_FLAG = re.compile(r"(?:^|\s)--regex(?=\s|$)")
_SIZE = re.compile(r"^([0-9]{1,6})x([0-9]{1,6})$")
_LIMIT_OPTIONS: Mapping[str, tuple[str, ...]] = {
    "--images-per-day": ("images_per_day",),
    "--max-size": ("max_width", "max_height"),
    "--max-width": ("max_width",),
    "--max-height": ("max_height",),
    "--max-steps": ("max_steps",),
}
_LIMIT_NAMES = {
    "images_per_day": "--images-per-day",
    "max_width": "--max-width",
    "max_height": "--max-height",
    "max_steps": "--max-steps",
}

Reply = Callable[[Message, str], Awaitable[None]]
Command = Callable[[Message, str], Awaitable[None]]


class ModerationCommands:
    def __init__(self, service: Core, admins: Admins, reply: Reply) -> None:
        self.service = service
        self.admins = admins
        self.reply = reply

    def commands(self) -> dict[str, Command]:
        return {
            "modhelp": self._help,
            "banword": self._banword,
            "unbanword": self._unbanword,
            "banwords": self._banwords,
            "ban": self._ban,
            "unban": self._unban,
            "nsfw": self._nsfw,
            "limits": self._limits,
            "modlog": self._modlog,
            "delete": self._delete,
            "purge": self._purge,
        }

    # --- commands ----------------------------------------------------------------------------

    async def _help(self, message: Message, rest: str) -> None:
        await self.reply(message, render("telegram.mod.help", _language(message)))

    async def _banword(self, message: Message, rest: str) -> None:
        """`/banword phrase`, or `/banword --regex expression`; the core validates the expression."""
        moderator, _ = await self._gate(message)
        pattern, flagged = _REGEX_FLAG.subn(" ", rest)
        if not pattern.strip():
            raise UserError("telegram.mod.word_usage")
        words = await self.service.moderation.add_word(moderator, pattern.strip(), regex=bool(flagged))
        text = render("telegram.mod.word_added", _language(message), pattern=pattern.strip(), count=len(words))
        await self.reply(message, text)

    async def _unbanword(self, message: Message, rest: str) -> None:
        moderator, _ = await self._gate(message)
        if not rest.strip():
            raise UserError("telegram.mod.word_usage")
        await self.service.moderation.remove_word(moderator, rest.strip())
        await self.reply(message, render("telegram.mod.word_removed", _language(message), pattern=rest.strip()))

    async def _banwords(self, message: Message, rest: str) -> None:
        moderator, _ = await self._gate(message)
        language = _language(message)
        words = await self.service.moderation.words(moderator)
        if not words:
            await self.reply(message, render("telegram.mod.words_empty", language))
            return
        listed = "\n".join(_word_line(word, language) for word in words)
        await self.reply(message, _cut(render("telegram.mod.words", language, words=listed)))

    async def _ban(self, message: Message, rest: str) -> None:
        """`/ban [user id] [duration] [reason] [--global]`, or in reply to the user's message."""
        moderator, _ = await self._gate(message)
        language = _language(message)
        words, everywhere = _flag(rest.split(), "--global")
        user_id, name, words = _target(message, words, "/ban")
        until = None
        length = parse_duration(words[0]) if words else None
        if length is not None:
            until = datetime.now(UTC) + length
            words = words[1:]
        reason = " ".join(words)
        await self.service.moderation.ban(moderator, user_id, until, reason, everywhere=everywhere)
        ending = (
            render("telegram.mod.until", language, until=f"{until:%Y-%m-%d %H:%M}")
            if until is not None
            else render("telegram.mod.permanently", language)
        )
        text = render(
            "telegram.mod.banned",
            language,
            user=name,
            where=_where(everywhere, language),
            until=ending,
            reason=reason or "-",
        )
        await self.reply(message, text)

    async def _unban(self, message: Message, rest: str) -> None:
        moderator, _ = await self._gate(message)
        words, everywhere = _flag(rest.split(), "--global")
        user_id, name, _ = _target(message, words, "/unban")
        await self.service.moderation.unban(moderator, user_id, everywhere=everywhere)
        language = _language(message)
        await self.reply(
            message, render("telegram.mod.unbanned", language, user=name, where=_where(everywhere, language))
        )

    async def _nsfw(self, message: Message, rest: str) -> None:
        """`/nsfw` shows the group's policy, `/nsfw spoiler` sets it."""
        moderator, community = await self._gate(message)
        language = _language(message)
        allowed = ", ".join(NSFW_POLICIES)
        policy = rest.strip().lower()
        if not policy:
            current = self.service.moderation.policy.nsfw_policy(community)
            await self.reply(message, render("telegram.mod.nsfw_show", language, policy=current, allowed=allowed))
            return
        await self.service.moderation.set_nsfw(moderator, policy)
        await self.reply(message, render("telegram.mod.nsfw_set", language, policy=policy))

    async def _limits(self, message: Message, rest: str) -> None:
        """`/limits` shows the group's own limits; `--images-per-day 20 --max-size 768x768 --max-steps 40`
        sets them, `none` removes one."""
        moderator, community = await self._gate(message)
        language = _language(message)
        if rest.strip():
            limits = await self.service.moderation.set_limits(moderator, _limit_changes(rest.split()))
        else:
            limits = self.service.moderation.limits_for(community)
        if not limits:
            await self.reply(message, render("telegram.mod.limits_none", language))
            return
        shown = ", ".join(f"{_LIMIT_NAMES.get(key, key)} {limits[key]}" for key in LIMIT_KEYS if key in limits)
        await self.reply(message, render("telegram.mod.limits", language, limits=shown))

    async def _modlog(self, message: Message, rest: str) -> None:
        """The last entries as text, or with `csv` the whole log as a file."""
        moderator, _ = await self._gate(message)
        language = _language(message)
        if rest.strip().lower() == "csv":
            data = await self.service.moderation.log_csv(moderator)
            caption = render("telegram.mod.log_csv", language)
            await message.reply_document(data, filename=f"modlog-{message.chat_id}.csv", caption=caption)
            return
        entries = await self.service.moderation.log(moderator, LOG_ENTRIES)
        if not entries:
            await self.reply(message, render("telegram.mod.log_empty", language))
            return
        lines = [render("telegram.mod.log_title", language, count=len(entries))]
        lines += [_log_line(entry, language) for entry in entries]
        await self.reply(message, _cut("\n".join(lines)))

    async def _delete(self, message: Message, rest: str) -> None:
        """In reply to one of the bot's messages about a job: the job's owner deletes their own, a moderator
        any in their group (the core decides which)."""
        link = await self._shown_job(message)
        if link is None:
            raise UserError("telegram.mod.delete_usage")
        assert message.from_user is not None
        moderator = await self.admins.moderator(message.chat, message.from_user)
        actor = Actor(PLATFORM, moderator.user_id, moderator.display_name, _language(message))
        links = await self.service.delete(actor, link.job_id, moderator)
        await _remove(message.get_bot(), links)
        await self.reply(message, render("telegram.mod.deleted", _language(message), job_id=short_id(link.job_id)))

    async def _purge(self, message: Message, rest: str) -> None:
        moderator, _ = await self._gate(message)
        user_id, name, _ = _target(message, rest.split(), "/purge")
        links = await self.service.purge(moderator, user_id)
        removed = await _remove(message.get_bot(), links)
        await self.reply(message, render("telegram.mod.purged", _language(message), user=name, count=removed))

    # --- helpers -----------------------------------------------------------------------------

    async def _gate(self, message: Message) -> tuple[Moderator, Community]:
        """The sender as Telegram knows them, once the core lets them moderate this group."""
        assert message.from_user is not None
        moderator = await self.admins.moderator(message.chat, message.from_user)
        return moderator, await self.service.moderation.community_of(moderator)

    async def _shown_job(self, message: Message) -> MessageLink | None:
        """The job that the bot message `message` replies to shows, if it is one."""
        reply = message.reply_to_message
        if reply is None or reply.from_user is None or reply.from_user.id != message.get_bot().id:
            return None
        return await self.service.job_of_message(PLATFORM, str(reply.chat_id), str(reply.message_id))


def _target(message: Message, words: list[str], command: str) -> tuple[str, str, list[str]]:
    """Whom a command names: a numeric user id first, else the sender of the replied-to message (not a bot,
    and not the topic opener that every message of a forum topic replies to); and the words left."""
    if words and words[0].isdigit():
        return words[0], words[0], words[1:]
    reply = message.reply_to_message
    opener = reply is not None and reply.forum_topic_created is not None
    if reply is not None and not opener and reply.from_user is not None and not reply.from_user.is_bot:
        return str(reply.from_user.id), reply.from_user.full_name, words
    raise UserError("telegram.mod.target_usage", command=command)


def _flag(words: list[str], flag: str) -> tuple[list[str], bool]:
    kept = [word for word in words if word.lower() != flag]
    return kept, len(kept) != len(words)


def _limit_changes(words: list[str]) -> dict[str, int | None]:
    """`--option value` pairs as the core's limit names; `none` removes a limit."""
    if len(words) % 2:
        raise UserError("telegram.mod.limits_usage", value=words[-1])
    changes: dict[str, int | None] = {}
    for option, value in zip(words[::2], words[1::2], strict=True):
        keys = _LIMIT_OPTIONS.get(option.lower())
        if keys is None:
            raise UserError("telegram.mod.limits_usage", value=option)
        size = _SIZE.match(value.lower())
        if value.lower() == "none":
            values: Iterable[int | None] = [None] * len(keys)
        elif len(keys) == 2 and size is not None:
            values = [int(size.group(1)), int(size.group(2))]
        elif len(keys) == 1 and value.isdigit() and len(value) <= 6:
            values = [int(value)]
        else:
            raise UserError("telegram.mod.limits_usage", value=value)
        changes.update(zip(keys, values, strict=True))
    return changes


async def _remove(bot: Bot, links: Iterable[MessageLink]) -> int:
    """Delete the bot's messages that showed deleted images; returns how many went. Telegram refuses some
    (older than 48 hours, a status message already gone): those are logged, the images are gone anyway."""
    removed = 0
    for link in links:
        if link.platform != PLATFORM:
            continue
        try:
            await bot.delete_message(int(link.chat_id), int(link.message_id))
        except TelegramError as error:
            log.info("message %s in chat %s could not be deleted: %r", link.message_id, link.chat_id, error)
        else:
            removed += 1
    return removed


def _word_line(word: BannedPattern, language: str | None) -> str:
    return render("telegram.mod.regex_line", language, pattern=word.text) if word.regex else f"• {word.text}"


def _where(everywhere: bool, language: str | None) -> str:
    return render("telegram.mod.everywhere", language) if everywhere else render("telegram.mod.here", language)


def _log_line(entry: LogEntry, language: str | None) -> str:
    details = ", ".join(f"{key}={value}" for key, value in sorted(entry.details.items()))
    line = render(
        "telegram.mod.log_line",
        language,
        time=f"{entry.created_at:%Y-%m-%d %H:%M}",
        action=entry.action,
        target=entry.target,
        actor=entry.actor or "easel",
        note="; ".join(part for part in (entry.reason or "", details) if part) or "-",
    )
    return line if len(line) <= LOG_LINE_LIMIT else line[: LOG_LINE_LIMIT - 1] + "…"


def _cut(text: str) -> str:
    """Telegram takes 4096 characters in a message."""
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def _language(message: Message) -> str | None:
    return message.from_user.language_code if message.from_user else None
