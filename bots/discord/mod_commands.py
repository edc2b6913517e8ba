"""/mod, the moderation commands as Discord shows them: definitions only, handed to the moderation actions."""

from __future__ import annotations

from collections.abc import Sequence

import discord
from discord import app_commands

from bots.discord.choices import localized
from bots.discord.handlers import handlers_of
from bots.discord.moderation import ModerationActions
from bots.kit.catalogue import Audience
from bots.moderation.policy import NSFW_POLICIES

LIMITS_TO_CLEAR = ("images_per_day", "max_size", "max_steps", "all")


def moderation_group(sizes: list[app_commands.Choice[str]], tiers: Sequence[str]) -> app_commands.Group:
    """/mod: shown by Discord to members with Manage Server only, in servers only; the core still checks every
    call, since a hidden command can be sent all the same, and a moderator role may use part of it."""
    mod = app_commands.Group(
        name="mod",
        description=localized("discord.mod.command"),
        guild_only=True,
        allowed_contexts=app_commands.AppCommandContext(guild=True),
        default_permissions=discord.Permissions(manage_guild=True),
    )
    banword = app_commands.Group(name="banword", description=localized("discord.mod.command.banword"), parent=mod)
    channels = app_commands.Group(name="channels", description=localized("discord.mod.command.channels"), parent=mod)
    style = app_commands.Group(name="style", description=localized("discord.mod.command.style"), parent=mod)
    policies = [app_commands.Choice(name=localized(f"discord.mod.nsfw.{name}"), value=name) for name in NSFW_POLICIES]
    clearable = [app_commands.Choice(name=localized(f"discord.mod.clear.{key}"), value=key) for key in LIMITS_TO_CLEAR]

    def moderation(interaction: discord.Interaction) -> ModerationActions:
        return handlers_of(interaction).moderation

    @mod.command(name="help", description=localized("discord.mod.command.help"))
    async def help_(interaction: discord.Interaction) -> None:
        await handlers_of(interaction).lookups.help(interaction, Audience.MODERATORS)

    @banword.command(name="add", description=localized("discord.mod.command.banword_add"))
    @app_commands.describe(pattern=localized("discord.mod.option.pattern"), regex=localized("discord.mod.option.regex"))
    async def banword_add(interaction: discord.Interaction, pattern: str, regex: bool = False) -> None:
        await moderation(interaction).add_word(interaction, pattern, regex)

    @banword.command(name="remove", description=localized("discord.mod.command.banword_remove"))
    @app_commands.describe(pattern=localized("discord.mod.option.pattern"))
    async def banword_remove(interaction: discord.Interaction, pattern: str) -> None:
        await moderation(interaction).remove_word(interaction, pattern)

    @banword.command(name="list", description=localized("discord.mod.command.banword_list"))
    async def banword_list(interaction: discord.Interaction) -> None:
        await moderation(interaction).list_words(interaction)

    @mod.command(name="ban", description=localized("discord.mod.command.ban"))
    @app_commands.rename(everywhere="global")
    @app_commands.describe(
        user=localized("discord.mod.option.user"),
        duration=localized("discord.mod.option.duration"),
        reason=localized("discord.mod.option.reason"),
        everywhere=localized("discord.mod.option.global"),
    )
    async def ban(
        interaction: discord.Interaction,
        user: discord.User,
        duration: str | None = None,
        reason: str | None = None,
        everywhere: bool = False,
    ) -> None:
        await moderation(interaction).ban(interaction, user, duration, reason, everywhere)

    @mod.command(name="tier", description=localized("discord.mod.command.tier"))
    @app_commands.describe(user=localized("discord.mod.option.user"), name=localized("discord.mod.option.tier"))
    @app_commands.choices(name=[app_commands.Choice(name=tier, value=tier) for tier in tiers[:25]])
    async def tier(interaction: discord.Interaction, user: discord.User, name: str | None = None) -> None:
        await moderation(interaction).tier(interaction, user, name)

    @mod.command(name="unban", description=localized("discord.mod.command.unban"))
    @app_commands.rename(everywhere="global")
    @app_commands.describe(user=localized("discord.mod.option.user"), everywhere=localized("discord.mod.option.global"))
    async def unban(interaction: discord.Interaction, user: discord.User, everywhere: bool = False) -> None:
        await moderation(interaction).unban(interaction, user, everywhere)

    @mod.command(name="nsfw", description=localized("discord.mod.command.nsfw"))
    @app_commands.describe(policy=localized("discord.mod.option.policy"))
    @app_commands.choices(policy=policies)
    async def nsfw(interaction: discord.Interaction, policy: str) -> None:
        await moderation(interaction).nsfw(interaction, policy)

    @mod.command(name="limits", description=localized("discord.mod.command.limits"))
    @app_commands.describe(
        images_per_day=localized("discord.mod.option.images_per_day"),
        max_size=localized("discord.mod.option.max_size"),
        max_steps=localized("discord.mod.option.max_steps"),
        clear=localized("discord.mod.option.clear"),
    )
    @app_commands.choices(max_size=sizes, clear=clearable)
    async def limits(
        interaction: discord.Interaction,
        images_per_day: int | None = None,
        max_size: str | None = None,
        max_steps: int | None = None,
        clear: str | None = None,
    ) -> None:
        await moderation(interaction).limits(interaction, images_per_day, max_size, max_steps, clear)

    @channels.command(name="add", description=localized("discord.mod.command.channels_add"))
    @app_commands.describe(channel=localized("discord.mod.option.channel"))
    async def channels_add(interaction: discord.Interaction, channel: app_commands.AppCommandChannel) -> None:
        await moderation(interaction).channels(interaction, "add", channel.id)

    @channels.command(name="remove", description=localized("discord.mod.command.channels_remove"))
    @app_commands.describe(channel=localized("discord.mod.option.channel"))
    async def channels_remove(interaction: discord.Interaction, channel: app_commands.AppCommandChannel) -> None:
        await moderation(interaction).channels(interaction, "remove", channel.id)

    @channels.command(name="list", description=localized("discord.mod.command.channels_list"))
    async def channels_list(interaction: discord.Interaction) -> None:
        await moderation(interaction).channels(interaction, "list")

    @channels.command(name="clear", description=localized("discord.mod.command.channels_clear"))
    async def channels_clear(interaction: discord.Interaction) -> None:
        await moderation(interaction).channels(interaction, "clear")

    @mod.command(name="log", description=localized("discord.mod.command.log"))
    async def log(interaction: discord.Interaction) -> None:
        await moderation(interaction).log(interaction)

    @mod.command(name="export", description=localized("discord.mod.command.export"))
    async def export(interaction: discord.Interaction) -> None:
        await moderation(interaction).export(interaction)

    @mod.command(name="purge", description=localized("discord.mod.command.purge"))
    @app_commands.describe(user=localized("discord.mod.option.user"))
    async def purge(interaction: discord.Interaction, user: discord.User) -> None:
        await moderation(interaction).purge(interaction, user)

    @style.command(name="add", description=localized("discord.mod.command.style_add"))
    @app_commands.describe(
        name=localized("discord.mod.option.style_name"),
        prompt=localized("discord.mod.option.template"),
        negative=localized("discord.mod.option.style_negative"),
    )
    async def style_add(interaction: discord.Interaction, name: str, prompt: str, negative: str = "") -> None:
        await moderation(interaction).add_style(interaction, name, prompt, negative)

    @style.command(name="remove", description=localized("discord.mod.command.style_remove"))
    @app_commands.describe(name=localized("discord.mod.option.style_name"))
    async def style_remove(interaction: discord.Interaction, name: str) -> None:
        await moderation(interaction).remove_style(interaction, name)

    @mod.command(name="negative", description=localized("discord.mod.command.negative"))
    @app_commands.describe(text=localized("discord.mod.option.negative_text"))
    async def negative(interaction: discord.Interaction, text: str | None = None) -> None:
        await moderation(interaction).negative(interaction, text)

    return mod
