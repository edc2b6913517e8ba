"""What every Discord handler shares: one context per interaction or message, the acknowledgement, the one error
boundary (the kit's, with Discord's own refusals explained), and ephemeral answers that fit in a message.
"""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bots.core.facade import Core
from bots.core.types import Actor, Place, ShownMessage
from bots.kit.boundary import Say, explain, guarded
from bots.kit.context import Context
from bots.moderation.policy import Moderator, Role
from bots.parsing import parse_option
from bots.texts import render
from generation.asks import Options

if TYPE_CHECKING:
    from bots.discord.intake import Intake

log = logging.getLogger(__name__)

PLATFORM = "discord"
MESSAGE_LIMIT = 2000
MIN_MIX_IMAGES = 2
"""/mix declares two image options as required; a payload with fewer means Discord's copy of the command is old."""
UNKNOWN_INTERACTION = 10062
ALREADY_ACKNOWLEDGED = 40060


@dataclass(frozen=True)
class Reply:
    """An ephemeral answer with a file (an export)."""

    text: str
    file: discord.File


Produce = Callable[[Context], Awaitable[str | Reply]]


def context_of(interaction: discord.Interaction) -> Context:
    user = interaction.user
    actor = Actor(PLATFORM, str(user.id), user.display_name, interaction.locale.value, _roles(user))
    place = _place(interaction.channel, interaction.channel_id, interaction.guild_id, interaction.guild, interaction.id)
    intake: Intake = interaction.client.intake  # type: ignore[attr-defined]
    return Context(intake.core.speaking(actor), place)


def _roles(user: discord.User | discord.Member) -> tuple[str, ...]:
    """A member's roles by name and by id, for `[tiers.NAME] discord_roles`; none outside a server."""
    roles = getattr(user, "roles", ())
    return tuple(value for role in roles if not role.is_default() for value in (role.name, str(role.id)))


async def context_of_message(core: Core, message: discord.Message) -> Context:
    """A message carries no language: its author's choice, or the one easel last stored for them, else the
    server's. Its server is known even when discord.py has not cached it, so a reply is moderated like a command."""
    author, guild = message.author, message.guild
    actor = Actor(PLATFORM, str(author.id), author.display_name, roles=_roles(author))
    language = await core.language_of(actor) or (guild.preferred_locale.value if guild is not None else None)
    guild_id = guild.id if guild is not None else getattr(message.channel, "guild_id", None)
    place = _place(message.channel, message.channel.id, guild_id, guild, message.id)
    return Context(replace(actor, language=language), place)


def _place(
    channel: object, channel_id: int | None, guild_id: int | None, guild: discord.Guild | None, asked: int
) -> Place:
    """`asked` is the interaction or message that asks: the core's queued event names it back (`reply_to`)."""
    community = str(guild_id) if guild_id else None
    name = guild.name if guild is not None else None
    return Place(PLATFORM, str(channel_id), community, name, str(asked), is_nsfw(channel))


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


def is_nsfw(channel: object) -> bool:
    """Discord's age restriction of a channel; a DM or an unknown channel has none."""
    check = getattr(channel, "is_nsfw", None)
    return bool(check()) if callable(check) else False


def option(name: str, text: str | None) -> Options:
    """A slash command's option read by the shared parser, spaces dropped (`0.5, 0.5`); a forged payload may hold
    anything, and the parser names it."""
    return parse_option(name, "".join(text.split())) if text else Options()


# --- the error boundary ------------------------------------------------------------------------


def forbidden(error: BaseException, language: str | None) -> str | None:
    """Discord's own refusal, a permission the bot lacks in this channel: the user is told, no bug is logged."""
    if not isinstance(error, discord.Forbidden):
        return None
    log.warning("discord refused a call: %s", error)
    return render("discord.forbidden", language)


def guard(say: Say, context: Context, *, what: str, job_id: str | None = None) -> AbstractAsyncContextManager[None]:
    """The adapter's one error boundary: whatever a handler raises is explained to `say` in the user's language,
    with the kit's reference (the short job id when it is about a job)."""
    return guarded(say, context.language, job_id=job_id, what=what, known=forbidden)


def refusals_to(interaction: discord.Interaction, *, public: bool) -> Say:
    """Refusals are seen only by the one who asked: a public deferred response is removed first."""

    async def say(text: str) -> None:
        if public:
            await quietly(interaction.delete_original_response())
        await quietly(interaction.followup.send(cut(text), ephemeral=True))

    return say


def described(interaction: discord.Interaction) -> str:
    """What the log calls an interaction that failed."""
    command = interaction.command
    name = f"/{command.qualified_name}" if command is not None else interaction.type.name
    return f"discord {name} (interaction {interaction.id})"


