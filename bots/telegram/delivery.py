"""Job views to Telegram messages: one status message per request, then the images.

The status message is posted once, when the job is queued (or, for a job recovered after a restart without
one, at its first update), then only edited, through the kit's throttle: at most once every
`progress_interval_seconds`, the latest view winning; losing a progress edit is harmless. A post that failed is
not made again by the updates that follow, since it may have reached the chat. Flood control (`retry_after`) is
the rate limiter's (see `adapter`): a call refused with a 429 waits and is made again, and no other call is
made meanwhile. Results are not harmless to lose: a done event is delivered image by image, each linked to its
job as it is sent, so a delivery retried later (by the core, also after a restart) sends only what is missing
and never sends twice.

A live preview turns the status message into a photo (`editMessageMedia` adds media to a text message), whose
caption then carries the status. The latest preview waits in the job's `Status` until the throttle's next draw,
so a progress view that comes after it does not drop it. An ending does not stay under a preview: the photo is
deleted and the ending sent as a message of its own.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections import OrderedDict
from dataclasses import dataclass, field

from PIL import Image
from telegram import Bot, InputMediaPhoto, Message, ReplyParameters
from telegram.error import BadRequest, TelegramError

from bots.config import TelegramSettings
from bots.core.facade import Core
from bots.core.types import EventKind, JobEvent
from bots.kit.throttle import Throttle
from bots.kit.views import Picture, View, view_of
from bots.telegram.chat import CAPTION_LIMIT, PLATFORM, cut
from bots.telegram.keyboards import keyboard

log = logging.getLogger(__name__)

PHOTO_MAX_BYTES = 10 * 1024 * 1024
PHOTO_MAX_SIDES = 10_000
PHOTO_MAX_RATIO = 20
FINISHED_MEMORY = 1000


@dataclass
class Status:
    """The status message of one job, and the text it shows; the lock keeps its posts and edits in order."""

    chat_id: str
    message_id: int | None = None
    text: str = ""
    posted: bool = False
    """Whether its post was tried: a failed post is not made again, since it may have reached the chat."""
    preview: bytes | None = None
    """The latest preview, until it is drawn."""
    spoiler: bool = False
    photo: bool = False
    """Whether the message shows a preview: its text is then a caption."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Delivery:
    def __init__(self, core: Core, bot: Bot, settings: TelegramSettings) -> None:
        self.core = core
        self.bot = bot
        self.throttle: Throttle[View] = Throttle(settings.progress_interval_seconds, self._draw)
        self._statuses: dict[str, Status] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()

    async def on_event(self, event: JobEvent) -> None:
        """The core's listener; raising from a final event makes the core deliver it again later."""
        if event.job_id in self._finished:
            return
        view = view_of(event)
        status = self._statuses.setdefault(event.job_id, Status(event.channel_id))
        if event.kind is not EventKind.QUEUED and not event.kind.final:
            if view.preview is not None:
                status.preview, status.spoiler = view.preview, view.spoiler
            self.throttle.show(event.job_id, view)
            return
        if event.kind.final:
            await self.throttle.release(event.job_id)  # before the lock, which a draw in flight may wait for
        async with status.lock:
            if event.kind is EventKind.QUEUED:
                await self._post(view, status)
                return
            await self._find(event.job_id, status)
            if event.kind is EventKind.DONE:
                await self._deliver(view)
                await self._remove(status)
            else:
                await self._end(view, status)
        self._finish(event.job_id)

    async def close(self) -> None:
        await self.throttle.close()

    async def show(self, event: JobEvent) -> None:
        """A result shown on request (a grid's cell): its pictures sent now, outside any status message and the
        delivery ledger, as often as it is asked for."""
        await self._deliver(view_of(event))

    # --- the status message ----------------------------------------------------------------

    async def _draw(self, job_id: str, view: View) -> None:
        """The throttle's drawing of a status view: the status message edited, or posted when a job recovered
        after a restart has none that is known."""
        status = self._statuses.get(job_id)
        if status is None:
            return
        async with status.lock:
            await self._find(job_id, status)
            if status.message_id is None and not status.posted:
                await self._post(view, status)
            elif status.message_id is not None and status.preview is not None:
                await self._show_preview(job_id, status, view)
            elif status.message_id is not None and view.text != status.text:
                await self._edit(job_id, status, view)

    async def _post(self, view: View, status: Status) -> None:
        """Post the status message, in reply to the request, and link it to the job; a failure is logged."""
        event = view.event
        self.throttle.drawn(event.job_id)
        status.posted = True
        try:
            message = await self.bot.send_message(
                int(status.chat_id),
                cut(view.text),
                reply_parameters=_reply_to(event.reply_to),
                reply_markup=keyboard(view.buttons),
            )
        except TelegramError as error:
            log.warning("job %s: the status message could not be sent: %r", event.job_id, error)
            return
        status.message_id, status.text = message.message_id, view.text
        await self.core.link_message(PLATFORM, event.channel_id, str(message.message_id), event.job_id)

    async def _show_preview(self, job_id: str, status: Status, view: View) -> None:
        """The latest preview into the status message, with the view's text as its caption; a failure is logged,
        and the next preview tries again."""
        assert status.message_id is not None and status.preview is not None
        media = InputMediaPhoto(status.preview, caption=cut(view.text, CAPTION_LIMIT), has_spoiler=status.spoiler)
        status.preview = None
        try:
            await self.bot.edit_message_media(
                media, chat_id=int(status.chat_id), message_id=status.message_id, reply_markup=keyboard(view.buttons)
            )
        except TelegramError as error:
            log.warning("job %s: the preview could not be shown: %r", job_id, error)
            return
        status.photo, status.text = True, view.text

    async def _edit(self, job_id: str, status: Status, view: View) -> bool:
        """Edit the status message to `view` (its buttons replacing the old ones); a failure is logged, never
        raised: the next view tries again. A message that turns out to show a preview (after a restart) is then
        known as one, and its caption edited from then on."""
        assert status.message_id is not None
        chat_id, message_id, buttons = int(status.chat_id), status.message_id, keyboard(view.buttons)
        try:
            if status.photo:
                caption = cut(view.text, CAPTION_LIMIT)
                await self.bot.edit_message_caption(chat_id, message_id, caption=caption, reply_markup=buttons)
            else:
                await self.bot.edit_message_text(cut(view.text), chat_id, message_id, reply_markup=buttons)
        except BadRequest as error:
            reason = str(error).lower()
            status.photo = status.photo or "no text in the message" in reason
            if "not modified" not in reason:
                log.warning("job %s: the status message could not be edited: %r", job_id, error)
                return False
        except TelegramError as error:
            log.warning("job %s: the status message could not be edited: %r", job_id, error)
            return False
        status.text = view.text
        return True

    async def _end(self, view: View, status: Status) -> None:
        """The ending in place of the status message (its Cancel button gone), or as a message of its own, linked
        the moment Telegram answers: a redelivery after a restart finds it as the job's newest status message and
        edits the same text into it, which changes nothing, instead of sending the ending again."""
        event = view.event
        if status.message_id is not None and not status.photo and await self._edit(event.job_id, status, view):
            return
        if status.photo:
            await self._remove(status)
        message = await self.bot.send_message(
            int(status.chat_id), cut(view.text), reply_parameters=_reply_to(event.reply_to)
        )
        await self.core.link_message(PLATFORM, event.channel_id, str(message.message_id), event.job_id)

    async def _remove(self, status: Status) -> None:
        if status.message_id is None:
            return
        try:
            await self.bot.delete_message(int(status.chat_id), status.message_id)
        except TelegramError as error:  # too old to delete, or already gone: the images follow it anyway
            log.info("status message %s could not be deleted: %r", status.message_id, error)

    async def _find(self, job_id: str, status: Status) -> None:
        """After a restart: the newest status message an earlier run posted for this job (its ending, when that
        went as a message of its own), if any."""
        if status.message_id is not None:
            return
        found = [
            int(link.message_id)
            for link in await self.core.messages_of(job_id)
            if link.output_index is None and link.chat_id == status.chat_id
        ]
        if found:
            status.message_id = max(found)

    # --- the images ------------------------------------------------------------------------

    async def _deliver(self, view: View) -> None:
        """Each picture not sent yet, as a photo with its own caption and buttons. Its link is written the moment
        Telegram answers, in one short transaction and before anything else (the next file is read only after):
        a kill between the answer and that commit sends the image again after a restart (benchmarks/delivery.py)."""
        event = view.event
        links = [] if event.first_delivery else await self.core.messages_of(event.job_id)
        sent = {link.output_index for link in links if link.output_index is not None}
        if sent:
            _log_resumed(event.job_id, sent, view.pictures)
        for picture in view.pictures:
            if picture.index in sent:
                continue
            message = await self._send_picture(view, picture)
            await self.core.link_message(
                PLATFORM, event.channel_id, str(message.message_id), event.job_id, picture.index
            )

    async def _send_picture(self, view: View, picture: Picture) -> Message:
        data, fits = await asyncio.to_thread(_read_photo, picture)
        chat_id = int(view.event.channel_id)
        caption = view.picture_caption(picture, CAPTION_LIMIT)
        buttons = keyboard(picture.buttons)
        reply = _reply_to(view.event.reply_to)
        if fits:
            return await self.bot.send_photo(
                chat_id, data, caption=caption, reply_markup=buttons, reply_parameters=reply, has_spoiler=view.spoiler
            )
        # Telegram cannot hide a document behind a spoiler: it goes as it is
        return await self.bot.send_document(
            chat_id, data, filename=picture.path.name, caption=caption, reply_markup=buttons, reply_parameters=reply
        )

    def _finish(self, job_id: str) -> None:
        self._statuses.pop(job_id, None)
        self._finished[job_id] = None
        while len(self._finished) > FINISHED_MEMORY:
            self._finished.popitem(last=False)


def _log_resumed(job_id: str, sent: set[int], pictures: tuple[Picture, ...]) -> None:
    """A delivery that an earlier attempt (or process) began: the log says which images go again, if any."""
    before = ", ".join(str(index + 1) for index in sorted(sent))
    missing = ", ".join(str(picture.index + 1) for picture in pictures if picture.index not in sent)
    if missing:
        log.info("job %s: images already sent: %s; sending only %s", job_id, before, missing)
    else:
        log.info("job %s: images already sent: %s; none is sent again", job_id, before)


def _read_photo(picture: Picture) -> tuple[bytes, bool]:
    """The picture's bytes, and whether Telegram takes them as a photo: up to 10 MB, with width + height <= 10000
    and a side ratio up to 20."""
    data = picture.path.read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
    within_ratio = max(width, height) <= PHOTO_MAX_RATIO * min(width, height)
    return data, len(data) <= PHOTO_MAX_BYTES and width + height <= PHOTO_MAX_SIDES and within_ratio


def _reply_to(message_id: str | None) -> ReplyParameters | None:
    if message_id is None:
        return None
    return ReplyParameters(int(message_id), allow_sending_without_reply=True)
