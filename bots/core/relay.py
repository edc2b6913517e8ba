"""Job events between the processes that share a PostgreSQL database.

A worker on another host tells the front ends that a job started, how far it got, and that it ended, with NOTIFY
on `JOB_CHANNEL`; the front end that serves the job's platform tells its owner. An ending is only a hint: the
front end reads the result from the database and delivers it exactly once through the delivery ledger, and a
hint that was lost is found by the redelivery sweep. A preview (a JPEG of about 10 KB, more than a notification's
8,000 bytes) goes through the database: the worker keeps a running job's latest one in `file_blobs` and names it
in the notification, and drops it when the job ends.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from bots.core.deliveries import Deliveries
from bots.core.types import EventKind
from storage.database import Database

log = logging.getLogger(__name__)

JOB_CHANNEL = "easel_jobs"
RELAYED = frozenset({EventKind.STARTED, EventKind.PROGRESS, EventKind.DONE, EventKind.FAILED, EventKind.CANCELLED})


class Relay:
    def __init__(self, db: Database, deliveries: Deliveries) -> None:
        self._db = db
        self._deliveries = deliveries
        self._tasks: set[asyncio.Task[None]] = set()
        self._previewed: set[str] = set()

    async def publish(self, kind: EventKind, job_id: str, values: dict[str, Any]) -> None:
        """An event of a job whose platform this process does not serve; a lost one is harmless (see above)."""
        if kind not in RELAYED:
            return
        message: dict[str, Any] = {"kind": kind.value, "job": job_id, "progress": values.get("progress")}
        try:
            preview = values.get("preview")
            if preview is not None:
                message |= {"preview": preview_path(job_id), "spoiler": bool(values.get("spoiler"))}
                await self._db.replace_blob(preview_path(job_id), preview)
                self._previewed.add(job_id)
            await self._db.notify(JOB_CHANNEL, json.dumps(message))
            if kind.final and job_id in self._previewed:
                self._previewed.discard(job_id)
                await self._db.delete_blobs([preview_path(job_id)])
        except Exception as error:
            log.warning("telling the front ends of job %s %s failed: %r", job_id, kind.value, error)

    def notified(self, payload: str) -> None:
        """A NOTIFY on `JOB_CHANNEL`, from a worker in another process; nothing to do where no platform is served."""
        if not self._deliveries.announcer.serves_any:
            return
        message = json.loads(payload)
        task = asyncio.ensure_future(self._receive(EventKind(message["kind"]), message["job"], message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _receive(self, kind: EventKind, job_id: str, message: dict[str, Any]) -> None:
        deliveries = self._deliveries
        try:
            if kind.final:
                await deliveries.deliver_finished(job_id)
            elif kind is EventKind.STARTED:
                await deliveries.remote_started(job_id)
            elif deliveries.announcer.routes(job_id):
                values: dict[str, Any] = {"progress": message["progress"]}
                if "preview" in message:
                    preview = (await self._db.get_blobs([message["preview"]])).get(message["preview"])
                    values |= {"preview": preview, "spoiler": message["spoiler"]}
                await deliveries.announcer.emit(kind, job_id, **values)
        except Exception:
            log.exception("the %s event of job %s from another process was not passed on", kind.value, job_id)


def preview_path(job_id: str) -> str:
    """Where a running job's latest preview is kept for the front ends; one per job, replaced as it goes."""
    return f"previews/{job_id}.jpg"
