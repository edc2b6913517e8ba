"""Status updates at the pace a platform allows: at most one draw per job in flight and one per interval, the
latest view winning. Progress comes faster than any chat lets a bot edit a message, and a lost intermediate
state is harmless, so updates are coalesced rather than queued. Draws run in their own task, so a slow or
rate-limited platform never holds up the core that reports progress. When the final view takes over, a draw in
flight is let finish: it may be waiting out a rate limit inside the platform's client, and cancelling it would
let the final call go before the platform allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

Draw = Callable[[str, T], Awaitable[None]]
"""Draws the latest value of a job (its id first); an exception is logged, and the next value tries again."""


@dataclass
class _Entry(Generic[T]):
    latest: T | None = None
    last_draw: float = float("-inf")
    drawing: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class Throttle(Generic[T]):
    def __init__(self, interval: float, draw: Draw[T]) -> None:
        self.interval = interval
        self._draw = draw
        self._entries: dict[str, _Entry[T]] = {}

    def show(self, job_id: str, value: T) -> None:
        """Schedule a draw of `value`; returns at once."""
        entry = self._entries.setdefault(job_id, _Entry())
        entry.latest = value
        if entry.task is None or entry.task.done():
            entry.task = asyncio.create_task(self._flush(job_id, entry), name=f"easel-status-{job_id}")

    def drawn(self, job_id: str) -> None:
        """The job's status was drawn outside the throttle (its message posted): the next draw waits an interval."""
        self._entries.setdefault(job_id, _Entry()).last_draw = asyncio.get_running_loop().time()

    async def release(self, job_id: str) -> None:
        """Stop drawing the job's status (its final view takes over): a value not drawn yet is dropped, and a draw
        in flight is let finish (see above)."""
        entry = self._entries.pop(job_id, None)
        if entry is None or entry.task is None or entry.task.done():
            return
        entry.latest = None
        if entry.drawing:
            await entry.task
        else:
            await _cancel(entry.task)

    async def close(self) -> None:
        """Stop every draw at once, in flight or not: the client is closing."""
        entries, self._entries = list(self._entries.values()), {}
        for entry in entries:
            if entry.task is not None:
                await _cancel(entry.task)

    async def _flush(self, job_id: str, entry: _Entry[T]) -> None:
        loop = asyncio.get_running_loop()
        while entry.latest is not None:
            wait = entry.last_draw + self.interval - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            value, entry.latest = entry.latest, None
            entry.drawing = True
            try:
                await self._draw(job_id, value)
            except Exception as error:
                log.warning("drawing the status of job %s failed: %r", job_id, error)
            finally:
                entry.drawing = False
            entry.last_draw = loop.time()


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
