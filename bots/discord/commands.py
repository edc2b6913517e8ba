"""The application commands: slash commands and the "Edit image" message menu.

Definitions only: each command hands its options to the handlers that the client holds. Sizes are offered as
choices, filtered by the configured limits; every other value is checked by the core, which names the range.
The commands are the catalogue's, as `SPELLINGS` shows them, and checked against it whenever they are built.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import discord
from discord import app_commands

from bots.config import Settings
from bots.discord.choices import (
    CatalogTranslator,
    aspect_choices,
    language_choices,
    localized,
    pan_choices,
    size_choices,
    zoom_choices,
)
from bots.discord.handlers import handlers_of
from bots.discord.interactions import PLATFORM
from bots.discord.mod_commands import moderation_group
from bots.discord.spellings import CAPABILITIES, SPELLINGS
from bots.kit.catalogue import Audience, check_served
from generation.asks import Options

AppCommand = app_commands.Command[Any, ..., None] | app_commands.ContextMenu | app_commands.Group


def _describe(*names: str, **keys: str) -> Any:
    """Option descriptions by key: `size` is described by `discord.option.size`, `prompt="change"` by
    `discord.option.change`."""
    chosen = {**{name: name for name in names}, **keys}
    return app_commands.describe(**{name: localized(f"discord.option.{key}") for name, key in chosen.items()})


def build_commands(settings: Settings) -> list[AppCommand]:
    sizes = size_choices(settings)

    @app_commands.command(name="imagine", description=localized("discord.command.imagine"))
    @_describe("prompt", "negative", "size", "aspect", "style", "steps", "guidance", "seed", "count")
    @app_commands.choices(size=sizes)
    @app_commands.choices(aspect=aspect_choices())
    async def imagine(
        interaction: discord.Interaction,
        prompt: str,
        negative: str | None = None,
        size: str | None = None,
        aspect: str | None = None,
        style: str | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        seed: int | None = None,
        count: app_commands.Range[int, 1, 4] | None = None,
    ) -> None:
        chosen = Options(negative_prompt=negative, steps=steps, guidance_scale=guidance, seed=seed, count=count)
        await handlers_of(interaction).images.imagine(interaction, prompt, chosen, size, aspect, style)

    @app_commands.command(name="edit", description=localized("discord.command.edit"))
    @_describe("image", "strength", prompt="change")
    async def edit(
        interaction: discord.Interaction, image: discord.Attachment, prompt: str, strength: float | None = None
    ) -> None:
        await handlers_of(interaction).images.transform(
            interaction, "img2img", image, prompt, Options(strength=strength)
        )

    @app_commands.command(name="outpaint", description=localized("discord.command.outpaint"))
    @_describe("image", "zoom", "pan", prompt="surroundings")
    @app_commands.choices(zoom=zoom_choices())
    @app_commands.choices(pan=pan_choices())
    async def outpaint(
        interaction: discord.Interaction,
        image: discord.Attachment,
        prompt: str,
        zoom: float | None = None,
        pan: str | None = None,
    ) -> None:
        chosen = Options(zoom=zoom, pan=pan)
        await handlers_of(interaction).images.transform(interaction, "outpaint", image, prompt, chosen)

    @app_commands.command(name="remix", description=localized("discord.command.remix"))
    @_describe("image", "strength", prompt="change")
    async def remix(
        interaction: discord.Interaction, image: discord.Attachment, prompt: str, strength: float | None = None
    ) -> None:
        await handlers_of(interaction).images.transform(interaction, "remix", image, prompt, Options(strength=strength))

    @app_commands.command(name="depth", description=localized("discord.command.depth"))
    @_describe("image", prompt="change", strength="depth_strength")
    async def depth(
        interaction: discord.Interaction, image: discord.Attachment, prompt: str, strength: float | None = None
    ) -> None:
        await handlers_of(interaction).images.transform(interaction, "depth", image, prompt, Options(strength=strength))

    @app_commands.command(name="inpaint", description=localized("discord.command.inpaint"))
    @_describe("image", "mask", "region", prompt="change")
    async def inpaint(
        interaction: discord.Interaction,
        image: discord.Attachment,
        prompt: str,
        mask: discord.Attachment | None = None,
        region: str | None = None,
    ) -> None:
        await handlers_of(interaction).images.inpaint(interaction, image, prompt, mask, region)

    @app_commands.command(name="mix", description=localized("discord.command.mix"))
    @_describe(
        "weights", image1="mix_image", image2="mix_image", image3="mix_image", image4="mix_image", prompt="mix_prompt"
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
        await handlers_of(interaction).images.mix(interaction, images, prompt, weights)

    @app_commands.command(name="grid", description=localized("discord.command.grid"))
    @_describe(
        "prompt",
        "size",
        "style",
        "negative",
        steps="steps_list",
        guidance="guidance_list",
        prior_steps="prior_steps_list",
        seed="seed_list",
    )
    @app_commands.choices(size=sizes)
    async def grid(
        interaction: discord.Interaction,
        prompt: str,
        steps: str | None = None,
        guidance: str | None = None,
        prior_steps: str | None = None,
        seed: str | None = None,
        size: str | None = None,
        style: str | None = None,
        negative: str | None = None,
    ) -> None:
        lists = {"steps": steps, "guidance": guidance, "prior-steps": prior_steps, "seed": seed}
        await handlers_of(interaction).images.grid(interaction, prompt, lists, size, style, negative)

    @app_commands.command(name="history", description=localized("discord.command.history"))
    async def history(interaction: discord.Interaction) -> None:
        await handlers_of(interaction).lookups.history(interaction)

    @app_commands.command(name="styles", description=localized("discord.command.styles"))
    async def styles(interaction: discord.Interaction) -> None:
        await handlers_of(interaction).lookups.styles(interaction)

    @app_commands.command(name="quota", description=localized("discord.command.quota"))
    async def quota(interaction: discord.Interaction) -> None:
        await handlers_of(interaction).lookups.quota(interaction)

    @app_commands.command(name="queue", description=localized("discord.command.queue"))
    async def queue(interaction: discord.Interaction) -> None:
        await handlers_of(interaction).lookups.queue(interaction)

    @app_commands.command(name="cancel", description=localized("discord.command.cancel"))
    @_describe("job")
    async def cancel(interaction: discord.Interaction, job: str | None = None) -> None:
        await handlers_of(interaction).lookups.cancel(interaction, job)

    @app_commands.command(name="settings", description=localized("discord.command.settings"))
    @_describe("size", "steps", "guidance", "negative", "count", "reset")
    @app_commands.choices(size=sizes)
    async def preferences(
        interaction: discord.Interaction,
        size: str | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        negative: str | None = None,
        count: app_commands.Range[int, 1, 4] | None = None,
        reset: bool = False,
    ) -> None:
        chosen = Options(negative_prompt=negative, steps=steps, guidance_scale=guidance, count=count)
        await handlers_of(interaction).lookups.settings(interaction, chosen, size, reset)

    @app_commands.command(name="language", description=localized("discord.command.language"))
    @_describe("language")
    @app_commands.choices(language=language_choices())
    async def language(interaction: discord.Interaction, language: str | None = None) -> None:
        await handlers_of(interaction).lookups.language(interaction, language or "")

    @app_commands.command(name="token", description=localized("discord.command.token"))
    @_describe("revoke", revoke="revoke_token")
    async def token(interaction: discord.Interaction, revoke: bool = False) -> None:
        await handlers_of(interaction).lookups.token(interaction, revoke)

    @app_commands.command(name="web", description=localized("discord.command.web"))
    async def web(interaction: discord.Interaction) -> None:
        await handlers_of(interaction).lookups.web(interaction)

    @app_commands.command(name="help", description=localized("discord.command.help"))
    async def help_(interaction: discord.Interaction) -> None:
        await handlers_of(interaction).lookups.help(interaction, Audience.EVERYONE)

    @app_commands.context_menu(name=localized("discord.command.edit_image"))
    async def edit_image(interaction: discord.Interaction, message: discord.Message) -> None:
        await handlers_of(interaction).buttons.open_edit_for_message(interaction, message)

    commands: list[AppCommand] = [
        imagine,
        edit,
        outpaint,
        remix,
        depth,
        inpaint,
        mix,
        grid,
        history,
        quota,
        queue,
        cancel,
        preferences,
        styles,
        language,
        token,
        web,
        help_,
        edit_image,
        moderation_group(sizes, list(settings.tiers)),
    ]
    check_served(PLATFORM, CAPABILITIES, served(commands))
    return commands


def served(commands: Sequence[AppCommand]) -> dict[str, str]:
    """The catalogue's commands that `commands` serve, by catalogue name: a slash command counts under its own
    spelling or its group's (`/mod channels add` serves `mod.channels`); one spelled nowhere counts under its
    own name, which the catalogue check then calls foreign. Buttons are always there."""
    names = {spelling: name for name, spelling in SPELLINGS.items()}
    found = {name: spelling for name, spelling in SPELLINGS.items() if not spelling.startswith("/")}
    for command in _slash_commands(commands):
        words = command.qualified_name.split()
        spellings = ["/" + " ".join(words[:length]) for length in range(len(words), 0, -1)]
        spelling = next((spelling for spelling in spellings if spelling in names), spellings[0])
        found[names.get(spelling, spelling)] = spelling
    return found


def _slash_commands(commands: Sequence[AppCommand]) -> Iterator[app_commands.Command[Any, ..., Any]]:
    for command in commands:
        if isinstance(command, app_commands.Group):
            yield from (sub for sub in command.walk_commands() if isinstance(sub, app_commands.Command))
        elif isinstance(command, app_commands.Command):
            yield command


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
