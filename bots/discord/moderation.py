"""The /mod commands: what a member asks, with what Discord says of them, handed to the core.

Discord hides /mod from members without Manage Server, but anyone can still send it: the core checks the role
on every call, and its refusals end at the adapter's one error boundary. Every answer is ephemeral.
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import discord

from bots.core.facade import Core
from bots.discord.interactions import Reply, answer, delete_messages, listed, moderator_of, option
from bots.errors import UserError
from bots.moderation.policy import LIMIT_KEYS, LogEntry, Moderator
from bots.parsing import parse_duration
from bots.texts import render

LOG_LIMIT = 20
EXPORT_NAME = "moderation-log.csv"
SIZE_LIMITS = ("max_width", "max_height")

ModerationCall = Callable[[Moderator, str | None], Awaitable[str | Reply]]


class ModerationActions:
    def __init__(self, core: Core, moderator_role: str) -> None:
        self.core = core
        self.moderation = core.moderation
        self.moderator_role = moderator_role

    async def add_word(self, interaction: discord.Interaction, pattern: str, regex: bool) -> None:
        async def call(moderator: Moderator, language: str | None) -> str:
            words = await self.moderation.add_word(moderator, pattern, regex=regex)
            return render("discord.mod.word_added", language, pattern=pattern.strip(), count=len(words))

        await self._run(interaction, call)

    async def remove_word(self, interaction: discord.Interaction, pattern: str) -> None:
        async def call(moderator: Moderator, language: str | None) -> str:
            words = await self.moderation.remove_word(moderator, pattern)
            return render("discord.mod.word_removed", language, pattern=pattern.strip(), count=len(words))

        await self._run(interaction, call)

    async def list_words(self, interaction: discord.Interaction) -> None:
        async def call(moderator: Moderator, language: str | None) -> str | Reply:
            words = await self.moderation.words(moderator)
            if not words:
                return render("discord.mod.words_empty", language)
            regex = render("discord.mod.regex", language)
            lines = [f"{word.text}  ({regex})" if word.regex else word.text for word in words]
            return listed(render("discord.mod.words", language, count=len(words)), lines, "banned-words")

        await self._run(interaction, call)

    async def ban(
        self,
        interaction: discord.Interaction,
        user: discord.User | discord.Member,
        duration: str | None,
        reason: str | None,
        everywhere: bool,
    ) -> None:
        async def call(moderator: Moderator, language: str | None) -> str:
            until = ban_end(duration) if duration else None
            await self.moderation.ban(moderator, str(user.id), until, reason or "", everywhere=everywhere)
            key = "discord.mod.banned_everywhere" if everywhere else "discord.mod.banned"
            if until is None:
                return render(key, language, user=user.mention)
            return render(f"{key}_until", language, user=user.mention, until=f"{until:%Y-%m-%d %H:%M}")

        await self._run(interaction, call)

    async def unban(
        self, interaction: discord.Interaction, user: discord.User | discord.Member, everywhere: bool
    ) -> None:
        async def call(moderator: Moderator, language: str | None) -> str:
            await self.moderation.unban(moderator, str(user.id), everywhere=everywhere)
            key = "discord.mod.unbanned_everywhere" if everywhere else "discord.mod.unbanned"
            return render(key, language, user=user.mention)

        await self._run(interaction, call)

    async def tier(
        self, interaction: discord.Interaction, user: discord.User | discord.Member, name: str | None
    ) -> None:
        """Show a user's tier, or (with `name`) put them in it; owners only, which the core checks."""

        async def call(moderator: Moderator, language: str | None) -> str:
            if name is None:
                tier = await self.moderation.tier(moderator, str(user.id))
                return render("discord.mod.tier_show", language, user=user.mention, tier=tier)
            before = await self.moderation.set_tier(moderator, str(user.id), name)
            return render("discord.mod.tier_set", language, user=user.mention, tier=name, before=before)

        await self._run(interaction, call)

    async def add_style(self, interaction: discord.Interaction, name: str, prompt: str, negative: str) -> None:
        async def call(moderator: Moderator, language: str | None) -> str:
            style = await self.moderation.add_style(moderator, name, prompt, negative)
            return render("moderation.style_added", language, name=style.name, prompt=style.prompt)

        await self._run(interaction, call)

    async def remove_style(self, interaction: discord.Interaction, name: str) -> None:
        async def call(moderator: Moderator, language: str | None) -> str:
            removed = await self.moderation.remove_style(moderator, name)
            return render("moderation.style_removed", language, name=removed)

        await self._run(interaction, call)

    async def negative(self, interaction: discord.Interaction, text: str | None) -> None:
        """Sets the server's negative prompt; without a text it clears it."""

        async def call(moderator: Moderator, language: str | None) -> str:
            negative = await self.moderation.set_negative(moderator, text or "")
            key = "moderation.negative_set" if negative else "moderation.negative_cleared"
            return render(key, language, negative=negative)

        await self._run(interaction, call)

    async def nsfw(self, interaction: discord.Interaction, policy: str) -> None:
        async def call(moderator: Moderator, language: str | None) -> str:
            await self.moderation.set_nsfw(moderator, policy)
            return render("discord.mod.nsfw_set", language, policy=render(f"discord.mod.nsfw.{policy}", language))

        await self._run(interaction, call)

    async def limits(
        self,
        interaction: discord.Interaction,
        images_per_day: int | None,
        max_size: str | None,
        max_steps: int | None,
        clear: str | None,
    ) -> None:
        """Named limits are set, `clear` removes some (or all); with neither, the server's limits are shown."""

        async def call(moderator: Moderator, language: str | None) -> str | Reply:
            changes = _limit_changes(images_per_day, max_size, max_steps, clear)
            if changes:
                limits = await self.moderation.set_limits(moderator, changes)
            else:
                limits = self.moderation.limits_for(await self.moderation.community_of(moderator))
            if not limits:
                return render("discord.mod.limits_none", language)
            lines = [f"{key} = {value}" for key, value in sorted(limits.items())]
            return listed(render("discord.mod.limits", language), lines, "limits")

        await self._run(interaction, call)

    async def channels(self, interaction: discord.Interaction, action: str, channel_id: int | None = None) -> None:
        """`add`, `remove`, `list` or `clear` the channels where the bot answers (none listed: all of them)."""

        async def call(moderator: Moderator, language: str | None) -> str:
            channels = await self.moderation.channels(moderator)
            if action == "add" and channel_id is not None:
                channels = await self.moderation.set_channels(moderator, [*channels, str(channel_id)])
            elif action == "remove" and channel_id is not None:
                if str(channel_id) not in channels:
                    raise UserError("discord.mod.channel_not_listed", channel=f"<#{channel_id}>")
                channels = await self.moderation.set_channels(moderator, [c for c in channels if c != str(channel_id)])
            elif action == "clear":
                channels = await self.moderation.set_channels(moderator, [])
            if not channels:
                return render("discord.mod.channels_all", language)
            return render("discord.mod.channels", language, channels=", ".join(f"<#{c}>" for c in channels))

        await self._run(interaction, call)

    async def log(self, interaction: discord.Interaction) -> None:
        async def call(moderator: Moderator, language: str | None) -> str | Reply:
            entries = await self.moderation.log(moderator, LOG_LIMIT)
            if not entries:
                return render("discord.mod.log_empty", language)
            lines = [_log_line(entry, language) for entry in entries]
            return listed(render("discord.mod.log", language, count=len(entries)), lines, "moderation-log")

        await self._run(interaction, call)

    async def export(self, interaction: discord.Interaction) -> None:
        async def call(moderator: Moderator, language: str | None) -> Reply:
            data = await self.moderation.log_csv(moderator)
            return Reply(render("discord.mod.export", language), discord.File(io.BytesIO(data), filename=EXPORT_NAME))

        await self._run(interaction, call)

    async def purge(self, interaction: discord.Interaction, user: discord.User | discord.Member) -> None:
        """Delete every image the user made in this server, and the bot's messages that showed them."""

        async def call(moderator: Moderator, language: str | None) -> str:
            links = await self.core.purge(moderator, str(user.id))
            refused = await delete_messages(interaction.client, links)
            purged = render("discord.mod.purged", language, user=user.mention, count=len(links))
            return purged + ("\n" + render("discord.forbidden", language) if refused else "")

        await self._run(interaction, call)

    async def _run(self, interaction: discord.Interaction, call: ModerationCall) -> None:
        """Answer ephemerally as the moderator Discord says the member is; the core decides what they may do."""
        moderator = moderator_of(interaction, self.moderator_role)
        await answer(interaction, lambda context: call(moderator, context.language))


