"""What can be done to a job from its messages: the buttons, the edit form, the "Edit image" menu, and a reply
with new text to one of the bot's images.

A button carries nothing but its action, the job id and an image number. Reroll, vary and edit make new jobs,
acknowledged like a command; cancel and delete are answered ephemerally.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import discord

from bots.core.facade import Core
from bots.core.types import Receipt, ShownMessage
from bots.discord.images import Images
from bots.discord.intake import Intake
from bots.discord.interactions import PLATFORM, context_of, context_of_message, cut, quietly
from bots.discord.lookups import Lookups
from bots.discord.status import Status
from bots.discord.views import FORM, EditModal, form_id
from bots.errors import UserError
from bots.kit.context import Context
from bots.kit.views import OUTPAINTS, Action
from bots.parsing import parse_prompt

log = logging.getLogger(__name__)


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
        elif action in OUTPAINTS:
            options = OUTPAINTS[action]
            await self.images.start(
                interaction, lambda c: self.core.outpaint(c.actor, c.place, job_id, index or 0, options), job_id
            )
        elif action is Action.CELL:
            await self.images.cell(interaction, job_id, index or 0)
        elif action is Action.EDIT:
            count = len(interaction.message.attachments) if interaction.message is not None else 1
            await self._open_form(interaction, count, f"job:{job_id}")
        elif action is Action.DELETE:
            await self.lookups.delete(interaction, job_id)
        elif action is Action.CANCEL:
            await self.lookups.cancel(interaction, job_id, job_id)

    async def open_edit_for_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """The "Edit image" menu: the form first (it must be the first answer); the job is looked up on submit."""
        await self._open_form(
            interaction, max(1, len(message.attachments)), f"message:{message.channel.id}:{message.id}"
        )

    async def reply_edit(self, message: discord.Message, intake: Intake) -> None:
        """A reply to one of the bot's images, with new text, edits it. Without an interaction nothing can be
        ephemeral: the answer is a reply, first "got it", then the status, the result or the refusal, in the
        language easel knows for the author (a message has none of its own). Discord never sends a message
        again, so it is recorded before "got it", like an interaction; the reply's nonce makes a "got it" sent
        again after a kill the same message, within the minutes Discord remembers nonces."""
        reference = message.reference
        if message.author.bot or reference is None or reference.message_id is None or not message.content.strip():
            return
        link = await self.core.job_of_message(PLATFORM, str(message.channel.id), str(reference.message_id))
        if link is None or not await intake.take(message.id):
            return
        async with intake.handling(message.id):
            await self._edit_by_reply(message, link)

    async def _edit_by_reply(self, message: discord.Message, link: ShownMessage) -> None:
        context = await context_of_message(self.core, message)
        try:
            reply = await message.reply(context.text("discord.received"), mention_author=False, nonce=message.id)
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

    async def _open_form(self, interaction: discord.Interaction, count: int, target: str) -> None:
        language = context_of(interaction).language  # the user's /language choice, else Discord's
        modal = self._form(form_id(interaction.id, count, target), count, target, language)
        try:
            await interaction.response.send_modal(modal)
        except discord.HTTPException as error:
            log.warning("could not open the edit form (%s): %s", target, error)

    def form(self, custom_id: str, language: str | None) -> EditModal | None:
        """The edit form that `custom_id` describes (`views.FORM`), or None when it describes none."""
        match = FORM.fullmatch(custom_id)
        if match is None:
            return None
        return self._form(custom_id, int(match["count"]), match["target"], language)

    def _form(self, custom_id: str, count: int, subject: str, language: str | None) -> EditModal:
        kind, _, target = subject.partition(":")
        job_id = target if kind == "job" else None

        async def locate() -> tuple[str, int | None]:
            if job_id is not None:
                return job_id, None
            channel_id, message_id = target.split(":")
            link = await self.core.job_of_message(PLATFORM, channel_id, message_id)
            if link is None:
                raise UserError("discord.not_a_result")
            return link.job_id, link.output_index

        async def submitted(form: discord.Interaction, prompt: str, number: str) -> None:
            async def submit(context: Context) -> Receipt:
                edited, output_index = await locate()
                index = output_index if output_index is not None else _image_index(number, count)
                parsed = parse_prompt(prompt)
                return await self.core.edit(context.actor, context.place, edited, index, parsed.prompt, parsed.options)

            await self.images.start(form, submit, job_id)

        return EditModal(
            submitted, custom_id=custom_id, count=count, max_prompt_length=self.max_prompt_length, language=language
        )


def _image_index(number: str, count: int) -> int:
    try:
        return int(number.strip() or "1") - 1
    except ValueError:
        raise UserError("discord.bad_image_number", value=number, count=count) from None
