"""The commands answered at once and only to the one who asks: /history, /queue, /quota, /settings, /styles,
/language, /help, and /cancel and delete, which the buttons share."""

from __future__ import annotations

import discord

from bots.core.facade import Core
from bots.core.types import short_id
from bots.discord.interactions import Reply, answer, delete_messages, listed, moderator_of, option
from bots.discord.spellings import help_text
from bots.formatting import (
    cancel_text,
    history_lines,
    language_text,
    preferences_text,
    queue_lines,
    quota_text,
    styles_text,
)
from bots.kit.catalogue import Audience
from bots.kit.context import Context
from bots.kit.tokens import token_reply, web_reply
from generation.asks import Options


class Lookups:
    def __init__(self, core: Core, moderator_role: str) -> None:
        self.core = core
        self.moderator_role = moderator_role

    async def history(self, interaction: discord.Interaction) -> None:
        async def produce(context: Context) -> str | Reply:
            lines = history_lines(await self.core.history(context.actor), context.language)
            return listed("", lines, "history") if lines else context.text("history.empty")

        await answer(interaction, produce)

    async def styles(self, interaction: discord.Interaction) -> None:
        async def produce(context: Context) -> str | Reply:
            return styles_text(await self.core.styles(context.place), context.language)

        await answer(interaction, produce)

    async def quota(self, interaction: discord.Interaction) -> None:
        async def produce(context: Context) -> str:
            return quota_text(await self.core.quota(context.actor), context.language)

        await answer(interaction, produce)

    async def queue(self, interaction: discord.Interaction) -> None:
        async def produce(context: Context) -> str | Reply:
            lines = queue_lines(await self.core.queue(context.actor), context.language)
            return listed("", lines, "queue", fenced=False) if lines else context.text("queue.empty")

        await answer(interaction, produce)

    async def settings(self, interaction: discord.Interaction, chosen: Options, size: str | None, reset: bool) -> None:
        """The user's own defaults: shown when nothing is given; `reset` clears them first, then what is given
        is saved (the core refuses defaults that would make an invalid request)."""

        async def produce(context: Context) -> str:
            if reset:
                await self.core.reset_preferences(context.actor)
            changes = chosen.over(option("size", size)).given()
            if changes:
                preferences = await self.core.set_preferences(context.actor, changes)
                return context.text("settings.saved", values=preferences_text(preferences))
            if reset:
                return context.text("settings.reset")
            preferences = await self.core.preferences(context.actor)
            return context.text(
                "settings.show" if preferences else "settings.none", values=preferences_text(preferences)
            )

        await answer(interaction, produce)

    async def language(self, interaction: discord.Interaction, wanted: str) -> None:
        """The language easel answers in: shown, chosen, or `auto` to follow Discord's again."""

        async def produce(context: Context) -> str:
            return language_text(await self.core.choose_language(context.actor, wanted))

        await answer(interaction, produce)

    async def help(self, interaction: discord.Interaction, audience: Audience) -> None:
        """/help lists the commands for everyone, /mod help those for moderators."""

        async def produce(context: Context) -> str:
            return help_text(audience, context.language)

        await answer(interaction, produce)

    async def cancel(self, interaction: discord.Interaction, reference: str | None, job_id: str | None = None) -> None:
        """The core decides whether the actor, or the moderator they are here, may cancel that job; `job_id` is
        the job a Cancel button names."""

        async def produce(context: Context) -> str:
            moderator = moderator_of(interaction, self.moderator_role)
            cancellation = await self.core.cancel(context.actor, reference, moderator)
            return cancel_text(cancellation, context.language)

        await answer(interaction, produce, job_id=job_id)

    async def delete(self, interaction: discord.Interaction, job_id: str) -> None:
        """Delete the job (the core checks it is the actor's, or that they moderate its server), then every
        message that showed it."""

        async def produce(context: Context) -> str:
            moderator = moderator_of(interaction, self.moderator_role)
            shown = await self.core.delete(context.actor, job_id, moderator)
            deleted = context.text("deleted", job_id=short_id(job_id))
            if await delete_messages(interaction.client, shown):
                return deleted + "\n" + context.text("discord.forbidden")
            return deleted

        await answer(interaction, produce, job_id=job_id)

    async def token(self, interaction: discord.Interaction, revoke: bool) -> None:
        """`/token`: a personal API token, in an answer only its owner sees."""

        async def produce(context: Context) -> str:
            return await token_reply(self.core.access, context, "revoke" if revoke else "")

        await answer(interaction, produce)

    async def web(self, interaction: discord.Interaction) -> None:
        """`/web`: a sign-in link only its owner sees; a moderator's, asked for in their server, opens its
        moderation pages too."""
        moderator = moderator_of(interaction, self.moderator_role)

        async def produce(context: Context) -> str:
            return await web_reply(self.core.access, context, moderator)

        await answer(interaction, produce)