def ban_end(duration: str) -> datetime:
    """When a timed ban of `30m`, `2h`, `1d12h` or `1w` ends."""
    length = parse_duration(duration)
    if length is None:
        raise UserError("moderation.bad_duration", value=duration)
    return _now() + length


def _limit_changes(
    images_per_day: int | None, max_size: str | None, max_steps: int | None, clear: str | None
) -> dict[str, int | None]:
    changes: dict[str, int | None] = {}
    if images_per_day is not None:
        changes["images_per_day"] = images_per_day
    if max_size:
        size = option("size", max_size)
        changes.update(max_width=size.width, max_height=size.height)
    if max_steps is not None:
        changes["max_steps"] = max_steps
    if clear:
        cleared = LIMIT_KEYS if clear == "all" else SIZE_LIMITS if clear == "max_size" else (clear,)
        changes.update(dict.fromkeys(cleared))
    return changes


def _log_line(entry: LogEntry, language: str | None) -> str:
    """One action or blocked request, people named with their platform account."""
    line = render(
        "discord.mod.log_line",
        language,
        time=f"{entry.created_at:%Y-%m-%d %H:%M}",
        action=entry.action,
        target=entry.target,
        actor=entry.actor or "easel",
    )
    return line + (f"  ({entry.reason})" if entry.reason else "")


def _now() -> datetime:
    return datetime.now(UTC)
