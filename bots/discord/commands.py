"""The application commands: slash commands and the "Edit image" message menu.

Definitions only: each command hands its options to the `Actions` that the client holds. Sizes are offered as
choices, filtered by the configured limits; every other value is checked by the core, which names the range.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from bots.config import Settings
from bots.discord.actions import Actions
from bots.discord.moderation import ModerationActions
from bots.moderation.policy import NSFW_POLICIES
from bots.texts import SOURCE_LANGUAGE, render, resolve_language, text_of

SIZES = ("512x512", "768x768", "1024x1024", "768x512", "512x768", "1024x576", "576x1024")
"""Common shapes; the configured default size is offered too."""

LIMITS_TO_CLEAR = ("images_per_day", "max_size", "max_steps", "all")

AppCommand = app_commands.Command[Any, ..., None] | app_commands.ContextMenu | app_commands.Group


def _text(key: str) -> app_commands.locale_str:
    """An English text that Discord shows translated, through `CatalogTranslator`, in each user's language."""
    return app_commands.locale_str(render(key), key=key)


class CatalogTranslator(app_commands.Translator):
    """Descriptions and the menu's name in every language easel has a catalog for; command names stay."""

    async def translate(
        self, string: app_commands.locale_str, locale: discord.Locale, context: app_commands.TranslationContextTypes
    ) -> str | None:
        key = string.extras.get("key")
        language = resolve_language(locale.value)
        if key is None or language == SOURCE_LANGUAGE:
            return None
        translated = text_of(key, language)
        return None if translated == string.message else translated


def _actions(interaction: discord.Interaction) -> Actions:
    actions: Actions = interaction.client.actions  # type: ignore[attr-defined]
    return actions


def _moderation(interaction: discord.Interaction) -> ModerationActions:
    moderation: ModerationActions = interaction.client.moderation  # type: ignore[attr-defined]
    return moderation


def size_choices(settings: Settings) -> list[str]:
    defaults = settings.generation_defaults
    sizes = [f"{defaults.width}x{defaults.height}", *SIZES]
    return [size for size in dict.fromkeys(sizes) if _fits(size, settings)]


def _fits(size: str, settings: Settings) -> bool:
    limits = settings.limits
    width, height = (int(side) for side in size.split("x"))
    return width <= limits.max_width and height <= limits.max_height and width * height <= limits.max_pixels


