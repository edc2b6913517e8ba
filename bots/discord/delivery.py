"""Core events drawn as Discord messages, from the kit's views: status edits while a job waits and draws, then
its result or how it ended.

The queued event claims the status message expected for it (see `status`), so it is the acknowledgement. A
result or an ending goes into the job's status message while the interaction token allows; later (the token
lasts 15 minutes) or after a restart, it is posted in the channel with a mention of its owner, unless a link
shows that an earlier process showed it already. The link is written the moment Discord answers, and a channel
post carries a nonce derived from the job and what it shows, which Discord honours for a few minutes: a post
repeated after a kill that came before its link gets the first message back, not a second one. A final event is
delivered when `on_event` returns; when posting fails it raises, so the core delivers it again later. The same
job's result is never posted twice by this process, even when the core announces it twice (a redelivery racing a
job that finishes just after a restart).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Sequence

import discord

from bots.core.facade import Core
from bots.core.types import EventKind, JobEvent
from bots.discord.interactions import MESSAGE_LIMIT, PLATFORM, cut
from bots.discord.status import Status, StatusBoard
from bots.discord.uploads import Upload, fit_upload
from bots.discord.views import discord_view
from bots.kit.views import View, view_of
from bots.texts import render

log = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 30.0
REMEMBERED_DELIVERIES = 10_000
MENTION_ROOM = 32  # "<@" + a snowflake + "> "
NONCE_BYTES = 12  # 24 hexadecimal characters; Discord takes a nonce of up to 25


class ClientClosed(ConnectionError):
    """The Discord client is not running: the result stays undelivered, and the core tries again later."""


class Delivery:
    def __init__(self, core: Core, board: StatusBoard) -> None:
        self.core = core
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
        view = view_of(event)
        if event.kind.final:
            await self._final(view)
            return
        if event.kind is EventKind.QUEUED and event.reply_to is not None:
            self.board.claim(event.reply_to, event.job_id)
        self.board.show(event.job_id, view.text, view.buttons, view.preview, view.spoiler)

    async def _final(self, view: View) -> None:
        """One delivery per job at a time; its lock is dropped once it is delivered (a call still waiting on it
        then finds the job delivered), and kept while delivery keeps failing."""
        job_id = view.event.job_id
        lock = self._locks.setdefault(job_id, asyncio.Lock())
        async with lock:
            if job_id not in self._delivered:
                client = await self._ready_client()
                if view.kind is EventKind.DONE:
                    await self._result(client, view)
                else:
                    await self._notice(client, view)
                self._remember(job_id)
            self._locks.pop(job_id, None)

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

    async def _result(self, client: discord.Client, view: View) -> None:
        """Every image in one message, with the buttons that act on the whole result."""
        event = view.event
        status = await self.board.release(event.job_id)
        if not view.pictures:
            log.info("job %s has no images left to deliver (deleted)", event.job_id)
            return
        if status is None and await self._shown_before(event):
            return
        limit = status.upload_limit if status is not None else discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
        uploads = await asyncio.to_thread(
            lambda: [fit_upload(picture.path, limit, spoiler=view.spoiler) for picture in view.pictures]
        )
        mention = f"<@{event.user_id}>"
        late = render(
            "discord.late_result", event.language, mention=mention, caption=view.caption(MESSAGE_LIMIT - MENTION_ROOM)
        )
        await self._show(client, event, status, view.caption(MESSAGE_LIMIT), late, view, uploads)

    async def _shown_before(self, event: JobEvent) -> bool:
        """With no status message to edit (after a restart the interaction token is gone) the result or ending
        would be posted anew; a link to the job means it was shown already, since results and endings are the
        only Discord messages linked to a job."""
        links = [link for link in await self.core.messages_of(event.job_id) if link.platform == PLATFORM]
        if links:
            log.info(
                "job %s: its %s was shown before (message %s); not posted again",
                event.job_id,
                "result" if event.kind is EventKind.DONE else "ending",
                links[0].message_id,
            )
        return bool(links)

    async def _notice(self, client: discord.Client, view: View) -> None:
        event = view.event
        status = await self.board.release(event.job_id)
        if status is None and await self._shown_before(event):
            return
        late = render("discord.late_notice", event.language, mention=f"<@{event.user_id}>", text=view.text)
        await self._show(client, event, status, view.text, late, view, ())

    async def _show(
        self,
        client: discord.Client,
        event: JobEvent,
        status: Status | None,
        text: str,
        late: str,
        view: View,
        uploads: Sequence[Upload],
    ) -> None:
        """`text` in the job's status message while it can be edited; else `late` posted in the channel, and the
        status message, which can no longer show it, removed. Either is linked to the job as soon as Discord
        answers, before anything else is done."""
        buttons = discord_view(view.buttons)
        if status is not None and status.usable():
            try:
                message = await status.show(text, buttons, uploads, clear=status.previewed)
            except discord.HTTPException as error:  # the token expired early, or someone deleted the message
                log.warning("could not edit the status message; posting in the channel instead: %s", error)
            else:
                await self._link(event, message, uploads)
                return
        message = await _post(client, event, late, buttons, uploads)
        await self._link(event, message, uploads)
        if status is not None:
            await status.discard(client)

    async def _link(self, event: JobEvent, message: discord.Message, uploads: Sequence[Upload]) -> None:
        """What a later redelivery finds (`_shown_before`). A kill before this write is covered, for a channel post,
        by its nonce while Discord keeps it; otherwise the restarted process posts again (benchmarks/delivery.py
        measures this window)."""
        output_index = 0 if len(uploads) == 1 else None
        try:
            await self.core.link_message(PLATFORM, event.channel_id, str(message.id), event.job_id, output_index)
        except Exception:  # the message is out; only replies to it will not find the job
            log.exception("could not link message %s to job %s", message.id, event.job_id)

    def _remember(self, job_id: str) -> None:
        self._delivered[job_id] = None
        while len(self._delivered) > REMEMBERED_DELIVERIES:
            self._delivered.popitem(last=False)


async def _post(
    client: discord.Client, event: JobEvent, text: str, view: discord.ui.View | None, uploads: Sequence[Upload]
) -> discord.Message:
    """Posted in the channel, notifying the job's owner and nobody else, whatever the prompt says; with the job's
    nonce for what it shows, so Discord returns the message an earlier post created if one did lately."""
    channel = client.get_partial_messageable(int(event.channel_id))
    mentions = discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(int(event.user_id))])
    files = [upload.file() for upload in uploads]
    once = nonce(event.job_id, event.kind)
    if view is None:
        return await channel.send(cut(text), files=files, allowed_mentions=mentions, nonce=once)
    return await channel.send(cut(text), files=files, view=view, allowed_mentions=mentions, nonce=once)


def nonce(job_id: str, kind: EventKind) -> str:
    """The same for every post of one job's result, or of its ending. discord.py sends `enforce_nonce` with any
    nonce: "if another message was created by the same author with the same nonce in the past few minutes, that
    message is returned and no new message is created"."""
    return hashlib.blake2b(f"{job_id}:{kind.value}".encode(), digest_size=NONCE_BYTES).hexdigest()
