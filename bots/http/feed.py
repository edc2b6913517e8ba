"""Live events of the jobs asked for over HTTP, for their event streams: the core announces them to this
platform's listener, which hands each to whoever watches the job. A watcher also reads the job from the
database now and then (`bots.http.streams.job_events`), so jobs asked for in a chat, or events lost, still reach it."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from bots.core.types import EventKind, JobEvent

PROGRESS_KEPT = 10_000
WATCHER_BACKLOG = 100
"""Events a slow watcher may fall behind by; older progress is dropped for it, never a final event."""


class JobFeed:
    def __init__(self) -> None:
        self._watchers: dict[str, set[asyncio.Queue[JobEvent]]] = {}
        self._progress: OrderedDict[str, float] = OrderedDict()
        self.closing = asyncio.Event()
        """Set when the server stops: every stream ends."""

    def progress(self, job_id: str) -> float | None:
        return self._progress.get(job_id)

    async def on_event(self, event: JobEvent) -> None:
        """The listener of the HTTP platform: nothing to send anywhere (the job's state is in the database), so
        a final event is delivered once it is handed to the watchers."""
        if event.kind is EventKind.PROGRESS:
            self._progress[event.job_id] = event.progress
            self._progress.move_to_end(event.job_id)
            while len(self._progress) > PROGRESS_KEPT:
                self._progress.popitem(last=False)
        elif event.kind.final:
            self._progress.pop(event.job_id, None)
        for queue in self._watchers.get(event.job_id, ()):
            if queue.full() and not event.kind.final:
                continue
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

    @contextmanager
    def watch(self, job_id: str) -> Iterator[asyncio.Queue[JobEvent]]:
        queue: asyncio.Queue[JobEvent] = asyncio.Queue(WATCHER_BACKLOG)
        self._watchers.setdefault(job_id, set()).add(queue)
        try:
            yield queue
        finally:
            watchers = self._watchers.get(job_id, set())
            watchers.discard(queue)
            if not watchers:
                self._watchers.pop(job_id, None)
