"""Telegram updates to core calls.

Commands are read from the text or the caption alike (PTB's CommandHandler skips captions, and a photo
captioned `/inpaint ...` is a command here). In groups the bot answers only when addressed: a command,
an @mention, or a reply to one of its messages (`group_trigger`). Every refusal is a `UserError`,
answered in the user's language at one boundary per update.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from telegram import Bot, CallbackQuery, ForceReply, Message, ReplyParameters, Update
from telegram import User as TelegramUser
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import Application, CallbackQueryHandler, ContextTypes, MessageHandler, filters

from bots.config import TelegramSettings
from bots.core.facade import Core
from bots.core.types import Actor, Place, short_id
from bots.errors import UserError
from bots.formatting import history_lines, preferences_text, queue_lines, quota_text
from bots.parsing import parse_prompt
from bots.telegram.admins import Admins
from bots.telegram.albums import Albums
from bots.telegram.delivery import PLATFORM
from bots.telegram.downloads import Downloads
from bots.telegram.keyboards import Press, parse
from bots.telegram.moderation import ModerationCommands
from bots.texts import render
from generation.asks import Ask, Options
from storage.records import MessageLink

log = logging.getLogger(__name__)

MAX_ALBUM = 4
COMMANDS = ("imagine", "edit", "inpaint", "mix", "history", "queue", "quota", "cancel", "settings", "help")
_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]{3,64}))?(?:\s+|$)(.*)$", re.DOTALL)

Command = Callable[[Message, str], Awaitable[None]]


class Handlers:
    def __init__(self, service: Core, settings: TelegramSettings, downloads: Downloads, admins: Admins) -> None:
        self.service = service
        self.settings = settings
        self.downloads = downloads
        self.admins = admins
        self.albums = Albums(settings.album_wait_seconds, self._album)
        self._bot: Bot | None = None
        self._commands: dict[str, Command] = {
            "start": self._help,
            "help": self._help,
            "imagine": self._imagine,
            "edit": self._edit,
            "inpaint": self._inpaint,
            "mix": self._mix,
            "history": self._history,
            "queue": self._queue,
            "quota": self._quota,
            "cancel": self._cancel,
            "settings": self._settings,
            **ModerationCommands(service, admins, self._reply).commands(),
        }

    def install(self, application: Application) -> None:  # type: ignore[type-arg]
        self._bot = application.bot
        application.add_handler(MessageHandler(filters.UpdateType.MESSAGE, self.on_message))
        application.add_handler(CallbackQueryHandler(self.on_button))
        application.add_error_handler(self.on_error)

    # --- entry points ----------------------------------------------------------------------

    async def on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        if message is None or message.from_user is None or message.from_user.is_bot:
            return
        if message.media_group_id and self.downloads.has_image(message):
            self.albums.add(message)
            return
        async with self._boundary(message):
            await self._route(message)

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        press = parse(query.data)
        if press is None or not isinstance(query.message, Message):
            await query.answer()
            return
        language = query.from_user.language_code
        try:
            answer = await self._press(query, query.message, press)
        except UserError as error:
            await query.answer(render(error.key, language, **error.values), show_alert=True)
        except Exception:
            log.exception("button %s of job %s failed", press.action, press.job_id)
            await query.answer(render("error.internal", language, reference=short_id(press.job_id)), show_alert=True)
        else:
            await query.answer(answer)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """What escapes the handlers' own boundaries (a failed answer to a button, for example)."""
        log.error("telegram update %r failed", getattr(update, "update_id", update), exc_info=context.error)

    # --- routing -----------------------------------------------------------------------------

    async def _route(self, message: Message) -> None:
        text = message.text or message.caption or ""
        parsed = _command(text)
        if parsed is not None:
            name, addressee, rest = parsed
            if addressee is not None and addressee.lower() != self.bot.username.lower():
                return  # a command for another bot in the group
            handler = self._commands.get(name.lower())
            if handler is not None:
                await handler(message, rest)
            elif _is_private(message) or addressee is not None:
                raise UserError("telegram.unknown_command", command=f"/{name}")
            return
        if not self._addressed(message, text):
            return
        await self._plain(message, self._without_mention(text))

    def _addressed(self, message: Message, text: str) -> bool:
        if _is_private(message) or self.settings.group_trigger == "all":
            return True
        if self.settings.group_trigger == "command":
            return False
        reply = message.reply_to_message
        mentioned = f"@{self.bot.username}".lower() in text.lower()
        return mentioned or (reply is not None and reply.from_user is not None and reply.from_user.id == self.bot.id)

    async def _plain(self, message: Message, text: str) -> None:
        if self.downloads.has_image(message):
            if not text.strip():
                raise UserError("telegram.photo_needs_caption")
            await self._from_image(message, message, text, "img2img" if message.photo else None)
        elif message.text is not None:
            link = await self._linked_image(message.reply_to_message)
            if link is not None:
                await self._edit_linked(message, link, text)
            else:
                await self._submit(message, Ask("txt2img", *_parse(text)))
        elif _is_private(message):
            raise UserError("telegram.unsupported")

    # --- commands ----------------------------------------------------------------------------

    async def _help(self, message: Message, rest: str) -> None:
        await self._reply(message, render("telegram.help", _language(message)))

    async def _imagine(self, message: Message, rest: str) -> None:
        if not rest.strip():
            raise UserError("usage.imagine")
        if self.downloads.has_image(message):
            await self._from_image(message, message, rest, "img2img")
        else:
            await self._submit(message, Ask("txt2img", *_parse(rest)))

    async def _edit(self, message: Message, rest: str) -> None:
        """`/edit prompt` in reply to a photo (one of the bot's images keeps its lineage), or on a photo."""
        link = await self._linked_image(message.reply_to_message)
        if link is not None:
            await self._edit_linked(message, link, rest)
            return
        source = self._source(message, "/edit")
        await self._from_image(message, source, rest, "img2img")

    async def _inpaint(self, message: Message, rest: str) -> None:
        """In reply to a photo: the image sent with the command is the mask, or `--region` marks it; alone: a
        PNG whose transparent pixels are the mask."""
        source = self._source(message, "/inpaint")
        prompt, options = _parse(rest)
        image = await self.downloads.image(source)
        mask = None
        if source is not message and self.downloads.has_image(message):
            mask = await self.downloads.image(message)
        await self._submit(message, Ask("inpaint", prompt, options, image=image, mask_image=mask))

    async def _mix(self, message: Message, rest: str) -> None:
        raise UserError("telegram.mix_usage")

    async def _history(self, message: Message, rest: str) -> None:
        language = _language(message)
        jobs = await self.service.history(self._actor(message.from_user))
        if not jobs:
            await self._reply(message, render("history.empty", language))
            return
        await self._reply(message, "\n".join(history_lines(jobs, language)))

    async def _queue(self, message: Message, rest: str) -> None:
        language = _language(message)
        lines = queue_lines(await self.service.queue(self._actor(message.from_user)), language)
        await self._reply(message, "\n".join(lines) or render("queue.empty", language))

    async def _quota(self, message: Message, rest: str) -> None:
        status = await self.service.quota(self._actor(message.from_user))
        await self._reply(message, quota_text(status, _language(message)))

    async def _cancel(self, message: Message, rest: str) -> None:
        """`/cancel` the newest own job, `/cancel id` one of one's own or (a group admin, by its full id) any in
        the group."""
        reference = rest.strip() or None
        assert message.from_user is not None
        moderator = await self.admins.moderator(message.chat, message.from_user) if reference else None
        cancellation = await self.service.cancel(self._actor(message.from_user), reference, moderator)
        text = render(f"cancel.{cancellation.outcome}", _language(message), job_id=short_id(cancellation.job_id))
        await self._reply(message, text)

    async def _settings(self, message: Message, rest: str) -> None:
        """`/settings` shows the user's defaults, `/settings --size 512x512 --steps 30` sets, `reset` clears."""
        actor = self._actor(message.from_user)
        language = _language(message)
        if rest.strip().lower() == "reset":
            await self.service.reset_preferences(actor)
            await self._reply(message, render("settings.reset", language))
            return
        if not rest.strip():
            preferences = await self.service.preferences(actor)
            key = "settings.show" if preferences else "settings.none"
            await self._reply(message, render(key, language, values=preferences_text(preferences)))
            return
        prompt, options = _parse(rest)
        if prompt:
            raise UserError("settings.unknown", option=prompt)
        preferences = await self.service.set_preferences(actor, options.given())
        await self._reply(message, render("settings.saved", language, values=preferences_text(preferences)))

    # --- albums and buttons ------------------------------------------------------------------

    async def _album(self, messages: list[Message]) -> None:
        first = messages[0]
        async with self._boundary(first):
            caption = next((message.caption for message in messages if message.caption), "") or ""
            parsed = _command(caption)
            if parsed is not None:
                name, addressee, caption = parsed
                if name.lower() != "mix" or (addressee and addressee.lower() != self.bot.username.lower()):
                    return
            elif not self._addressed(first, caption):
                return
            if len(messages) > MAX_ALBUM:
                raise UserError("album.too_many", count=len(messages), limit=MAX_ALBUM)
            prompt, options = _parse(self._without_mention(caption))
            images: list[bytes | str] = [await self.downloads.image(message) for message in messages]
            items = (*images, prompt) if prompt else tuple(images)
            await self._submit(first, Ask("mix", "", options, mix=items))

    async def _press(self, query: CallbackQuery, message: Message, press: Press) -> str | None:
        actor = self._actor(query.from_user)
        place = _place(message)
        language = query.from_user.language_code
        if press.action == "cancel":
            moderator = await self.admins.moderator(message.chat, query.from_user)
            cancellation = await self.service.cancel(actor, press.job_id, moderator)
            return render(f"cancel.{cancellation.outcome}", language, job_id=short_id(cancellation.job_id))
        if press.action == "reroll":
            await self.service.reroll(actor, place, press.job_id)
        elif press.action == "vary":
            await self.service.variations(actor, place, press.job_id, press.index)
        else:
            await self._ask_for_edit(message, press, language)
        return None

    async def _ask_for_edit(self, message: Message, press: Press, language: str | None) -> None:
        """Ask for the new prompt as a reply; the question is linked to the image, so the reply finds it."""
        question = await message.reply_text(
            render("edit.ask", language),
            reply_markup=ForceReply(selective=True, input_field_placeholder=render("button.edit", language)),
        )
        await self.service.link_message(
            PLATFORM, str(message.chat_id), str(question.message_id), press.job_id, press.index
        )

    # --- helpers -----------------------------------------------------------------------------

    @property
    def bot(self) -> Bot:
        assert self._bot is not None, "install() first"
        return self._bot

    async def _from_image(self, message: Message, source: Message, text: str, operation: str | None) -> None:
        """img2img (or, for a file with transparent pixels and `operation` None, inpaint) of `source`'s image."""
        prompt, options = _parse(text)
        image = await self.downloads.image(source)
        operation = operation or await self.service.upload_operation(image)
        await self._submit(message, Ask(operation, prompt, options, image=image))

    async def _edit_linked(self, message: Message, link: MessageLink, text: str) -> None:
        prompt, options = _parse(text)
        actor = self._actor(message.from_user)
        await self.service.edit(actor, _place(message), link.job_id, link.output_index or 0, prompt, options)

    async def _linked_image(self, message: Message | None) -> MessageLink | None:
        """The job image that a bot message shows (or asks to edit), when `message` is one."""
        if message is None or message.from_user is None or message.from_user.id != self.bot.id:
            return None
        link = await self.service.job_of_message(PLATFORM, str(message.chat_id), str(message.message_id))
        return link if link is not None and link.output_index is not None else None

    def _source(self, message: Message, command: str) -> Message:
        """The photo a command works on: the one it replies to, else the one it was sent with."""
        reply = message.reply_to_message
        if self.downloads.has_image(reply):
            assert reply is not None
            return reply
        if self.downloads.has_image(message):
            return message
        raise UserError("telegram.reply_to_photo", command=command)

    async def _submit(self, message: Message, ask: Ask) -> None:
        await self.service.submit(self._actor(message.from_user), _place(message), ask)

    def _without_mention(self, text: str) -> str:
        return re.sub(rf"@{re.escape(self.bot.username)}\b", " ", text, flags=re.IGNORECASE).strip()

    @staticmethod
    def _actor(user: TelegramUser | None) -> Actor:
        assert user is not None
        return Actor(PLATFORM, str(user.id), user.full_name, user.language_code)

    @asynccontextmanager
    async def _boundary(self, message: Message) -> AsyncIterator[None]:
        """The one place where a refusal is explained and a bug is logged; the update never crashes the bot."""
        language = _language(message)
        try:
            yield
        except UserError as error:
            await self._reply(message, render(error.key, language, **error.values))
        except Exception:
            reference = f"{message.chat_id}/{message.message_id}"
            log.exception("telegram message %s failed", reference)
            await self._reply(message, render("error.internal", language, reference=reference))

    @staticmethod
    async def _reply(message: Message, text: str) -> None:
        try:
            await message.reply_text(
                text, reply_parameters=ReplyParameters(message.message_id, allow_sending_without_reply=True)
            )
        except TelegramError as error:
            log.warning("could not answer message %s in chat %s: %r", message.message_id, message.chat_id, error)


def _command(text: str) -> tuple[str, str | None, str] | None:
    """`/name@bot rest` as (name, bot or None, rest), or None when `text` is not a command."""
    match = _COMMAND.match(text.strip())
    return None if match is None else (match.group(1), match.group(2), match.group(3))


def _parse(text: str) -> tuple[str, Options]:
    parsed = parse_prompt(text)
    return parsed.prompt, parsed.options


def _is_private(message: Message) -> bool:
    return message.chat.type == ChatType.PRIVATE


def _language(message: Message) -> str | None:
    return message.from_user.language_code if message.from_user else None


def _place(message: Message) -> Place:
    chat = message.chat
    community = None if chat.type == ChatType.PRIVATE else str(chat.id)
    return Place(PLATFORM, str(chat.id), community, chat.title, str(message.message_id))
