"""Discord interactions and messages turned into core calls.

Every handler acknowledges at once (Discord wants an answer within 3 seconds): commands that make images defer
publicly, and their deferred response becomes the job's status message; lookups defer ephemerally. Refusals and
failures of every kind end in `_refuse`, the adapter's one error boundary, as an ephemeral reply.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bots.config import Settings
from bots.core.facade import Core
from bots.core.types import Actor, Place, Receipt, short_id
from bots.discord.status import Status, StatusBoard
from bots.discord.uploads import read_images
from bots.discord.views import EditModal, status_view
from bots.errors import UserError
from bots.formatting import history_lines, queue_lines, queued_text, quota_text
from bots.moderation.policy import Moderator, Role
from bots.parsing import parse_option, parse_prompt
from bots.texts import render
from generation.asks import Ask, Options

if TYPE_CHECKING:
    from storage.records import MessageLink

log = logging.getLogger(__name__)

PLATFORM = "discord"
MESSAGE_LIMIT = 2000
MIN_MIX_IMAGES = 2
"""/mix declares two image options as required; a payload with fewer means Discord's copy of the command is old."""
NEEDED_PERMISSIONS = ("view_channel", "send_messages", "attach_files")
"""What a result posted in the channel needs, once the interaction token that could answer has expired."""

StartJob = Callable[[Actor, Place], Awaitable[Receipt]]


@dataclass(frozen=True)
class Reply:
    """An ephemeral answer with a file (an export)."""

    text: str
    file: discord.File


Produce = Callable[[Actor], Awaitable[str | Reply]]


