"""Status updates at the pace a platform allows: at most one draw per job in flight and one per interval, the
latest view winning. Progress comes faster than any chat lets a bot edit a message, and a lost intermediate
state is harmless, so updates are coalesced rather than queued. Draws run in their own task, so a slow or
rate-limited platform never holds up the core that reports progress.
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
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class Throttle(Generic[T]):
    def __init__(self, interval: float, draw: Draw[T]) -> None:
        self.interval = interval
        self._draw = draw
        self._entries: dict[str, _Entry[T]] = {}
        self._quiet_until = 0.0

    def show(self, job_id: str, value: T) -> None:
        """Schedule a draw of `value`; returns at once."""
        entry = self._entries.setdefault(job_id, _Entry())
        entry.latest = value
        if entry.task is None or entry.task.done():
            entry.task = asyncio.create_task(self._flush(job_id, entry), name=f"easel-status-{job_id}")

    def drawn(self, job_id: str) -> None:
        """The job's status was drawn outside the throttle (its message posted): the next draw waits an interval."""
        self._entries.setdefault(job_id, _Entry()).last_draw = asyncio.get_running_loop().time()

    def hold(self, seconds: float) -> None:
        """The platform asked to wait (a rate limit): no job's status is drawn before then."""
        self._quiet_until = max(self._quiet_until, asyncio.get_running_loop().time() + seconds)

    async def release(self, job_id: str) -> None:
        """Stop drawing the job's status (its final view takes over); a draw under way is cancelled."""
        entry = self._entries.pop(job_id, None)
        if entry is not None and entry.task is not None and not entry.task.done():
            entry.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await entry.task

    async def close(self) -> None:
        for job_id in list(self._entries):
            await self.release(job_id)

    async def _flush(self, job_id: str, entry: _Entry[T]) -> None:
        loop = asyncio.get_running_loop()
        while entry.latest is not None:
            wait = max(entry.last_draw + self.interval, self._quiet_until) - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            value, entry.latest = entry.latest, None
            try:
                await self._draw(job_id, value)
            except Exception as error:
                log.warning("drawing the status of job %s failed: %r", job_id, error)
            entry.last_draw = loop.time()
