"""Core events turned into Discord messages: status edits while a job waits and draws, then its result.

A result goes into the job's status message while the interaction token allows; later (the token lasts 15
minutes) or after a restart, it is posted in the channel with a mention of its owner. A final event is
delivered when `on_event` returns; when posting fails it raises, so the core delivers it again later. The same
job's result is never posted twice by this process, even when the core announces it twice (a redelivery racing
a job that finishes just after a restart).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Sequence

import discord

from bots.core.facade import Core
from bots.core.types import JobEvent
from bots.discord.actions import MESSAGE_LIMIT, PLATFORM
from bots.discord.status import Status, StatusBoard
from bots.discord.uploads import Upload, fit_upload
from bots.discord.views import result_view, status_view
from bots.formatting import ending_text, progress_text, queued_text, result_caption
from bots.texts import render

log = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 30.0
REMEMBERED_DELIVERIES = 10_000
MENTION_ROOM = 32  # "<@" + a snowflake + "> "


class ClientClosed(Exception):
    """The Discord client is not running: the result stays undelivered, and the core tries again later."""


class Delivery:
    def __init__(self, service: Core, board: StatusBoard) -> None:
        self.service = service
        self.board = board
        self.client: discord.Client | None = None
        self.ready = asyncio.Event()
        self._connect_deadline = 0.0
        self._delivered: OrderedDict[str, None] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    def attach(self, client: discord.Client) -> None:
        """A client is starting: results wait for it to connect, all together no longer than READY_TIMEOUT_SECONDS,
        so that a start-up with many undelivered results and no connection does not hang."""
        self.client = client
        self.ready.clear()
        self._connect_deadline = asyncio.get_running_loop().time() + READY_TIMEOUT_SECONDS

    async def on_event(self, event: JobEvent) -> None:
        language = event.language
        if event.kind in ("queued", "position"):
            text = queued_text(event.position, event.eta_seconds, language)
            self.board.show(event.job_id, text, status_view(event.job_id, language))
        elif event.kind == "started":
            self.board.show(event.job_id, render("status.started", language), status_view(event.job_id, language))
        elif event.kind == "progress":
            self.board.show(event.job_id, progress_text(event.progress, language), status_view(event.job_id, language))
        elif event.kind.final:
            await self._final(event)

    async def _final(self, event: JobEvent) -> None:
        """One delivery per job at a time; its lock is dropped once it is delivered (a call still waiting on it
        then finds the job delivered), and kept while delivery keeps failing."""
        lock = self._locks.setdefault(event.job_id, asyncio.Lock())
        async with lock:
            if event.job_id not in self._delivered:
                client = await self._ready_client()
                if event.kind == "done":
                    await self._result(client, event)
                else:
                    await self._notice(client, event, ending_text(event))
                self._remember(event.job_id)
            self._locks.pop(event.job_id, None)

    async def _ready_client(self) -> discord.Client:
        client = self.client
        if client is None or client.is_closed():
            raise ClientClosed("the Discord client is not running")
        if not self.ready.is_set():
            remaining = self._connect_deadline - asyncio.get_running_loop().time()
            try:
                await asyncio.wait_for(self.ready.wait(), max(remaining, 0.0))
            except TimeoutError:
                raise ClientClosed("the Discord client is not connected") from None
        return client

    async def _result(self, client: discord.Client, event: JobEvent) -> None:
        if not event.files:
            log.info("job %s has no images left to deliver (deleted)", event.job_id)
            return
        status = await self.board.release(event.job_id)
        limit = status.upload_limit if status is not None else discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
        uploads = await asyncio.to_thread(
            lambda: [fit_upload(path, limit, spoiler=event.spoiler) for path in event.files]
        )
        view = result_view(event.job_id, len(uploads), event.language)
        message = await self._in_status(status, result_caption(event, MESSAGE_LIMIT), view, uploads)
        if message is None:
            caption = result_caption(event, MESSAGE_LIMIT - MENTION_ROOM)
            text = render("discord.late_result", event.language, mention=f"<@{event.user_id}>", caption=caption)
            message = await _post(client, event, text, view, uploads)
            if status is not None:
                await status.discard(client)
        output_index = 0 if len(uploads) == 1 else None
        try:
            await self.service.link_message(PLATFORM, event.channel_id, str(message.id), event.job_id, output_index)
        except Exception:  # the result is out; only replies to it will not find the job
            log.exception("could not link message %s to job %s", message.id, event.job_id)

    async def _notice(self, client: discord.Client, event: JobEvent, text: str) -> None:
        status = await self.board.release(event.job_id)
        if await self._in_status(status, text, None, ()) is None:
            late = render("discord.late_notice", event.language, mention=f"<@{event.user_id}>", text=text)
            await _post(client, event, late, None, ())
            if status is not None:
                await status.discard(client)

    async def _in_status(
        self, status: Status | None, text: str, view: discord.ui.View | None, uploads: Sequence[Upload]
    ) -> discord.Message | None:
        """The status message turned into `text`; None when there is none any more or it cannot be edited."""
        if status is None or not status.usable():
            return None
        try:
            return await status.show(text, view, uploads)
        except discord.HTTPException as error:  # the token expired early, or someone deleted the message
            log.warning("could not edit the status message; posting in the channel instead: %s", error)
            return None

    def _remember(self, job_id: str) -> None:
        self._delivered[job_id] = None
        while len(self._delivered) > REMEMBERED_DELIVERIES:
            self._delivered.popitem(last=False)


async def _post(
    client: discord.Client, event: JobEvent, text: str, view: discord.ui.View | None, uploads: Sequence[Upload]
) -> discord.Message:
    channel = client.get_partial_messageable(int(event.channel_id))
    mentions = discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(int(event.user_id))])
    files = [upload.file() for upload in uploads]
    if view is None:
        return await channel.send(text, files=files, allowed_mentions=mentions)
    return await channel.send(text, files=files, view=view, allowed_mentions=mentions)