class Actions:
    def __init__(self, service: Core, settings: Settings, board: StatusBoard) -> None:
        self.service = service
        self.settings = settings
        self.board = board

    # --- commands that make images ------------------------------------------------------------

    async def imagine(
        self,
        interaction: discord.Interaction,
        prompt: str,
        *,
        negative: str | None,
        size: str | None,
        steps: int | None,
        guidance: float | None,
        seed: int | None,
        count: int | None,
    ) -> None:
        async def start(actor: Actor, place: Place) -> Receipt:
            parsed = parse_prompt(prompt)
            chosen = Options(negative_prompt=negative, steps=steps, guidance_scale=guidance, seed=seed, count=count)
            options = chosen.over(_size(size).over(parsed.options))
            return await self.service.submit(actor, place, Ask("txt2img", parsed.prompt, options))

        await self._start_job(interaction, start)

    async def edit(
        self, interaction: discord.Interaction, image: discord.Attachment, prompt: str, strength: float | None
    ) -> None:
        async def start(actor: Actor, place: Place) -> Receipt:
            parsed = parse_prompt(prompt)
            (data,) = await read_images([image], self.settings.discord.max_download_mb)
            options = Options(strength=strength).over(parsed.options)
            return await self.service.submit(actor, place, Ask("img2img", parsed.prompt, options, image=data))

        await self._start_job(interaction, start)

    async def inpaint(
        self,
        interaction: discord.Interaction,
        image: discord.Attachment,
        prompt: str,
        mask: discord.Attachment | None,
        region: str | None,
    ) -> None:
        async def start(actor: Actor, place: Place) -> Receipt:
            parsed = parse_prompt(prompt)
            options = parsed.options
            if region:
                options = parse_option("region", "".join(region.split())).over(options)
            data, *masks = await read_images(
                [image] if mask is None else [image, mask], self.settings.discord.max_download_mb
            )
            ask = Ask("inpaint", parsed.prompt, options, image=data, mask_image=masks[0] if masks else None)
            return await self.service.submit(actor, place, ask)

        await self._start_job(interaction, start)

    async def mix(
        self,
        interaction: discord.Interaction,
        images: list[discord.Attachment],
        prompt: str | None,
        weights: str | None,
    ) -> None:
        async def start(actor: Actor, place: Place) -> Receipt:
            parsed = parse_prompt(prompt or "")
            options = parsed.options
            if weights:
                options = Options(weights=_weights(weights)).over(options)
            items: list[bytes | str] = [*await read_images(images, self.settings.discord.max_download_mb)]
            if parsed.prompt:
                items.append(parsed.prompt)
            return await self.service.submit(actor, place, Ask("mix", "", options, mix=tuple(items)))

        await self._start_job(interaction, start)

    # --- buttons, the edit modal and the context menu -------------------------------------------

    async def on_button(self, interaction: discord.Interaction, action: str, job_id: str, index: int | None) -> None:
        if action == "reroll":
            await self._start_job(interaction, lambda actor, place: self.service.reroll(actor, place, job_id), job_id)
        elif action == "vary":
            await self._start_job(
                interaction, lambda actor, place: self.service.variations(actor, place, job_id, index or 0), job_id
            )
        elif action == "edit":
            count = len(interaction.message.attachments) if interaction.message is not None else 1

            async def locate() -> tuple[str, int | None]:
                return job_id, None

            async def submit(modal_interaction: discord.Interaction, prompt: str, number: str) -> None:
                await self._edit_job(modal_interaction, locate, prompt, number, count)

            await self._open_modal(interaction, submit, count, job_id)
        elif action == "delete":
            await self.answer(interaction, lambda actor: self._delete(interaction, actor, job_id), job_id)
        elif action == "cancel":
            await self.answer(interaction, lambda actor: self._cancel(interaction, actor, job_id), job_id)

    async def open_edit_for_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """The "Edit image" menu: the modal first (it must be the first answer); the job is looked up on submit."""
        count = max(1, len(message.attachments))

        async def locate() -> tuple[str, int | None]:
            link = await self.service.job_of_message(PLATFORM, str(message.channel.id), str(message.id))
            if link is None:
                raise UserError("discord.not_a_result")
            return link.job_id, link.output_index

        async def submit(modal_interaction: discord.Interaction, prompt: str, number: str) -> None:
            await self._edit_job(modal_interaction, locate, prompt, number, count)

        await self._open_modal(interaction, submit, count, None)

    async def reply_edit(self, message: discord.Message) -> None:
        """A reply to one of the bot's images, with new text, edits it. Without an interaction nothing can be
        ephemeral: the answer is a reply, first "got it", then the status, the result or the refusal."""
        reference = message.reference
        if message.author.bot or reference is None or reference.message_id is None or not message.content.strip():
            return
        channel_id = str(message.channel.id)
        link = await self.service.job_of_message(PLATFORM, channel_id, str(reference.message_id))
        if link is None:
            return
        actor = Actor(PLATFORM, str(message.author.id), message.author.display_name)
        guild = message.guild
        community, name = (str(guild.id), guild.name) if guild else (None, None)
        place = Place(PLATFORM, channel_id, community, name, nsfw=_is_nsfw(message.channel))
        try:
            status = await message.reply(render("discord.received"), mention_author=False)
        except discord.HTTPException as error:  # 403: the bot may read this channel but not write in it
            log.warning("cannot answer message %s in channel %s: %s", message.id, channel_id, error)
            return
        try:
            parsed = parse_prompt(message.content)
            index = link.output_index or 0
            receipt = await self.service.edit(actor, place, link.job_id, index, parsed.prompt, parsed.options)
        except Exception as error:
            text = self._refusal_text(error, actor.language, short_id(link.job_id))
            await _quietly(status.edit(content=text))
            return
        self._track(receipt, Status(message=status), actor.language)

    # --- lookups ----------------------------------------------------------------------------------

    async def history(self, interaction: discord.Interaction) -> None:
        async def produce(actor: Actor) -> str:
            lines = history_lines(await self.service.history(actor), actor.language)
            return fenced(lines) if lines else render("history.empty", actor.language)

        await self.answer(interaction, produce)

    async def quota(self, interaction: discord.Interaction) -> None:
        async def produce(actor: Actor) -> str:
            return quota_text(await self.service.quota(actor), actor.language)

        await self.answer(interaction, produce)

    async def queue(self, interaction: discord.Interaction) -> None:
        async def produce(actor: Actor) -> str:
            lines = queue_lines(await self.service.queue(actor), actor.language)
            return "\n".join(lines) if lines else render("queue.empty", actor.language)

        await self.answer(interaction, produce)

    async def cancel(self, interaction: discord.Interaction, job: str | None) -> None:
        await self.answer(interaction, lambda actor: self._cancel(interaction, actor, job))

    async def on_command_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        """Errors discord.py raises before a handler runs: a payload that does not fit the command's options."""
        language = interaction.locale.value
        if isinstance(error, app_commands.CommandSignatureMismatch):
            attached = sum(isinstance(value, discord.Attachment) for _, value in interaction.namespace)
            if error.command.name == "mix" and attached < MIN_MIX_IMAGES:
                text = render("discord.mix_too_few", language, minimum=MIN_MIX_IMAGES, count=attached)
            else:
                text = render("discord.command_mismatch", language, command=error.command.name)
        else:
            text = self._refusal_text(error, language, str(interaction.id))
        if interaction.response.is_done():
            await _quietly(interaction.followup.send(text, ephemeral=True))
        else:
            await _quietly(interaction.response.send_message(text, ephemeral=True))

    # --- internals --------------------------------------------------------------------------------

    async def _start_job(self, interaction: discord.Interaction, start: StartJob, job_id: str | None = None) -> None:
        """Defer publicly, start the job, and make the deferred response its status message."""
        deferred = await _defer(interaction, ephemeral=False)
        if deferred is None:
            return
        actor, place = actor_of(interaction), place_of(interaction)
        try:
            _check_permissions(interaction)
            receipt = await start(actor, place)
        except Exception as error:
            await self._refuse(interaction, error, short_id(job_id) if job_id else str(interaction.id), public=True)
            return
        self._track(receipt, Status(interaction=interaction, response_id=deferred.message_id), actor.language)

    def _track(self, receipt: Receipt, status: Status, language: str | None) -> None:
        self.board.track(receipt.job_id, status)
        text = queued_text(receipt.position, receipt.eta_seconds, language)
        self.board.show(receipt.job_id, text, status_view(receipt.job_id, language))

    async def answer(self, interaction: discord.Interaction, produce: Produce, job_id: str | None = None) -> None:
        """Defer ephemerally, then answer with what `produce` says, or with the refusal."""
        if await _defer(interaction, ephemeral=True) is None:
            return
        actor = actor_of(interaction)
        try:
            reply = await produce(actor)
            if isinstance(reply, Reply):
                await interaction.followup.send(_cut(reply.text), file=reply.file, ephemeral=True)
            else:
                await interaction.followup.send(_cut(reply), ephemeral=True)
        except Exception as error:
            await self._refuse(interaction, error, short_id(job_id) if job_id else str(interaction.id), public=False)

    async def _open_modal(
        self,
        interaction: discord.Interaction,
        submit: Callable[[discord.Interaction, str, str], Awaitable[None]],
        count: int,
        job_id: str | None,
    ) -> None:
        modal = EditModal(
            submit,
            count=count,
            max_prompt_length=self.settings.limits.max_prompt_length,
            language=interaction.locale.value,
        )
        try:
            await interaction.response.send_modal(modal)
        except discord.HTTPException as error:
            log.warning("could not open the edit form (job %s): %s", job_id, error)

    async def _edit_job(
        self,
        interaction: discord.Interaction,
        locate: Callable[[], Awaitable[tuple[str, int | None]]],
        prompt: str,
        number: str,
        count: int,
    ) -> None:
        """An edit modal was submitted: `locate` names the job and, when the message shows one image of it, which."""

        async def start(actor: Actor, place: Place) -> Receipt:
            job_id, output_index = await locate()
            index = output_index if output_index is not None else _image_index(number, count)
            parsed = parse_prompt(prompt)
            return await self.service.edit(actor, place, job_id, index, parsed.prompt, parsed.options)

        await self._start_job(interaction, start)

    async def _cancel(self, interaction: discord.Interaction, actor: Actor, reference: str | None) -> str:
        """The core decides whether the actor, or the moderator they are here, may cancel that job."""
        moderator = moderator_of(interaction, self.settings.moderation.moderator_role)
        cancellation = await self.service.cancel(actor, reference, moderator)
        return render(f"cancel.{cancellation.outcome}", actor.language, job_id=short_id(cancellation.job_id))

    async def _delete(self, interaction: discord.Interaction, actor: Actor, job_id: str) -> str:
        """Delete the job (the core checks it is the actor's, or that they moderate its server), then every
        message that showed it."""
        moderator = moderator_of(interaction, self.settings.moderation.moderator_role)
        links = await self.service.delete(actor, job_id, moderator)
        refused = await delete_messages(interaction.client, links)
        deleted = render("deleted", actor.language, job_id=short_id(job_id))
        return deleted + ("\n" + render("discord.forbidden", actor.language) if refused else "")

    async def _refuse(
        self, interaction: discord.Interaction, error: Exception, reference: str, *, public: bool
    ) -> None:
        """The error boundary: a refusal the user can act on, or a bug logged with its reference. A public
        deferred response is removed so that the refusal is seen only by the one who asked."""
        text = self._refusal_text(error, interaction.locale.value, reference)
        if public:
            await _quietly(interaction.delete_original_response())
        await _quietly(interaction.followup.send(text, ephemeral=True))

    @staticmethod
    def _refusal_text(error: Exception, language: str | None, reference: str) -> str:
        if isinstance(error, UserError):
            return render(error.key, language, **error.values)
        if isinstance(error, discord.Forbidden):
            log.warning("discord refused a call (reference %s): %s", reference, error)
            return render("discord.forbidden", language)
        log.error("discord request failed (reference %s)", reference, exc_info=error)
        return render("error.internal", language, reference=reference)


