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
from bots.texts import render
from generation.config import Limits

SIZES = ("512x512", "768x768", "1024x1024", "768x512", "512x768", "1024x576", "576x1024")
"""Common shapes; the configured default size is offered too."""

AppCommand = app_commands.Command[Any, ..., None] | app_commands.ContextMenu


def _actions(interaction: discord.Interaction) -> Actions:
    actions: Actions = interaction.client.actions  # type: ignore[attr-defined]
    return actions


def size_choices(settings: Settings) -> list[str]:
    defaults = settings.generation_defaults
    sizes = [f"{defaults.width}x{defaults.height}", *SIZES]
    return [size for size in dict.fromkeys(sizes) if _fits(size, settings.limits)]


def _fits(size: str, limits: Limits) -> bool:
    width, height = (int(side) for side in size.split("x"))
    return width <= limits.max_width and height <= limits.max_height and width * height <= limits.max_pixels


def build_commands(settings: Settings) -> list[AppCommand]:
    sizes = [app_commands.Choice(name=size, value=size) for size in size_choices(settings)]

    @app_commands.command(name="imagine", description=render("discord.command.imagine"))
    @app_commands.describe(
        prompt=render("discord.option.prompt"),
        negative=render("discord.option.negative"),
        size=render("discord.option.size"),
        steps=render("discord.option.steps"),
        guidance=render("discord.option.guidance"),
        seed=render("discord.option.seed"),
        count=render("discord.option.count"),
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

    @app_commands.command(name="edit", description=render("discord.command.edit"))
    @app_commands.describe(
        image=render("discord.option.image"),
        prompt=render("discord.option.change"),
        strength=render("discord.option.strength"),
    )
    async def edit(
        interaction: discord.Interaction, image: discord.Attachment, prompt: str, strength: float | None = None
    ) -> None:
        await _actions(interaction).edit(interaction, image, prompt, strength)

    @app_commands.command(name="inpaint", description=render("discord.command.inpaint"))
    @app_commands.describe(
        image=render("discord.option.image"),
        prompt=render("discord.option.change"),
        mask=render("discord.option.mask"),
        region=render("discord.option.region"),
    )
    async def inpaint(
        interaction: discord.Interaction,
        image: discord.Attachment,
        prompt: str,
        mask: discord.Attachment | None = None,
        region: str | None = None,
    ) -> None:
        await _actions(interaction).inpaint(interaction, image, prompt, mask, region)

    @app_commands.command(name="mix", description=render("discord.command.mix"))
    @app_commands.describe(
        image1=render("discord.option.mix_image"),
        image2=render("discord.option.mix_image"),
        image3=render("discord.option.mix_image"),
        image4=render("discord.option.mix_image"),
        prompt=render("discord.option.mix_prompt"),
        weights=render("discord.option.weights"),
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

    @app_commands.command(name="history", description=render("discord.command.history"))
    async def history(interaction: discord.Interaction) -> None:
        await _actions(interaction).history(interaction)

    @app_commands.command(name="quota", description=render("discord.command.quota"))
    async def quota(interaction: discord.Interaction) -> None:
        await _actions(interaction).quota(interaction)

    @app_commands.command(name="queue", description=render("discord.command.queue"))
    async def queue(interaction: discord.Interaction) -> None:
        await _actions(interaction).queue(interaction)

    @app_commands.command(name="cancel", description=render("discord.command.cancel"))
    @app_commands.describe(job=render("discord.option.job"))
    async def cancel(interaction: discord.Interaction, job: str | None = None) -> None:
        await _actions(interaction).cancel(interaction, job)

    @app_commands.context_menu(name=render("discord.command.edit_image"))
    async def edit_image(interaction: discord.Interaction, message: discord.Message) -> None:
        await _actions(interaction).open_edit_for_message(interaction, message)

    return [imagine, edit, inpaint, mix, history, quota, queue, cancel, edit_image]


def add_commands(tree: app_commands.CommandTree[Any], settings: Settings) -> None:
    """Register the commands in `guild_ids` when set (fast to update while developing), globally otherwise."""
    guilds = [discord.Object(guild_id) for guild_id in settings.discord.guild_ids]
    for command in build_commands(settings):
        if guilds:
            tree.add_command(command, guilds=guilds)
        else:
            tree.add_command(command)


async def sync_commands(tree: app_commands.CommandTree[Any], settings: Settings) -> list[str]:
    """Upload the command definitions to Discord; returns the names synced."""
    if not settings.discord.guild_ids:
        return [command.name for command in await tree.sync()]
    names: list[str] = []
    for guild_id in settings.discord.guild_ids:
        names += [command.name for command in await tree.sync(guild=discord.Object(guild_id))]
    return names
