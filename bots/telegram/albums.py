"""Albums: Telegram sends the photos of a media group as separate updates sharing `media_group_id`.

Each group is held until no new photo of it has arrived for `wait` seconds, then handed over whole. Its updates
stay unhandled in the intake until the album has been handled, so an album cut short by a kill is gathered again
from the updates replayed at the next start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from telegram import Message

from bots.core.intake import answering
from bots.telegram.intake import Intake

AlbumHandler = Callable[[list[Message]], Awaitable[None]]


class Albums:
    def __init__(self, wait: float, handle: AlbumHandler, intake: Intake) -> None:
        self.wait = wait
        self.handle = handle
        self.intake = intake
        self._messages: dict[str, list[tuple[int, Message]]] = {}
        self._timers: dict[str, asyncio.Task[None]] = {}

    def add(self, message: Message, update_id: int) -> None:
        group = message.media_group_id
        assert group is not None
        self.intake.hold(update_id)
        self._messages.setdefault(group, []).append((update_id, message))
        timer = self._timers.pop(group, None)
        if timer is not None:
            timer.cancel()
        self._timers[group] = asyncio.create_task(self._flush_later(group), name=f"telegram-album-{group}")

    async def close(self) -> None:
        """Drop the albums still being gathered (nothing has been queued for them yet; the next start replays
        their updates)."""
        timers = list(self._timers.values())
        for timer in timers:
            timer.cancel()
        await asyncio.gather(*timers, return_exceptions=True)
        self._messages.clear()
        self._timers.clear()

    async def _flush_later(self, group: str) -> None:
        await asyncio.sleep(self.wait)
        del self._timers[group]
        held = sorted(self._messages.pop(group), key=lambda entry: entry[1].message_id)
        update_ids = tuple(update_id for update_id, _ in held)
        with answering(self.intake.source, update_ids):
            await self.handle([message for _, message in held])
        await self.intake.release(update_ids)