def build_commands(settings: Settings) -> list[AppCommand]:
    sizes = [app_commands.Choice(name=size, value=size) for size in size_choices(settings)]

    @app_commands.command(name="imagine", description=_text("discord.command.imagine"))
    @app_commands.describe(
        prompt=_text("discord.option.prompt"),
        negative=_text("discord.option.negative"),
        size=_text("discord.option.size"),
        steps=_text("discord.option.steps"),
        guidance=_text("discord.option.guidance"),
        seed=_text("discord.option.seed"),
        count=_text("discord.option.count"),
    )
    @app_commands.choices(size=sizes)
    async def imagine(
        interaction: discord.Interaction,
        prompt: str,
        negative: str | None = None,
        size: str | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        seed: int | None = None,
        count: app_commands.Range[int, 1, 4] | None = None,
    ) -> None:
        await _actions(interaction).imagine(
            interaction,
            prompt,
            negative=negative,
            size=size,
            steps=steps,
            guidance=guidance,
            seed=seed,
            count=count,
        )

    @app_commands.command(name="edit", description=_text("discord.command.edit"))
    @app_commands.describe(
        image=_text("discord.option.image"),
        prompt=_text("discord.option.change"),
        strength=_text("discord.option.strength"),
    )
    async def edit(
        interaction: discord.Interaction, image: discord.Attachment, prompt: str, strength: float | None = None
    ) -> None:
        await _actions(interaction).edit(interaction, image, prompt, strength)

    @app_commands.command(name="inpaint", description=_text("discord.command.inpaint"))
    @app_commands.describe(
        image=_text("discord.option.image"),
        prompt=_text("discord.option.change"),
        mask=_text("discord.option.mask"),
        region=_text("discord.option.region"),
    )
    async def inpaint(
        interaction: discord.Interaction,
        image: discord.Attachment,
        prompt: str,
        mask: discord.Attachment | None = None,
        region: str | None = None,
    ) -> None:
        await _actions(interaction).inpaint(interaction, image, prompt, mask, region)

    @app_commands.command(name="mix", description=_text("discord.command.mix"))
    @app_commands.describe(
        image1=_text("discord.option.mix_image"),
        image2=_text("discord.option.mix_image"),
        image3=_text("discord.option.mix_image"),
        image4=_text("discord.option.mix_image"),
        prompt=_text("discord.option.mix_prompt"),
        weights=_text("discord.option.weights"),
    )
    async def mix(
        interaction: discord.Interaction,
        image1: discord.Attachment,
        image2: discord.Attachment,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        prompt: str | None = None,
        weights: str | None = None,
    ) -> None:
        images = [image for image in (image1, image2, image3, image4) if image is not None]
        await _actions(interaction).mix(interaction, images, prompt, weights)

    @app_commands.command(name="history", description=_text("discord.command.history"))
    async def history(interaction: discord.Interaction) -> None:
        await _actions(interaction).history(interaction)

    @app_commands.command(name="quota", description=_text("discord.command.quota"))
    async def quota(interaction: discord.Interaction) -> None:
        await _actions(interaction).quota(interaction)

    @app_commands.command(name="queue", description=_text("discord.command.queue"))
    async def queue(interaction: discord.Interaction) -> None:
        await _actions(interaction).queue(interaction)

    @app_commands.command(name="cancel", description=_text("discord.command.cancel"))
    @app_commands.describe(job=_text("discord.option.job"))
    async def cancel(interaction: discord.Interaction, job: str | None = None) -> None:
        await _actions(interaction).cancel(interaction, job)

    @app_commands.context_menu(name=_text("discord.command.edit_image"))
    async def edit_image(interaction: discord.Interaction, message: discord.Message) -> None:
        await _actions(interaction).open_edit_for_message(interaction, message)

    return [imagine, edit, inpaint, mix, history, quota, queue, cancel, edit_image, moderation_group(settings)]


