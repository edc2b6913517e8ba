"""Albums: Telegram sends the photos of a media group as separate updates sharing `media_group_id`.

Each group is held until no new photo of it has arrived for `wait` seconds, then handed over whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from telegram import Message

AlbumHandler = Callable[[list[Message]], Awaitable[None]]


class Albums:
    def __init__(self, wait: float, handle: AlbumHandler) -> None:
        self.wait = wait
        self.handle = handle
        self._messages: dict[str, list[Message]] = {}
        self._timers: dict[str, asyncio.Task[None]] = {}

    def add(self, message: Message) -> None:
        group = message.media_group_id
        assert group is not None
        self._messages.setdefault(group, []).append(message)
        timer = self._timers.pop(group, None)
        if timer is not None:
            timer.cancel()
        self._timers[group] = asyncio.create_task(self._flush_later(group), name=f"telegram-album-{group}")

    async def close(self) -> None:
        """Drop the albums still being gathered (on shutdown nothing has been queued for them yet)."""
        timers = list(self._timers.values())
        for timer in timers:
            timer.cancel()
        await asyncio.gather(*timers, return_exceptions=True)
        self._messages.clear()
        self._timers.clear()

    async def _flush_later(self, group: str) -> None:
        await asyncio.sleep(self.wait)
        del self._timers[group]
        messages = sorted(self._messages.pop(group), key=lambda message: message.message_id)
        await self.handle(messages)
