"""Final results delivered from the database: after a restart, after a platform was down, and for jobs that a
worker in another process ran (`bots.core.relay`).

The delivery ledger (`Announcer`) makes each delivery count once; here one sweep or delivery runs at a time, so a
job that one of them is delivering is found delivered by the next.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from bots.core.accounts import Accounts
from bots.core.announcer import Announcer
from bots.core.files import Files
from bots.core.grid_sheets import grid_size
from bots.core.positions import Positions
from bots.core.types import EventKind
from bots.moderation.commands import Moderation
from storage.database import Database
from storage.records import DeliveryState, Job, JobState

log = logging.getLogger(__name__)

FINAL_KINDS = {
    JobState.DONE: EventKind.DONE,
    JobState.FAILED: EventKind.FAILED,
    JobState.CANCELLED: EventKind.CANCELLED,
}


@dataclass(eq=False)
class Deliveries:
    db: Database
    files: Files
    accounts: Accounts
    moderation: Moderation
    announcer: Announcer
    positions: Positions
    _redelivering: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)
    _stopping: bool = field(default=False, init=False, repr=False)

    async def redeliver(self, platform: str | None = None) -> int:
        """Announce again the final results that were never delivered (only `platform`'s, when given: an
        adapter asks as soon as its platform answers again). One sweep at a time, so a sweep that starts while
        another runs finds what that one delivered."""
        async with self._redelivering:
            return await self._redeliver(platform)

    async def stop_redelivering(self) -> None:
        """At a stop: no sweep delivers another job, and the one in flight finishes the job it is delivering.
        Cancelled mid-job, a photo Telegram received would be left unrecorded, and sent again at the next start."""
        self._stopping = True
        async with self._redelivering:
            pass

    async def _redeliver(self, platform: str | None) -> int:
        count = 0
        for job in await self.db.undelivered_jobs():
            if self._stopping:
                break
            if (platform is not None and job.platform != platform) or not self.announcer.may_redeliver(job):
                continue
            await self._deliver_stored(job, again=True)
            count += 1
        return count

    async def deliver_finished(self, job_id: str) -> None:
        """A job that another process ran has ended: tell its owner from here, if this process serves its platform
        and nobody has told them yet."""
        async with self._redelivering:
            job = await self.db.get_job(job_id)
            if self._stopping or job is None or not self.announcer.serves(job.platform):
                return
            if job.state not in FINAL_KINDS or job.delivery_state is not DeliveryState.PENDING:
                return
            self.positions.forget([job_id])
            await self._deliver_stored(job, again=job.delivery_attempts > 0)

    async def remote_started(self, job_id: str) -> None:
        """A job of this process's platforms started on another host."""
        if self.announcer.routes(job_id):
            self.positions.forget([job_id])
            self.positions.moved(1)
            await self.announcer.emit(EventKind.STARTED, job_id)

    async def _deliver_stored(self, job: Job, *, again: bool) -> None:
        await self.announcer.route_stored(job)
        outputs = await self.db.outputs_of(job.id)
        await self.files.fetch(output.path for output in outputs)
        if again:
            log.info(
                "delivering job %s (%s) again: attempt %d, %d earlier failed",
                job.id,
                job.state.value,
                job.delivery_attempts + 1,
                job.delivery_attempts,
            )
        await self.announcer.emit(
            FINAL_KINDS[job.state],
            job.id,
            error_key=job.error_code,
            delivery_attempts=job.delivery_attempts,
            files=tuple(self.files.path_of(output.path) for output in outputs),
            seeds=tuple(output.seed for output in outputs),
            translation=job.processed_prompt,
            source_language=job.parameters.get("language") if job.processed_prompt else None,
            spoiler=await self._spoilered(job, [o.nsfw_score for o in outputs if o.nsfw_score is not None]),
            grid_cells=grid_size(job),
        )

    async def _spoilered(self, job: Job, scores: Sequence[float]) -> bool:
        if not self.moderation.flagged(scores):
            return False
        community = await self.accounts.community_by_id(job.community_id)
        return self.moderation.nsfw_verdict(community, scores, bool(job.parameters.get("nsfw_channel"))) == "spoiler"
