"""A job's server-sent events: its state at once, then what the core announces, and the whole job at its end.

Events of a job asked for over HTTP arrive from the core as they happen (`JobFeed`); every POLL_SECONDS without
one, the job is read again from the database, so a job asked for in a chat, or run by another process, is
followed all the same, and the stream ends when the job does even if its final event went elsewhere.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable

from bots.core.access import Caller
from bots.core.facade import Core
from bots.core.types import EventKind, JobDetail
from bots.http import schemas
from bots.http.feed import JobFeed

POLL_SECONDS = 1.0
KEEP_ALIVE_SECONDS = 15.0
FINAL_STATES = frozenset({"done", "failed", "cancelled"})


def message(event: str, data: object) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def job_events(
    core: Core, feed: JobFeed, caller: Caller, detail: JobDetail, shown: Callable[[JobDetail], schemas.Job]
) -> AsyncIterator[bytes]:
    with feed.watch(detail.job_id) as events:
        detail = await core.job_reads.job(caller, detail.job_id)  # what happened since the request was read
        yield message("state", shown(detail).model_dump(mode="json"))
        last = (detail.state, detail.position)
        quiet = 0.0
        while detail.state not in FINAL_STATES and not feed.closing.is_set():
            try:
                event = await asyncio.wait_for(events.get(), POLL_SECONDS)
            except TimeoutError:
                quiet += POLL_SECONDS
                detail = await core.job_reads.job(caller, detail.job_id)
                if (detail.state, detail.position) != last and detail.state not in FINAL_STATES:
                    last = (detail.state, detail.position)
                    yield message("state", shown(detail).model_dump(mode="json"))
                elif quiet >= KEEP_ALIVE_SECONDS:
                    quiet = 0.0
                    yield b": keep-alive\n\n"
                continue
            quiet = 0.0
            if event.kind.final:
                detail = await core.job_reads.job(caller, detail.job_id)
                continue
            if event.kind is EventKind.PROGRESS:
                yield message("progress", {"progress": event.progress})
                if event.preview is not None:
                    picture = base64.b64encode(event.preview).decode()
                    yield message("preview", {"image": f"data:image/jpeg;base64,{picture}", "spoiler": event.spoiler})
            elif event.kind is EventKind.POSITION:
                yield message("position", {"position": event.position, "eta_seconds": event.eta_seconds})
            elif event.kind is EventKind.STARTED:
                yield message("started", {"state": "running"})
        if detail.state in FINAL_STATES:
            yield message(detail.state, shown(detail).model_dump(mode="json"))
