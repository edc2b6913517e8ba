"""Telegram updates to core calls.

Commands are read from the text or the caption alike (PTB's CommandHandler skips captions, and a photo
captioned `/inpaint ...` is a command here). In groups the bot answers only when addressed: a command,
an @mention, or a reply to one of its messages (`group_trigger`). Each update (a message, an album, a
button press) gets one context, and whatever it raises is answered at the kit's one boundary.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from functools import partial

from telegram import Bot, CallbackQuery, ForceReply, Message, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import Application, CallbackQueryHandler, ContextTypes, MessageHandler, filters

from bots.config import TelegramSettings
from bots.core.facade import Core
from bots.core.types import JobEvent, ShownMessage
from bots.errors import UserError
from bots.formatting import (
    cancel_text,
)
from bots.kit.boundary import guarded
from bots.kit.catalogue import Audience, bind, check_served, commands_for
from bots.kit.context import Context
from bots.kit.views import OUTPAINTS, Action
from bots.parsing import parse_grid, parse_prompt
from bots.telegram.admins import Admins
from bots.telegram.albums import Albums
from bots.telegram.chat import ANSWER_LIMIT, PLATFORM, context_of, cut, refused, reply, shown_job
from bots.telegram.commands import CAPABILITIES, SPELLINGS, Handler, Routes, parse_command
from bots.telegram.downloads import Downloads
from bots.telegram.intake import Intake
from bots.telegram.keyboards import Press, parse
from bots.telegram.lookups import Lookups
from bots.telegram.moderation import ModerationCommands
from generation.asks import Ask, Options

log = logging.getLogger(__name__)

MAX_ALBUM = 4


class Handlers(Lookups):
    def __init__(
        self,
        core: Core,
        settings: TelegramSettings,
        downloads: Downloads,
        admins: Admins,
        intake: Intake,
        show: Callable[[JobEvent], Awaitable[None]],
    ) -> None:
        self.core = core
        self.show = show
        self.settings = settings
        self.downloads = downloads
        self.admins = admins
        self.albums = Albums(settings.album_wait_seconds, self._album, intake)
        self._bot: Bot | None = None
        handlers: dict[str, Handler] = {
            **bind(self, commands_for(CAPABILITIES, Audience.EVERYONE)),
            **ModerationCommands(core, admins).handlers(),
        }
        check_served(PLATFORM, CAPABILITIES, handlers)
        self.routes = Routes(handlers)

    def install(self, application: Application) -> None:  # type: ignore[type-arg]
        self._bot = application.bot
        application.add_handler(MessageHandler(filters.UpdateType.MESSAGE, self.on_message))
        application.add_handler(CallbackQueryHandler(self.on_button))
        application.add_error_handler(self.on_error)

    # --- entry points ----------------------------------------------------------------------

    async def on_message(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        if message is None or message.from_user is None or message.from_user.is_bot:
            return
        if message.media_group_id and self.downloads.has_image(message):
            self.albums.add(message, update.update_id)
            return
        context = context_of(self.core, message.from_user, message)
        async with guarded(partial(reply, message), context.language, what=_what(message), known=refused):
            await self._route(context, message)

    async def on_button(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        press = parse(query.data)
        if press is None or not isinstance(query.message, Message):
            await _answer(query, None)
            return
        context = context_of(self.core, query.from_user, query.message)
        alert = partial(_answer, query, alert=True)
        async with guarded(alert, context.language, job_id=press.job_id, what=f"button {press.action}", known=refused):
            await _answer(query, await self._press(context, query.message, press))

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Whatever escapes the kit's boundary (PTB's own failures around an update): logged, never answered."""
        log.error("telegram update %r failed", getattr(update, "update_id", update), exc_info=context.error)

    # --- routing -----------------------------------------------------------------------------

    async def _route(self, context: Context, message: Message) -> None:
        text = message.text or message.caption or ""
        parsed = parse_command(text)
        if parsed is not None:
            name, addressee, rest = parsed
            if addressee is not None and addressee.lower() != self.bot.username.lower():
                return  # a command for another bot in the group
            found = self.routes.find(name, rest)
            if found is not None:
                handler, rest = found
                await handler(context, message, rest)
            elif _is_private(message) or addressee is not None:
                raise UserError("telegram.unknown_command", command=f"/{name}")
            return
        if self._addressed(message, text):
            await self._plain(context, message, self._without_mention(text))

    def _addressed(self, message: Message, text: str) -> bool:
        if _is_private(message) or self.settings.group_trigger == "all":
            return True
        if self.settings.group_trigger == "command":
            return False
        reply_to = message.reply_to_message
        mentioned = f"@{self.bot.username}".lower() in text.lower()
        return mentioned or (
            reply_to is not None and reply_to.from_user is not None and reply_to.from_user.id == self.bot.id
        )

    async def _plain(self, context: Context, message: Message, text: str) -> None:
        if self.downloads.has_image(message):
            if not text.strip():
                raise UserError("telegram.photo_needs_caption")
            await self._from_image(context, message, text, "img2img" if message.photo else None)
        elif message.text is not None:
            shown = await self._shown_image(message)
            if shown is not None:
                await self._edit_shown(context, shown, text)
            else:
                await self._submit(context, Ask("txt2img", *_parse(text)))
        elif _is_private(message):
            raise UserError("telegram.unsupported")

    # --- commands ----------------------------------------------------------------------------

    async def _help(self, context: Context, message: Message, rest: str) -> None:
        await reply(message, context.text("telegram.help"))

    async def _imagine(self, context: Context, message: Message, rest: str) -> None:
        if not rest.strip():
            raise UserError("usage.imagine")
        if self.downloads.has_image(message):
            await self._from_image(context, message, rest, "img2img")
        else:
            await self._submit(context, Ask("txt2img", *_parse(rest)))

    async def _grid(self, context: Context, message: Message, rest: str) -> None:
        """`/grid prompt --steps 20,40 --guidance 2,4,6`: one image per combination, on one sheet."""
        if not rest.strip():
            raise UserError("usage.grid")
        parsed, axes = parse_grid(rest)
        await self.core.grid(context.actor, context.place, Ask("txt2img", parsed.prompt, parsed.options), axes)

    async def _edit(self, context: Context, message: Message, rest: str) -> None:
        """`/edit prompt` in reply to a photo (one of the bot's images keeps its lineage), or on a photo."""
        shown = await self._shown_image(message)
        if shown is not None:
            await self._edit_shown(context, shown, rest)
            return
        await self._from_image(context, self._source(message, "/edit"), rest, "img2img")

    async def _outpaint(self, context: Context, message: Message, rest: str) -> None:
        """`/outpaint [--zoom 1.5 | --pan left] [prompt]` in reply to one of the bot's images (its prompt when none
        is given), or to a photo or with one (a prompt needed)."""
        prompt, options = _parse(rest)
        shown = await self._shown_image(message)
        if shown is not None:
            index = shown.output_index or 0
            await self.core.outpaint(context.actor, context.place, shown.job_id, index, options, prompt)
            return
        image = await self.downloads.image(self._source(message, "/outpaint"))
        await self._submit(context, Ask("outpaint", prompt, options, image=image))

    async def _remix(self, context: Context, message: Message, rest: str) -> None:
        """`/remix prompt [--strength 0.5]` in reply to a photo, or on one: the picture's look moved towards the
        prompt."""
        await self._transform(context, message, rest, "remix")

    async def _depth(self, context: Context, message: Message, rest: str) -> None:
        """`/depth prompt [--strength 0.6]` in reply to a photo, or on one: its shape kept, the rest redrawn."""
        await self._transform(context, message, rest, "depth")

    async def _transform(self, context: Context, message: Message, rest: str, operation: str) -> None:
        """An operation on the photo a command replies to (one of the bot's images keeps its lineage) or comes with."""
        shown = await self._shown_image(message)
        if shown is not None:
            prompt, options = _parse(rest)
            index = shown.output_index or 0
            await self.core.edit(context.actor, context.place, shown.job_id, index, prompt, options, operation)
            return
        await self._from_image(context, self._source(message, f"/{operation}"), rest, operation)

    async def _inpaint(self, context: Context, message: Message, rest: str) -> None:
        """In reply to a photo: the image sent with the command is the mask, or `--region` marks it; alone: a
        PNG whose transparent pixels are the mask."""
        source = self._source(message, "/inpaint")
        prompt, options = _parse(rest)
        image = await self.downloads.image(source)
        mask = None
        if source is not message and self.downloads.has_image(message):
            mask = await self.downloads.image(message)
        await self._submit(context, Ask("inpaint", prompt, options, image=image, mask_image=mask))

    async def _mix(self, context: Context, message: Message, rest: str) -> None:
        raise UserError("telegram.mix_usage")

    # --- albums and buttons ------------------------------------------------------------------

    async def _album(self, messages: list[Message]) -> None:
        first = messages[0]
        assert first.from_user is not None  # albums are gathered from people's messages only
        context = context_of(self.core, first.from_user, first)
        async with guarded(partial(reply, first), context.language, what=_what(first), known=refused):
            caption = next((message.caption for message in messages if message.caption), "") or ""
            parsed = parse_command(caption)
            if parsed is not None:
                name, addressee, caption = parsed
                mix = name.lower() == SPELLINGS["mix"]
                if not mix or (addressee and addressee.lower() != self.bot.username.lower()):
                    return
            elif not self._addressed(first, caption):
                return
            if len(messages) > MAX_ALBUM:
                raise UserError("album.too_many", count=len(messages), limit=MAX_ALBUM)
            prompt, options = _parse(self._without_mention(caption))
            images: list[bytes | str] = [await self.downloads.image(message) for message in messages]
            items = (*images, prompt) if prompt else tuple(images)
            await self._submit(context, Ask("mix", "", options, mix=items))

    async def _press(self, context: Context, message: Message, press: Press) -> str | None:
        """What a button does; the text the press is answered with, if any."""
        if press.action is Action.CANCEL:
            moderator = await self.admins.moderator(context)
            return cancel_text(await self.core.cancel(context.actor, press.job_id, moderator), context.language)
        if press.action is Action.REROLL:
            await self.core.reroll(context.actor, context.place, press.job_id)
        elif press.action is Action.VARY:
            await self.core.variations(context.actor, context.place, press.job_id, press.index)
        elif press.action is Action.CELL:
            await self.show(await self.core.cell(context.actor, context.place, press.job_id, press.index))
        elif press.action in OUTPAINTS:
            await self.core.outpaint(context.actor, context.place, press.job_id, press.index, OUTPAINTS[press.action])
        else:
            await self._ask_for_edit(context, message, press)
        return None

    async def _ask_for_edit(self, context: Context, message: Message, press: Press) -> None:
        """Ask for the new prompt as a reply; the question is linked to the image, so the reply finds it."""
        question = await message.reply_text(
            context.text("edit.ask"),
            reply_markup=ForceReply(selective=True, input_field_placeholder=context.text("button.edit")),
        )
        await self.core.link_message(
            PLATFORM, str(message.chat_id), str(question.message_id), press.job_id, press.index
        )

    # --- helpers -----------------------------------------------------------------------------

    @property
    def bot(self) -> Bot:
        assert self._bot is not None, "install() first"
        return self._bot

    async def _from_image(self, context: Context, source: Message, text: str, operation: str | None) -> None:
        """img2img (or, for a file with transparent pixels and `operation` None, inpaint) of `source`'s image."""
        prompt, options = _parse(text)
        image = await self.downloads.image(source)
        operation = operation or await self.core.upload_operation(image)
        await self._submit(context, Ask(operation, prompt, options, image=image))

    async def _edit_shown(self, context: Context, shown: ShownMessage, text: str) -> None:
        prompt, options = _parse(text)
        await self.core.edit(context.actor, context.place, shown.job_id, shown.output_index or 0, prompt, options)

    async def _shown_image(self, message: Message) -> ShownMessage | None:
        """The job image that the bot message `message` replies to shows (or asks to edit), if it is one."""
        shown = await shown_job(self.core, message.reply_to_message, self.bot.id)
        return shown if shown is not None and shown.output_index is not None else None

    def _source(self, message: Message, command: str) -> Message:
        """The photo a command works on: the one it replies to, else the one it was sent with."""
        replied = message.reply_to_message
        if self.downloads.has_image(replied):
            assert replied is not None
            return replied
        if self.downloads.has_image(message):
            return message
        raise UserError("telegram.reply_to_photo", command=command)

    async def _submit(self, context: Context, ask: Ask) -> None:
        """The acknowledgement is the view of the queued event, drawn by the delivery as every event is."""
        await self.core.submit(context.actor, context.place, ask)

    def _without_mention(self, text: str) -> str:
        return re.sub(rf"@{re.escape(self.bot.username)}\b", " ", text, flags=re.IGNORECASE).strip()


async def _answer(query: CallbackQuery, text: str | None, alert: bool = False) -> None:
    """Answer a button press (Telegram shows a spinner until then); a failure is logged, never raised."""
    try:
        await query.answer(cut(text, ANSWER_LIMIT) if text else None, show_alert=alert)
    except TelegramError as error:
        log.warning("could not answer the button press %s: %r", query.id, error)


def _parse(text: str) -> tuple[str, Options]:
    parsed = parse_prompt(text)
    return parsed.prompt, parsed.options


def _is_private(message: Message) -> bool:
    return message.chat.type == ChatType.PRIVATE


def _what(message: Message) -> str:
    return f"telegram message {message.chat_id}/{message.message_id}"