def actor_of(interaction: discord.Interaction) -> Actor:
    user = interaction.user
    return Actor(PLATFORM, str(user.id), user.display_name, interaction.locale.value)


def place_of(interaction: discord.Interaction) -> Place:
    guild = interaction.guild
    community = str(interaction.guild_id) if interaction.guild_id else None
    name = guild.name if guild is not None else None
    return Place(PLATFORM, str(interaction.channel_id), community, name, nsfw=_is_nsfw(interaction.channel))


def moderator_of(interaction: discord.Interaction, moderator_role: str) -> Moderator:
    """What Discord says of the member who acts: Manage Server makes an admin, the configured role a moderator.
    The core decides what each role may do (and raises bot owners)."""
    user = interaction.user
    community = str(interaction.guild_id) if interaction.guild_id else None
    role = Role.USER
    if community is not None and interaction.permissions.manage_guild:
        role = Role.ADMIN
    elif isinstance(user, discord.Member) and any(held.name == moderator_role for held in user.roles):
        role = Role.MODERATOR
    return Moderator(PLATFORM, str(user.id), community, role, user.display_name)


async def delete_messages(client: discord.Client, links: Sequence[MessageLink]) -> bool:
    """Remove the messages that showed deleted images; True when Discord refused to remove some of them."""
    refused = False
    for link in links:
        channel = client.get_partial_messageable(int(link.chat_id))
        try:
            await channel.get_partial_message(int(link.message_id)).delete()
        except discord.NotFound:
            continue
        except discord.Forbidden as error:
            log.warning("cannot delete message %s of job %s: %s", link.message_id, link.job_id, error)
            refused = True
    return refused