async def on_command_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
    """Errors discord.py raises before a handler runs: a payload that does not fit the command's options."""
    language = context_of(interaction).language
    if isinstance(error, app_commands.CommandSignatureMismatch):
        attached = sum(isinstance(value, discord.Attachment) for _, value in interaction.namespace)
        if error.command.name == "mix" and attached < MIN_MIX_IMAGES:
            text = render("discord.mix_too_few", language, minimum=MIN_MIX_IMAGES, count=attached)
        else:
            text = render("discord.command_mismatch", language, command=error.command.name)
    else:
        cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        text = explain(cause, language, what=described(interaction), known=forbidden)
    if interaction.response.is_done():
        await quietly(interaction.followup.send(cut(text), ephemeral=True))
    else:
        await quietly(interaction.response.send_message(cut(text), ephemeral=True))


# --- answers -------------------------------------------------------------------------------------


async def answer(interaction: discord.Interaction, produce: Produce, *, job_id: str | None = None) -> None:
    """Defer ephemerally, then answer with what `produce` says, or with the refusal."""
    async with acknowledged(interaction, ephemeral=True) as deferred:
        if deferred is None:
            return
        context = context_of(interaction)
        async with guard(refusals_to(interaction, public=False), context, what=described(interaction), job_id=job_id):
            reply = await produce(context)
            if isinstance(reply, Reply):
                await interaction.followup.send(cut(reply.text), file=reply.file, ephemeral=True)
            else:
                await interaction.followup.send(cut(reply), ephemeral=True)


@dataclass(frozen=True)
class Deferred:
    """The acknowledgement: `message_id` is the deferred response's, when Discord named it."""

    message_id: int | None


@asynccontextmanager
async def acknowledged(interaction: discord.Interaction, *, ephemeral: bool) -> AsyncIterator[Deferred | None]:
    """The one way an interaction is acknowledged: recorded in the inbox first, then deferred, then handled in the
    body, so that a kill at any point leaves it recorded and unhandled, for the next start (`bots.discord.intake`).
    None when nothing can be said: received before, or Discord refused the acknowledgement."""
    intake: Intake = interaction.client.intake  # type: ignore[attr-defined]
    if not await intake.take(interaction.id):
        yield None
        return
    deferred = await _defer(interaction, ephemeral=ephemeral)
    if deferred is None:
        await intake.handled(interaction.id)
        yield None
        return
    async with intake.handling(interaction.id):
        yield deferred


async def _defer(interaction: discord.Interaction, *, ephemeral: bool) -> Deferred | None:
    """The acknowledgement Discord wants within 3 seconds. Handled again after a kill, the interaction may have
    been deferred already: that response is carried on. None when Discord refused it (never acknowledged in
    time, or expired): then nothing can be said."""
    try:
        response = await interaction.response.defer(ephemeral=ephemeral, thinking=True)
        return Deferred(response.message_id if response is not None else None)
    except discord.HTTPException as error:
        if error.code == ALREADY_ACKNOWLEDGED:
            return Deferred(await _original_id(interaction))
        if error.code == UNKNOWN_INTERACTION:
            log.warning("%s was not acknowledged in time; Discord told its user it failed", described(interaction))
        else:
            log.warning("could not acknowledge interaction %s: %s", interaction.id, error)
        return None


async def _original_id(interaction: discord.Interaction) -> int | None:
    try:
        return (await interaction.original_response()).id
    except discord.HTTPException as error:
        log.info("interaction %s: its deferred response is gone: %s", interaction.id, error)
        return None


async def quietly(call: Awaitable[Any]) -> None:
    """A reply that may fail (the channel or the token is gone); the failure is logged, never raised."""
    try:
        await call
    except discord.HTTPException as error:
        log.warning("could not answer on Discord: %s", error)


async def delete_messages(client: discord.Client, shown: Sequence[ShownMessage]) -> bool:
    """Remove the messages that showed deleted images; True when Discord refused to remove some of them."""
    refused = False
    for link in shown:
        channel = client.get_partial_messageable(int(link.chat_id))
        try:
            await channel.get_partial_message(int(link.message_id)).delete()
        except discord.NotFound:
            continue
        except discord.Forbidden as error:
            log.warning("cannot delete message %s of job %s: %s", link.message_id, link.job_id, error)
            refused = True
    return refused


def listed(title: str, lines: Sequence[str], name: str, *, fenced: bool = True) -> str | Reply:
    """`title` and the lines (in a code block when `fenced`) in one message when they fit; else the title with
    every line in a text file `name`.txt: a list is never cut."""
    body = "\n".join(lines)
    shown = f"```\n{body}\n```" if fenced else body
    text = f"{title}\n{shown}" if title else shown
    if len(text) <= MESSAGE_LIMIT:
        return text
    return Reply(title, discord.File(io.BytesIO(body.encode()), filename=f"{name}.txt"))


def cut(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """Any text within Discord's message limit: refusals quote what users typed, which may be long."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
