"""One status message per job, edited while it waits and draws, at the pace the kit's `Throttle` keeps.

The message exists before the job does (a deferred response, or the "got it" reply to a message): it is expected
under the id of what asked (`Place.message_id`), and the job's queued event, which names that id (`reply_to`),
claims it for the job. So the acknowledgement is the queued event's view, as on every adapter.

A live preview is the message's attachment while the job draws. The latest waits in the board until the
throttle's next draw, so a progress view that comes after it does not drop it; an ending removes it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import discord

from bots.discord.interactions import cut
from bots.discord.uploads import Upload
from bots.discord.views import discord_view
from bots.kit.throttle import Throttle
from bots.kit.views import Button

log = logging.getLogger(__name__)

TOKEN_MARGIN = timedelta(seconds=30)
"""An interaction token lasts 15 minutes; an edit begun this close to the end may not make it."""

Drawn = tuple[str, tuple[Button, ...]]
PREVIEW_NAME = "preview.jpg"


@dataclass
class Status:
    """Where a job is shown: the original response of the interaction that asked for it, or a bot message."""

    interaction: discord.Interaction | None = None
    message: discord.Message | None = None
    response_id: int | None = None
    """The deferred response's message id, so it can still be removed through its channel once the token is gone."""
    previewed: bool = False
    """Whether a preview is attached, which an ending must remove."""

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
        self, text: str, view: discord.ui.View | None = None, uploads: Sequence[Upload] = (), *, clear: bool = False
    ) -> discord.Message:
        """`uploads` replace the attachments; without them the attachments stay, unless `clear` says otherwise."""
        attachments = [upload.file() for upload in uploads] if uploads or clear else discord.utils.MISSING
        if self.interaction is not None:
            return await self.interaction.edit_original_response(content=cut(text), view=view, attachments=attachments)
        assert self.message is not None
        return await self.message.edit(content=cut(text), view=view, attachments=attachments)

    async def discard(self, client: discord.Client) -> None:
        """Remove a status message that can no longer be edited, once its job was answered in the channel."""
        if self.interaction is None or self.interaction.channel_id is None or self.response_id is None:
            return
        channel = client.get_partial_messageable(self.interaction.channel_id)
        try:
            await channel.get_partial_message(self.response_id).delete()
        except discord.HTTPException as error:
            log.info("could not remove the stale status message %s: %s", self.response_id, error)


class StatusBoard:
    def __init__(self, interval: float) -> None:
        self._throttle: Throttle[Drawn] = Throttle(interval, self._draw)
        self._expected: dict[str, Status] = {}
        self._statuses: dict[str, Status] = {}
        self._previews: dict[str, Upload] = {}

    def expect(self, key: str, status: Status) -> None:
        """A job is about to be asked for by the message `key`; its queued event will claim `status`."""
        self._expected[key] = status

    def drop(self, key: str) -> None:
        """The core refused (or has answered): nothing will claim the status expected under `key`."""
        self._expected.pop(key, None)

    def claim(self, key: str, job_id: str) -> None:
        status = self._expected.pop(key, None)
        if status is not None:
            self.track(job_id, status)

    def track(self, job_id: str, status: Status) -> None:
        self._statuses[job_id] = status

    def show(
        self,
        job_id: str,
        text: str,
        buttons: Sequence[Button] = (),
        preview: bytes | None = None,
        spoiler: bool = False,
    ) -> None:
        """Schedule a draw of the job's status message, when it has one; returns at once."""
        if job_id in self._statuses:
            if preview is not None:
                self._previews[job_id] = Upload(preview, PREVIEW_NAME, spoiler)
            self._throttle.show(job_id, (text, tuple(buttons)))

    async def release(self, job_id: str) -> Status | None:
        """Stop editing the job's status message and hand it over for the final result."""
        await self._throttle.release(job_id)
        self._previews.pop(job_id, None)
        return self._statuses.pop(job_id, None)

    async def close(self) -> None:
        """The client is closing: its interactions and messages can no longer be edited through it."""
        await self._throttle.close()
        self._statuses.clear()
        self._expected.clear()
        self._previews.clear()

    async def _draw(self, job_id: str, drawn: Drawn) -> None:
        status = self._statuses.get(job_id)
        if status is None or not status.usable():
            return
        text, buttons = drawn
        preview = self._previews.pop(job_id, None)
        await status.show(text, discord_view(buttons), (preview,) if preview is not None else ())
        status.previewed = status.previewed or preview is not None
