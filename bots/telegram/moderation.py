"""Moderation commands in Telegram groups: read here, decided by the core.

The adapter reports only what Telegram knows (the group, whether the sender administers it, whom a reply
points at) and the core checks the role for every command, whatever menu a member sees. Each command
except /delete and /modhelp first asks the core for the moderated community, so that a member who may not
moderate is refused with the core's message before any usage hint.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from telegram import Bot, Message
from telegram.error import TelegramError

from bots.core.facade import Core
from bots.core.types import ShownMessage, short_id
from bots.errors import UserError
from bots.kit.context import Context
from bots.moderation.matching import BannedPattern
from bots.moderation.policy import LIMIT_KEYS, NSFW_POLICIES, LogEntry, Moderator
from bots.parsing import parse_duration
from bots.telegram.admins import Admins
from bots.telegram.chat import CAPTION_LIMIT, PLATFORM, cut, reply, reply_list, shown_job
from bots.telegram.commands import Handler

log = logging.getLogger(__name__)

LOG_ENTRIES = 20
LOG_LINE_LIMIT = 300
_REGEX_FLAG = re.compile(r"(?:^|\s)--regex(?=\s|$)")
_NEGATIVE_FLAG = re.compile(r"(?:^|\s)(?:--|—|–)neg(?:ative)?(?=\s|$)", re.IGNORECASE)
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


class ModerationCommands:
    def __init__(self, core: Core, admins: Admins) -> None:
        self.core = core
        self.admins = admins

    def handlers(self) -> dict[str, Handler]:
        """Keyed by the catalogue's names."""
        return {
            "mod.help": self._help,
            "mod.banword.add": self._banword,
            "mod.banword.remove": self._unbanword,
            "mod.banword.list": self._banwords,
            "mod.ban": self._ban,
            "mod.unban": self._unban,
            "mod.nsfw": self._nsfw,
            "mod.limits": self._limits,
            "mod.log": self._log,
            "mod.export": self._export,
            "mod.delete": self._delete,
            "mod.purge": self._purge,
            "mod.tier": self._tier,
            "mod.style.add": self._addstyle,
            "mod.style.remove": self._removestyle,
            "mod.negative": self._negative,
        }

    # --- commands ----------------------------------------------------------------------------

    async def _help(self, context: Context, message: Message, rest: str) -> None:
        await reply(message, context.text("telegram.mod.help"))

    async def _banword(self, context: Context, message: Message, rest: str) -> None:
        """`/banword phrase`, or `/banword --regex expression`; the core validates the expression."""
        moderator = await self._gate(context)
        pattern, flagged = _REGEX_FLAG.subn(" ", rest)
        if not pattern.strip():
            raise UserError("telegram.mod.word_usage")
        words = await self.core.moderation.add_word(moderator, pattern.strip(), regex=bool(flagged))
        await reply(message, context.text("telegram.mod.word_added", pattern=pattern.strip(), count=len(words)))

    async def _unbanword(self, context: Context, message: Message, rest: str) -> None:
        moderator = await self._gate(context)
        if not rest.strip():
            raise UserError("telegram.mod.word_usage")
        await self.core.moderation.remove_word(moderator, rest.strip())
        await reply(message, context.text("telegram.mod.word_removed", pattern=rest.strip()))

    async def _banwords(self, context: Context, message: Message, rest: str) -> None:
        words = await self.core.moderation.words(await self._gate(context))
        if not words:
            await reply(message, context.text("telegram.mod.words_empty"))
            return
        listed = "\n".join(_word_line(word, context) for word in words)
        await reply_list(message, context.text("telegram.mod.words", words=listed), "banned-words")

    async def _ban(self, context: Context, message: Message, rest: str) -> None:
        """`/ban [user id] [duration] [reason] [--global]`, or in reply to the user's message."""
        moderator = await self._gate(context)
        words, everywhere = _flag(rest.split(), "--global")
        user_id, name, words = _target(message, words, "/ban")
        until = None
        length = parse_duration(words[0]) if words else None
        if length is not None:
            until = datetime.now(UTC) + length
            words = words[1:]
        reason = " ".join(words)
        await self.core.moderation.ban(moderator, user_id, until, reason, everywhere=everywhere)
        ending = (
            context.text("telegram.mod.until", until=f"{until:%Y-%m-%d %H:%M}")
            if until is not None
            else context.text("telegram.mod.permanently")
        )
        where = _where(everywhere, context)
        await reply(
            message, context.text("telegram.mod.banned", user=name, where=where, until=ending, reason=reason or "-")
        )

    async def _unban(self, context: Context, message: Message, rest: str) -> None:
        moderator = await self._gate(context)
        words, everywhere = _flag(rest.split(), "--global")
        user_id, name, _ = _target(message, words, "/unban")
        await self.core.moderation.unban(moderator, user_id, everywhere=everywhere)
        await reply(message, context.text("telegram.mod.unbanned", user=name, where=_where(everywhere, context)))

    async def _nsfw(self, context: Context, message: Message, rest: str) -> None:
        """`/nsfw` shows the group's policy, `/nsfw spoiler` sets it."""
        moderator = await self.admins.moderator(context)
        community = await self.core.moderation.community_of(moderator)  # the gate, and the group it shows
        policy = rest.strip().lower()
        if not policy:
            current = self.core.moderation.policy.nsfw_policy(community)
            allowed = ", ".join(NSFW_POLICIES)
            await reply(message, context.text("telegram.mod.nsfw_show", policy=current, allowed=allowed))
            return
        await self.core.moderation.set_nsfw(moderator, policy)
        await reply(message, context.text("telegram.mod.nsfw_set", policy=policy))

    async def _addstyle(self, context: Context, message: Message, rest: str) -> None:
        """`/addstyle NAME TEMPLATE [--neg NEGATIVE]`: the template holds {prompt} where the prompt goes."""
        moderator = await self._gate(context)
        template, *negative = _NEGATIVE_FLAG.split(rest, maxsplit=1)
        name, _, prompt = template.strip().partition(" ")
        if not name or not prompt.strip():
            raise UserError("telegram.mod.style_usage")
        style = await self.core.moderation.add_style(moderator, name, prompt, "".join(negative))
        await reply(message, context.text("moderation.style_added", name=style.name, prompt=style.prompt))

    async def _removestyle(self, context: Context, message: Message, rest: str) -> None:
        moderator = await self._gate(context)
        if not rest.strip():
            raise UserError("telegram.mod.style_usage")
        removed = await self.core.moderation.remove_style(moderator, rest)
        await reply(message, context.text("moderation.style_removed", name=removed))

    async def _negative(self, context: Context, message: Message, rest: str) -> None:
        """`/negative` shows the group's negative prompt, `/negative TEXT` sets it, `/negative clear` clears it."""
        moderator = await self._gate(context)
        if not rest.strip():
            current = (await self.core.styles(context.place)).negative
            key = "styles.community_negative" if current else "moderation.negative_cleared"
            await reply(message, context.text(key, negative=current))
            return
        negative = await self.core.moderation.set_negative(moderator, "" if rest.strip().lower() == "clear" else rest)
        key = "moderation.negative_set" if negative else "moderation.negative_cleared"
        await reply(message, context.text(key, negative=negative))

    async def _limits(self, context: Context, message: Message, rest: str) -> None:
        """`/limits` shows the group's own limits; `--images-per-day 20 --max-size 768x768 --max-steps 40`
        sets them, `none` removes one."""
        moderator = await self.admins.moderator(context)
        community = await self.core.moderation.community_of(moderator)  # the gate, and the group it shows
        if rest.strip():
            limits = await self.core.moderation.set_limits(moderator, _limit_changes(rest.split()))
        else:
            limits = self.core.moderation.limits_for(community)
        if not limits:
            await reply(message, context.text("telegram.mod.limits_none"))
            return
        shown = ", ".join(f"{_LIMIT_NAMES.get(key, key)} {limits[key]}" for key in LIMIT_KEYS if key in limits)
        await reply(message, context.text("telegram.mod.limits", limits=shown))

    async def _log(self, context: Context, message: Message, rest: str) -> None:
        """The last entries as text."""
        entries = await self.core.moderation.log(await self._gate(context), LOG_ENTRIES)
        if not entries:
            await reply(message, context.text("telegram.mod.log_empty"))
            return
        lines = [context.text("telegram.mod.log_title", count=len(entries))]
        lines += [_log_line(entry, context) for entry in entries]
        await reply_list(message, "\n".join(lines), "moderation-log")

    async def _export(self, context: Context, message: Message, rest: str) -> None:
        """The whole log as a CSV file."""
        data = await self.core.moderation.log_csv(await self._gate(context))
        caption = cut(context.text("telegram.mod.log_csv"), CAPTION_LIMIT)
        await message.reply_document(data, filename=f"modlog-{message.chat_id}.csv", caption=caption)

    async def _delete(self, context: Context, message: Message, rest: str) -> None:
        """In reply to one of the bot's messages about a job: the job's owner deletes their own, a moderator
        any in their group (the core decides which)."""
        shown = await shown_job(self.core, message.reply_to_message, message.get_bot().id)
        if shown is None:
            raise UserError("telegram.mod.delete_usage")
        moderator = await self.admins.moderator(context)
        links = await self.core.delete(context.actor, shown.job_id, moderator)
        await _remove(message.get_bot(), links)
        await reply(message, context.text("telegram.mod.deleted", job_id=short_id(shown.job_id)))

    async def _purge(self, context: Context, message: Message, rest: str) -> None:
        moderator = await self._gate(context)
        user_id, name, _ = _target(message, rest.split(), "/purge")
        removed = await _remove(message.get_bot(), await self.core.purge(moderator, user_id))
        await reply(message, context.text("telegram.mod.purged", user=name, count=removed))

    # --- helpers -----------------------------------------------------------------------------

    async def _tier(self, context: Context, message: Message, rest: str) -> None:
        """`/tier` in reply to a user's message or with their id, then a tier's name (owners only, also in a
        private chat); without a name it shows theirs."""
        moderator = await self.admins.moderator(context)
        user_id, name, words = _target(message, rest.split(), "/tier")
        if not words:
            tier = await self.core.moderation.tier(moderator, user_id)
            await reply(message, context.text("telegram.mod.tier_show", user=name, tier=tier))
            return
        before = await self.core.moderation.set_tier(moderator, user_id, words[0])
        await reply(message, context.text("telegram.mod.tier_set", user=name, tier=words[0], before=before))

    async def _gate(self, context: Context) -> Moderator:
        """The sender as Telegram knows them, once the core lets them moderate this group."""
        moderator = await self.admins.moderator(context)
        await self.core.moderation.community_of(moderator)
        return moderator


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


async def _remove(bot: Bot, links: Iterable[ShownMessage]) -> int:
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


def _word_line(word: BannedPattern, context: Context) -> str:
    return context.text("telegram.mod.regex_line", pattern=word.text) if word.regex else f"• {word.text}"


def _where(everywhere: bool, context: Context) -> str:
    return context.text("telegram.mod.everywhere" if everywhere else "telegram.mod.here")


def _log_line(entry: LogEntry, context: Context) -> str:
    details = ", ".join(f"{key}={value}" for key, value in sorted(entry.details.items()))
    line = context.text(
        "telegram.mod.log_line",
        time=f"{entry.created_at:%Y-%m-%d %H:%M}",
        action=entry.action,
        target=entry.target,
        actor=entry.actor or "easel",
        note="; ".join(part for part in (entry.reason or "", details) if part) or "-",
    )
    return cut(line, LOG_LINE_LIMIT)
