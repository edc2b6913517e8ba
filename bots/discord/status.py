"""One status message per job, edited while it waits and draws.

Progress comes faster than Discord lets a bot edit messages, so edits are coalesced: at most one edit per job in
flight and one per interval, the latest text winning. discord.py waits out 429s on its own; because edits run
in their own task, that wait never holds up the core that reports progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import aiohttp
import discord

from bots.discord.uploads import Upload

log = logging.getLogger(__name__)

TOKEN_MARGIN = timedelta(seconds=30)
"""An interaction token lasts 15 minutes; an edit begun this close to the end may not make it."""


@dataclass
class Status:
    """Where a job is shown: the original response of the interaction that asked for it, or a bot message."""

    interaction: discord.Interaction | None = None
    message: discord.Message | None = None
    response_id: int | None = None
    """The deferred response's message id, so it can still be removed through its channel once the token is gone."""

    @property
    def upload_limit(self) -> int:
        if self.interaction is not None:
            return self.interaction.filesize_limit
        return discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES

    def usable(self) -> bool:
        """False once the interaction token has (nearly) expired: the message can no longer be edited."""
        if self.interaction is None:
            return True
        return discord.utils.utcnow() < self.interaction.expires_at - TOKEN_MARGIN

    async def show(
        self, text: str, view: discord.ui.View | None = None, uploads: Sequence[Upload] = ()
    ) -> discord.Message:
        attachments = [upload.file() for upload in uploads] if uploads else discord.utils.MISSING
        if self.interaction is not None:
            return await self.interaction.edit_original_response(content=text, view=view, attachments=attachments)
        assert self.message is not None
        return await self.message.edit(content=text, view=view, attachments=attachments)

    async def discard(self, client: discord.Client) -> None:
        """Remove a status message that can no longer be edited, once its job was answered in the channel."""
        if self.interaction is None or self.interaction.channel_id is None or self.response_id is None:
            return
        channel = client.get_partial_messageable(self.interaction.channel_id)
        try:
            await channel.get_partial_message(self.response_id).delete()
        except discord.HTTPException as error:
            log.info("could not remove the stale status message %s: %s", self.response_id, error)


@dataclass
class _Entry:
    status: Status
    latest: tuple[str, discord.ui.View | None] | None = None
    last_edit: float = float("-inf")
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class StatusBoard:
    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._entries: dict[str, _Entry] = {}

    def track(self, job_id: str, status: Status) -> None:
        self._entries[job_id] = _Entry(status)

    def show(self, job_id: str, text: str, view: discord.ui.View | None = None) -> None:
        """Schedule an edit of the job's status message; returns at once."""
        entry = self._entries.get(job_id)
        if entry is None:
            return
        entry.latest = (text, view)
        if entry.task is None or entry.task.done():
            entry.task = asyncio.create_task(self._flush(job_id, entry), name=f"easel-discord-status-{job_id}")

    async def release(self, job_id: str) -> Status | None:
        """Stop editing the job's status message and hand it over for the final result."""
        entry = self._entries.pop(job_id, None)
        if entry is None:
            return None
        if entry.task is not None and not entry.task.done():
            entry.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await entry.task
        return entry.status

    async def close(self) -> None:
        """The client is closing: its interactions and messages can no longer be edited through it."""
        for job_id in list(self._entries):
            await self.release(job_id)

    async def _flush(self, job_id: str, entry: _Entry) -> None:
        loop = asyncio.get_running_loop()
        while entry.latest is not None:
            wait = entry.last_edit + self._interval - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            text, view = entry.latest
            entry.latest = None
            if not entry.status.usable():
                return
            try:
                await entry.status.show(text, view)
            except (discord.HTTPException, aiohttp.ClientError) as error:
                log.warning("editing the status of job %s failed: %s", job_id, error)
            entry.last_edit = loop.time()