def _is_nsfw(channel: object) -> bool:
    """Discord's age restriction of a channel; a DM or an unknown channel has none."""
    is_nsfw = getattr(channel, "is_nsfw", None)
    return bool(is_nsfw()) if callable(is_nsfw) else False


def _check_permissions(interaction: discord.Interaction) -> None:
    """Refuse before queueing what could not be delivered once the interaction token has expired."""
    if interaction.guild_id is None:
        return
    permissions = interaction.app_permissions
    missing = [name for name in NEEDED_PERMISSIONS if not getattr(permissions, name)]
    if missing:
        raise UserError("discord.missing_permissions", permissions=", ".join(missing))


async def _defer(
    interaction: discord.Interaction, *, ephemeral: bool
) -> discord.InteractionCallbackResponse[discord.Client] | None:
    """The acknowledgement, or None when Discord refused it (expired, or answered elsewhere): nothing can be said."""
    try:
        return await interaction.response.defer(ephemeral=ephemeral, thinking=True)
    except discord.HTTPException as error:
        log.warning("could not acknowledge interaction %s: %s", interaction.id, error)
        return None


async def _quietly(call: Awaitable[Any]) -> None:
    """A reply that may fail (the channel or the token is gone); the failure is logged, never raised."""
    try:
        await call
    except discord.HTTPException as error:
        log.warning("could not answer on Discord: %s", error)


def _size(size: str | None) -> Options:
    """A size choice, read by the shared parser (a forged payload may hold anything)."""
    return parse_option("size", "".join(size.split())) if size else Options()


def _weights(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise UserError("discord.bad_weights", value=text) from None


def _image_index(number: str, count: int) -> int:
    try:
        return int(number.strip() or "1") - 1
    except ValueError:
        raise UserError("discord.bad_image_number", value=number, count=count) from None


def fenced(lines: list[str]) -> str:
    """Lines in a code block, as many as fit in one message."""
    kept: list[str] = []
    room = MESSAGE_LIMIT - len("```\n\n```")
    for line in lines:
        room -= len(line) + 1
        if room < 0:
            break
        kept.append(line)
    return "```\n" + "\n".join(kept) + "\n```"


def _cut(text: str) -> str:
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"
