"""Core events to Telegram messages: one status message per request, then the images.

The status message (queued, position, progress) is edited at most once every `progress_interval_seconds`
and not at all while Telegram asks to wait (`retry_after`); losing a progress edit is harmless. Results
are not: a done event is delivered image by image, each linked to its job as it is sent, so a delivery
retried later (by the core, also after a restart) sends only what is missing and never sends twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial
from pathlib import Path

from PIL import Image
from telegram import Bot, InlineKeyboardMarkup, Message, ReplyParameters
from telegram.error import BadRequest, RetryAfter, TelegramError

from bots.config import TelegramSettings
from bots.core.facade import Core
from bots.core.types import JobEvent
from bots.formatting import ending_text, progress_text, queued_text, result_caption
from bots.telegram.keyboards import result_keyboard, status_keyboard
from bots.texts import render

log = logging.getLogger(__name__)

PLATFORM = "telegram"
CAPTION_LIMIT = 1024
PHOTO_MAX_BYTES = 10 * 1024 * 1024
PHOTO_MAX_SIDES = 10_000
PHOTO_MAX_RATIO = 20
SEND_ATTEMPTS = 3
MAX_WAIT_SECONDS = 60.0
FINISHED_MEMORY = 1000


@dataclass
class Status:
    """The status message of one job, and when it may next be edited."""

    chat_id: str
    message_id: int | None = None
    text: str = ""
    edited_at: float = float("-inf")
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Delivery:
    def __init__(self, service: Core, bot: Bot, settings: TelegramSettings) -> None:
        self.service = service
        self.bot = bot
        self.interval = settings.progress_interval_seconds
        self._statuses: dict[str, Status] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._quiet_until = 0.0

    async def on_event(self, event: JobEvent) -> None:
        """The core's listener; raising from a final event makes the core deliver it again later."""
        if event.job_id in self._finished:
            return
        status = self._statuses.setdefault(event.job_id, Status(event.channel_id))
        async with status.lock:
            if status.message_id is None and event.kind != "queued":
                await self._find_status(event.job_id, status)
            if event.kind == "queued":
                await self._post_status(event, status, queued_text(event.position, event.eta_seconds, event.language))
            elif event.kind in ("started", "progress", "position"):
                await self._update_status(event, status)
            elif event.kind == "done":
                await self._deliver_images(event, status)
                await self._remove_status(status)
                self._finish(event.job_id)
            elif event.kind in ("failed", "cancelled"):
                await self._final_text(event, status)
                self._finish(event.job_id)

    # --- the status message ----------------------------------------------------------------

    async def _post_status(self, event: JobEvent, status: Status, text: str) -> None:
        status.text = text
        try:
            message = await self.bot.send_message(
                int(event.channel_id),
                status.text,
                reply_parameters=_reply_to(event.reply_to),
                reply_markup=status_keyboard(event.job_id, event.language),
            )
        except TelegramError as error:
            log.warning("job %s: the status message could not be sent: %r", event.job_id, error)
            return
        status.message_id = message.message_id
        status.edited_at = time.monotonic()
        await self.service.link_message(PLATFORM, event.channel_id, str(message.message_id), event.job_id)

    async def _update_status(self, event: JobEvent, status: Status) -> None:
        if event.kind == "position":
            text = queued_text(event.position, event.eta_seconds, event.language)
        elif event.kind == "started":
            text = render("status.started", event.language)
        else:
            text = progress_text(event.progress, event.language)
        now = time.monotonic()
        if text == status.text or now - status.edited_at < self.interval or now < self._quiet_until:
            return
        if status.message_id is None:  # a job recovered after a restart, whose status message is unknown
            await self._post_status(event, status, text)
            return
        status.text = text
        status.edited_at = now
        await self._edit(event.job_id, status, text, status_keyboard(event.job_id, event.language))

    async def _final_text(self, event: JobEvent, status: Status) -> None:
        text = ending_text(event)
        if status.message_id is not None and await self._edit(event.job_id, status, text, None):
            return
        await _patiently(partial(self.bot.send_message, int(event.channel_id), text))

    async def _edit(self, job_id: str, status: Status, text: str, keyboard: InlineKeyboardMarkup | None) -> bool:
        """Edit the status message; a failure is logged, never raised: the next event tries again."""
        assert status.message_id is not None
        try:
            await self.bot.edit_message_text(
                text, chat_id=int(status.chat_id), message_id=status.message_id, reply_markup=keyboard
            )
        except RetryAfter as error:
            self._quiet_until = time.monotonic() + _seconds(error.retry_after)
            log.info("job %s: Telegram asks to wait %s s before editing", job_id, _seconds(error.retry_after))
            return False
        except BadRequest as error:
            if "not modified" in str(error).lower():
                return True
            log.warning("job %s: the status message could not be edited: %r", job_id, error)
            return False
        except TelegramError as error:
            log.warning("job %s: the status message could not be edited: %r", job_id, error)
            return False
        return True

    async def _remove_status(self, status: Status) -> None:
        if status.message_id is None:
            return
        try:
            await self.bot.delete_message(int(status.chat_id), status.message_id)
        except TelegramError as error:  # too old to delete, or already gone: the images follow it anyway
            log.info("status message %s could not be deleted: %r", status.message_id, error)

    async def _find_status(self, job_id: str, status: Status) -> None:
        """After a restart: the status message an earlier run posted for this job, if any."""
        for link in await self.service.messages_of(job_id):
            if link.output_index is None and link.chat_id == status.chat_id:
                status.message_id = int(link.message_id)

    # --- the images ------------------------------------------------------------------------

    async def _deliver_images(self, event: JobEvent, status: Status) -> None:
        sent = {
            link.output_index for link in await self.service.messages_of(event.job_id) if link.output_index is not None
        }
        for index, path in enumerate(event.files):
            if index in sent:
                continue
            seed = event.seeds[index] if index < len(event.seeds) else None
            caption = result_caption(replace(event, seeds=(seed,) if seed is not None else ()), CAPTION_LIMIT)
            keyboard = result_keyboard(event.job_id, index, event.language)
            message = await _patiently(partial(self._send_image, event, path, caption, keyboard))
            await self.service.link_message(PLATFORM, event.channel_id, str(message.message_id), event.job_id, index)

    async def _send_image(self, event: JobEvent, path: Path, caption: str, keyboard: InlineKeyboardMarkup) -> Message:
        data = await asyncio.to_thread(path.read_bytes)
        chat_id = int(event.channel_id)
        reply = _reply_to(event.reply_to)
        if _fits_a_photo(path, len(data)):
            return await self.bot.send_photo(
                chat_id,
                data,
                caption=caption,
                reply_markup=keyboard,
                reply_parameters=reply,
                has_spoiler=event.spoiler,
            )
        # Telegram cannot hide a document behind a spoiler: it goes as it is
        return await self.bot.send_document(
            chat_id, data, filename=path.name, caption=caption, reply_markup=keyboard, reply_parameters=reply
        )

    def _finish(self, job_id: str) -> None:
        self._statuses.pop(job_id, None)
        self._finished[job_id] = None
        while len(self._finished) > FINISHED_MEMORY:
            self._finished.popitem(last=False)


async def _patiently(send: Callable[[], Awaitable[Message]]) -> Message:
    """Send, waiting as Telegram asks on flood control; after the last attempt the error goes to the core."""
    for _ in range(SEND_ATTEMPTS - 1):
        try:
            return await send()
        except RetryAfter as error:
            await asyncio.sleep(min(_seconds(error.retry_after), MAX_WAIT_SECONDS))
    return await send()


def _fits_a_photo(path: Path, size: int) -> bool:
    """Telegram takes a photo up to 10 MB, with width + height <= 10000 and a side ratio up to 20."""
    with Image.open(path) as image:
        width, height = image.size
    within_ratio = max(width, height) <= PHOTO_MAX_RATIO * min(width, height)
    return size <= PHOTO_MAX_BYTES and width + height <= PHOTO_MAX_SIDES and within_ratio


def _reply_to(message_id: str | None) -> ReplyParameters | None:
    if message_id is None:
        return None
    return ReplyParameters(int(message_id), allow_sending_without_reply=True)


def _seconds(retry_after: int | timedelta) -> float:
    return retry_after.total_seconds() if isinstance(retry_after, timedelta) else float(retry_after)
