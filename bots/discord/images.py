"""The commands that make images (/imagine, /edit, /outpaint, /remix, /inpaint, /mix, /grid), a grid's cell sent
alone, and the acknowledgement every job shares.

A command is recorded and deferred publicly at once (`interactions.acknowledged`: Discord wants an answer within 3
seconds and never sends the interaction again), and its deferred response becomes
the job's status message when the core queues the job: the status is expected under the interaction's id, which
the queued event names back. A refusal removes the deferred response and is told ephemerally.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import discord

from bots.config import Settings
from bots.core.facade import Core
from bots.core.types import Receipt
from bots.discord.interactions import (
    MESSAGE_LIMIT,
    PLATFORM,
    acknowledged,
    context_of,
    described,
    guard,
    option,
    refusals_to,
)
from bots.discord.status import Status, StatusBoard
from bots.discord.uploads import fit_upload, read_images
from bots.discord.views import discord_view
from bots.errors import UserError
from bots.kit.boundary import Say
from bots.kit.context import Context
from bots.kit.views import view_of
from bots.parsing import parse_grid, parse_prompt
from generation.asks import Ask, Options

NEEDED_PERMISSIONS = ("view_channel", "send_messages", "attach_files")
"""What a result posted in the channel needs, once the interaction token that could answer has expired."""

Submit = Callable[[Context], Awaitable[Receipt]]


class Images:
    def __init__(self, core: Core, settings: Settings, board: StatusBoard) -> None:
        self.core = core
        self.board = board
        self.max_download_mb = settings.discord.max_download_mb

    async def imagine(
        self,
        interaction: discord.Interaction,
        prompt: str,
        chosen: Options,
        size: str | None,
        aspect: str | None,
        style: str | None,
    ) -> None:
        """`chosen` are the command's own options; they win over those typed after the prompt."""

        async def submit(context: Context) -> Receipt:
            parsed = parse_prompt(prompt)
            named = option("size", size).over(option("ar", aspect)).over(option("style", style))
            options = chosen.over(named.over(parsed.options))
            return await self.core.submit(context.actor, context.place, Ask("txt2img", parsed.prompt, options))

        await self.start(interaction, submit)

    async def transform(
        self, interaction: discord.Interaction, operation: str, image: discord.Attachment, prompt: str, chosen: Options
    ) -> None:
        """/edit, /outpaint, /remix, /depth: one attached image and a prompt; `chosen` (the command's options) win over
        those typed after the prompt."""

        async def submit(context: Context) -> Receipt:
            parsed = parse_prompt(prompt)
            (data,) = await read_images([image], self.max_download_mb)
            ask = Ask(operation, parsed.prompt, chosen.over(parsed.options), image=data)
            return await self.core.submit(context.actor, context.place, ask)

        await self.start(interaction, submit)

    async def inpaint(
        self,
        interaction: discord.Interaction,
        image: discord.Attachment,
        prompt: str,
        mask: discord.Attachment | None,
        region: str | None,
    ) -> None:
        async def submit(context: Context) -> Receipt:
            parsed = parse_prompt(prompt)
            options = option("region", region).over(parsed.options)
            data, *masks = await read_images([image] if mask is None else [image, mask], self.max_download_mb)
            ask = Ask("inpaint", parsed.prompt, options, image=data, mask_image=masks[0] if masks else None)
            return await self.core.submit(context.actor, context.place, ask)

        await self.start(interaction, submit)

    async def mix(
        self,
        interaction: discord.Interaction,
        images: list[discord.Attachment],
        prompt: str | None,
        weights: str | None,
    ) -> None:
        async def submit(context: Context) -> Receipt:
            parsed = parse_prompt(prompt or "")
            options = option("weights", weights).over(parsed.options)
            items: list[bytes | str] = [*await read_images(images, self.max_download_mb)]
            if parsed.prompt:
                items.append(parsed.prompt)
            return await self.core.submit(context.actor, context.place, Ask("mix", "", options, mix=tuple(items)))

        await self.start(interaction, submit)

    async def grid(
        self,
        interaction: discord.Interaction,
        prompt: str,
        lists: dict[str, str | None],
        size: str | None,
        style: str | None,
        negative: str | None,
    ) -> None:
        """/grid: the comma lists of its options read as if typed after the prompt (spaces dropped)."""

        async def submit(context: Context) -> Receipt:
            typed = " ".join(f"--{name} {''.join(value.split())}" for name, value in lists.items() if value)
            parsed, axes = parse_grid(f"{prompt} {typed}")
            named = option("size", size).over(option("style", style))
            options = Options(negative_prompt=negative).over(named.over(parsed.options))
            return await self.core.grid(context.actor, context.place, Ask("txt2img", parsed.prompt, options), axes)

        await self.start(interaction, submit)

    async def cell(self, interaction: discord.Interaction, job_id: str, index: int) -> None:
        """A grid's cell alone, as the public answer to its button: its image with its own buttons, linked to the
        cell's job so that replies and buttons on it act on that cell."""
        async with acknowledged(interaction, ephemeral=False) as deferred:
            if deferred is None:
                return
            context = context_of(interaction)
            say = refusals_to(interaction, public=True)
            async with guard(say, context, what=described(interaction), job_id=job_id):
                view = view_of(await self.core.cell(context.actor, context.place, job_id, index))
                status = Status(interaction=interaction, response_id=deferred.message_id)
                uploads = await asyncio.to_thread(
                    lambda: [fit_upload(p.path, status.upload_limit, spoiler=view.spoiler) for p in view.pictures]
                )
                message = await status.show(view.caption(MESSAGE_LIMIT), discord_view(view.buttons), uploads)
                channel = str(interaction.channel_id)
                await self.core.link_message(PLATFORM, channel, str(message.id), view.event.job_id, 0)

    async def start(self, interaction: discord.Interaction, submit: Submit, job_id: str | None = None) -> None:
        """Defer publicly, then queue the job with the deferred response as its status; `job_id` is the job a
        button or form acts on, for the reference of an error."""
        async with acknowledged(interaction, ephemeral=False) as deferred:
            if deferred is None:
                return

            async def checked(context: Context) -> Receipt:
                _check_permissions(interaction)
                return await submit(context)

            status = Status(interaction=interaction, response_id=deferred.message_id)
            say = refusals_to(interaction, public=True)
            await self.queue(context_of(interaction), status, say, checked, described(interaction), job_id)

    async def queue(
        self, context: Context, status: Status, say: Say, submit: Submit, what: str, job_id: str | None = None
    ) -> None:
        """Submit with `status` expected under the asking message's id, for the queued event to claim; when the
        core refuses, nothing claims it, and the refusal is said."""
        key = context.place.message_id
        assert key is not None, "a Discord place always names what asked"
        self.board.expect(key, status)
        try:
            async with guard(say, context, what=what, job_id=job_id):
                await submit(context)
        finally:
            self.board.drop(key)


def _check_permissions(interaction: discord.Interaction) -> None:
    """Refuse before queueing what could not be delivered once the interaction token has expired."""
    if interaction.guild_id is None:
        return
    permissions = interaction.app_permissions
    missing = [name for name in NEEDED_PERMISSIONS if not getattr(permissions, name)]
    if missing:
        raise UserError("discord.missing_permissions", permissions=", ".join(missing))