def moderation_group(settings: Settings) -> app_commands.Group:
    """/mod: shown by Discord to members with Manage Server only, in servers only; the core still checks every
    call, since a hidden command can be sent all the same, and a moderator role may use part of it."""
    mod = app_commands.Group(
        name="mod",
        description=_text("discord.mod.command"),
        guild_only=True,
        allowed_contexts=app_commands.AppCommandContext(guild=True),
        default_permissions=discord.Permissions(manage_guild=True),
    )
    banword = app_commands.Group(name="banword", description=_text("discord.mod.command.banword"), parent=mod)
    channels = app_commands.Group(name="channels", description=_text("discord.mod.command.channels"), parent=mod)
    sizes = [app_commands.Choice(name=size, value=size) for size in size_choices(settings)]
    policies = [app_commands.Choice(name=_text(f"discord.mod.nsfw.{policy}"), value=policy) for policy in NSFW_POLICIES]
    clearable = [app_commands.Choice(name=_text(f"discord.mod.clear.{key}"), value=key) for key in LIMITS_TO_CLEAR]

    @banword.command(name="add", description=_text("discord.mod.command.banword_add"))
    @app_commands.describe(pattern=_text("discord.mod.option.pattern"), regex=_text("discord.mod.option.regex"))
    async def banword_add(interaction: discord.Interaction, pattern: str, regex: bool = False) -> None:
        await _moderation(interaction).add_word(interaction, pattern, regex)

    @banword.command(name="remove", description=_text("discord.mod.command.banword_remove"))
    @app_commands.describe(pattern=_text("discord.mod.option.pattern"))
    async def banword_remove(interaction: discord.Interaction, pattern: str) -> None:
        await _moderation(interaction).remove_word(interaction, pattern)

    @banword.command(name="list", description=_text("discord.mod.command.banword_list"))
    async def banword_list(interaction: discord.Interaction) -> None:
        await _moderation(interaction).list_words(interaction)

    @mod.command(name="ban", description=_text("discord.mod.command.ban"))
    @app_commands.rename(everywhere="global")
    @app_commands.describe(
        user=_text("discord.mod.option.user"),
        duration=_text("discord.mod.option.duration"),
        reason=_text("discord.mod.option.reason"),
        everywhere=_text("discord.mod.option.global"),
    )
    async def ban(
        interaction: discord.Interaction,
        user: discord.User,
        duration: str | None = None,
        reason: str | None = None,
        everywhere: bool = False,
    ) -> None:
        await _moderation(interaction).ban(interaction, user, duration, reason, everywhere)

    @mod.command(name="unban", description=_text("discord.mod.command.unban"))
    @app_commands.rename(everywhere="global")
    @app_commands.describe(user=_text("discord.mod.option.user"), everywhere=_text("discord.mod.option.global"))
    async def unban(interaction: discord.Interaction, user: discord.User, everywhere: bool = False) -> None:
        await _moderation(interaction).unban(interaction, user, everywhere)

    @mod.command(name="nsfw", description=_text("discord.mod.command.nsfw"))
    @app_commands.describe(policy=_text("discord.mod.option.policy"))
    @app_commands.choices(policy=policies)
    async def nsfw(interaction: discord.Interaction, policy: str) -> None:
        await _moderation(interaction).nsfw(interaction, policy)

    @mod.command(name="limits", description=_text("discord.mod.command.limits"))
    @app_commands.describe(
        images_per_day=_text("discord.mod.option.images_per_day"),
        max_size=_text("discord.mod.option.max_size"),
        max_steps=_text("discord.mod.option.max_steps"),
        clear=_text("discord.mod.option.clear"),
    )
    @app_commands.choices(max_size=sizes, clear=clearable)
    async def limits(
        interaction: discord.Interaction,
        images_per_day: int | None = None,
        max_size: str | None = None,
        max_steps: int | None = None,
        clear: str | None = None,
    ) -> None:
        await _moderation(interaction).limits(interaction, images_per_day, max_size, max_steps, clear)

    @channels.command(name="add", description=_text("discord.mod.command.channels_add"))
    @app_commands.describe(channel=_text("discord.mod.option.channel"))
    async def channels_add(interaction: discord.Interaction, channel: app_commands.AppCommandChannel) -> None:
        await _moderation(interaction).channels(interaction, "add", channel.id)

    @channels.command(name="remove", description=_text("discord.mod.command.channels_remove"))
    @app_commands.describe(channel=_text("discord.mod.option.channel"))
    async def channels_remove(interaction: discord.Interaction, channel: app_commands.AppCommandChannel) -> None:
        await _moderation(interaction).channels(interaction, "remove", channel.id)

    @channels.command(name="list", description=_text("discord.mod.command.channels_list"))
    async def channels_list(interaction: discord.Interaction) -> None:
        await _moderation(interaction).channels(interaction, "list")

    @channels.command(name="clear", description=_text("discord.mod.command.channels_clear"))
    async def channels_clear(interaction: discord.Interaction) -> None:
        await _moderation(interaction).channels(interaction, "clear")

    @mod.command(name="log", description=_text("discord.mod.command.log"))
    async def log(interaction: discord.Interaction) -> None:
        await _moderation(interaction).log(interaction)

    @mod.command(name="export", description=_text("discord.mod.command.export"))
    async def export(interaction: discord.Interaction) -> None:
        await _moderation(interaction).export(interaction)

    @mod.command(name="purge", description=_text("discord.mod.command.purge"))
    @app_commands.describe(user=_text("discord.mod.option.user"))
    async def purge(interaction: discord.Interaction, user: discord.User) -> None:
        await _moderation(interaction).purge(interaction, user)

    return mod


def add_commands(tree: app_commands.CommandTree[Any], settings: Settings) -> None:
    """Register the commands in `guild_ids` when set (fast to update while developing), globally otherwise."""
    guilds = [discord.Object(guild_id) for guild_id in settings.discord.guild_ids]
    for command in build_commands(settings):
        if guilds:
            tree.add_command(command, guilds=guilds)
        else:
            tree.add_command(command)


async def sync_commands(tree: app_commands.CommandTree[Any], settings: Settings) -> list[str]:
    """Upload the command definitions, with their translations, to Discord; returns the names synced."""
    if tree.translator is None:
        await tree.set_translator(CatalogTranslator())
    if not settings.discord.guild_ids:
        return [command.name for command in await tree.sync()]
    names: list[str] = []
    for guild_id in settings.discord.guild_ids:
        names += [command.name for command in await tree.sync(guild=discord.Object(guild_id))]
    return names
