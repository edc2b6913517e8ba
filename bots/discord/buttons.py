"""What can be done to a job from its messages: the buttons, the edit form, the "Edit image" menu, and a reply
with new text to one of the bot's images.

A button carries nothing but its action, the job id and an image number. Reroll, vary and edit make new jobs,
acknowledged like a command; cancel and delete are answered ephemerally.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import discord

from bots.core.facade import Core
from bots.core.types import Receipt
from bots.discord.images import Images
from bots.discord.interactions import PLATFORM, context_of_message, cut, quietly
from bots.discord.lookups import Lookups
from bots.discord.status import Status
from bots.discord.views import EditModal
from bots.errors import UserError
from bots.kit.context import Context
from bots.kit.views import Action
from bots.parsing import parse_prompt

log = logging.getLogger(__name__)

Locate = Callable[[], Awaitable[tuple[str, int | None]]]
"""The job an edit form is about and, when its message shows one image of it, which."""


@dataclass(frozen=True)
class Buttons:
    core: Core
    max_prompt_length: int
    images: Images
    lookups: Lookups

    async def on_button(self, interaction: discord.Interaction, action: Action, job_id: str, index: int | None) -> None:
        if action is Action.REROLL:
            await self.images.start(interaction, lambda c: self.core.reroll(c.actor, c.place, job_id), job_id)
        elif action is Action.VARY:
            await self.images.start(
                interaction, lambda c: self.core.variations(c.actor, c.place, job_id, index or 0), job_id
            )
        elif action is Action.EDIT:

            async def locate() -> tuple[str, int | None]:
                return job_id, None

            count = len(interaction.message.attachments) if interaction.message is not None else 1
            await self._open_form(interaction, locate, count, job_id)
        elif action is Action.DELETE:
            await self.lookups.delete(interaction, job_id)
        elif action is Action.CANCEL:
            await self.lookups.cancel(interaction, job_id, job_id)

    async def open_edit_for_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """The "Edit image" menu: the form first (it must be the first answer); the job is looked up on submit."""

        async def locate() -> tuple[str, int | None]:
            link = await self.core.job_of_message(PLATFORM, str(message.channel.id), str(message.id))
            if link is None:
                raise UserError("discord.not_a_result")
            return link.job_id, link.output_index

        await self._open_form(interaction, locate, max(1, len(message.attachments)), None)

    async def reply_edit(self, message: discord.Message) -> None:
        """A reply to one of the bot's images, with new text, edits it. Without an interaction nothing can be
        ephemeral: the answer is a reply, first "got it", then the status, the result or the refusal, in the
        language easel knows for the author (a message has none of its own)."""
        reference = message.reference
        if message.author.bot or reference is None or reference.message_id is None or not message.content.strip():
            return
        link = await self.core.job_of_message(PLATFORM, str(message.channel.id), str(reference.message_id))
        if link is None:
            return
        context = await context_of_message(self.core, message)
        try:
            reply = await message.reply(context.text("discord.received"), mention_author=False)
        except discord.HTTPException as error:  # 403: the bot may read this channel but not write in it
            log.warning("cannot answer message %s in channel %s: %s", message.id, message.channel.id, error)
            return

        async def submit(context: Context) -> Receipt:
            parsed = parse_prompt(message.content)
            index = link.output_index or 0
            return await self.core.edit(context.actor, context.place, link.job_id, index, parsed.prompt, parsed.options)

        async def say(text: str) -> None:
            await quietly(reply.edit(content=cut(text)))

        what = f"discord reply {message.id}"
        await self.images.queue(context, Status(message=reply), say, submit, what, link.job_id)

    async def _open_form(
        self, interaction: discord.Interaction, locate: Locate, count: int, job_id: str | None
    ) -> None:
        async def submitted(form: discord.Interaction, prompt: str, number: str) -> None:
            async def submit(context: Context) -> Receipt:
                edited, output_index = await locate()
                index = output_index if output_index is not None else _image_index(number, count)
                parsed = parse_prompt(prompt)
                return await self.core.edit(context.actor, context.place, edited, index, parsed.prompt, parsed.options)

            await self.images.start(form, submit, job_id)

        modal = EditModal(
            submitted, count=count, max_prompt_length=self.max_prompt_length, language=interaction.locale.value
        )
        try:
            await interaction.response.send_modal(modal)
        except discord.HTTPException as error:
            log.warning("could not open the edit form (job %s): %s", job_id, error)


def _image_index(number: str, count: int) -> int:
    try:
        return int(number.strip() or "1") - 1
    except ValueError:
        raise UserError("discord.bad_image_number", value=number, count=count) from None
