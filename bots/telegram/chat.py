"""What the parts of the Telegram adapter share: the platform's name and limits, one context per update,
answers that never fail an update, and the job that one of the bot's messages shows."""

from __future__ import annotations

import logging

from telegram import Message, ReplyParameters
from telegram import User as TelegramUser
from telegram.constants import ChatType
from telegram.error import TelegramError

from bots.core.facade import Core
from bots.core.types import Actor, Place, ShownMessage
from bots.kit.context import Context
from bots.texts import render

log = logging.getLogger(__name__)

PLATFORM = "telegram"
MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
ANSWER_LIMIT = 200
"""The text of an answer to a button press (a notification or an alert)."""


def context_of(core: Core, user: TelegramUser, message: Message) -> Context:
    """`user` acting on `message`: their own message, or the bot's message whose button they pressed. A group
    is a community, a private chat none; results reply to `message`. They are answered in their chosen
    language, else in their Telegram's."""
    chat = message.chat
    community = None if chat.type == ChatType.PRIVATE else str(chat.id)
    actor = Actor(PLATFORM, str(user.id), user.full_name, user.language_code)
    return Context(core.speaking(actor), Place(PLATFORM, str(chat.id), community, chat.title, str(message.message_id)))


def refused(error: BaseException, language: str | None) -> str | None:
    """Telegram's own refusal of a call made while handling an update (a chat gone, a network error): a platform
    error, not a bug, so one line in the log and no traceback; the user is told if Telegram lets us."""
    if not isinstance(error, TelegramError):
        return None
    log.warning("telegram refused a call: %r", error)
    return render("telegram.refused", language)


def cut(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """`text` within Telegram's `limit` (4096 characters in a message, 1024 in a caption)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def reply(message: Message, text: str) -> None:
    """Answer `message`; a failure is logged, never raised: the update is over either way."""
    try:
        await message.reply_text(
            cut(text), reply_parameters=ReplyParameters(message.message_id, allow_sending_without_reply=True)
        )
    except TelegramError as error:
        log.warning("could not answer message %s in chat %s: %r", message.message_id, message.chat_id, error)


async def reply_list(message: Message, text: str, name: str) -> None:
    """A list answered in one message when it fits, else whole as a text file `name`.txt: never cut, and never
    a flood of messages."""
    if len(text) <= MESSAGE_LIMIT:
        await reply(message, text)
        return
    try:
        await message.reply_document(
            text.encode(),
            filename=f"{name}.txt",
            reply_parameters=ReplyParameters(message.message_id, allow_sending_without_reply=True),
        )
    except TelegramError as error:
        log.warning("could not send %s.txt in chat %s: %r", name, message.chat_id, error)


async def shown_job(core: Core, message: Message | None, bot_id: int) -> ShownMessage | None:
    """The job that `message` shows, when it is one of the bot's messages about a job."""
    if message is None or message.from_user is None or message.from_user.id != bot_id:
        return None
    return await core.job_of_message(PLATFORM, str(message.chat_id), str(message.message_id))
