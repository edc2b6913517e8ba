"""What a restart finds: the jobs a previous run left queued or running, queued again or followed.

A running job is retried once. A grid's own job is never queued: its cells are, like any job, without telling
their owner anything of them, and a grid whose cells all ended before the sheet was drawn (a crash in between)
is finished here.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from bots.config import Settings
from bots.core.announcer import Announcer
from bots.core.files import Files
from bots.core.grid_sheets import GRID, GridSheets
from bots.core.lifecycle import MAX_ATTEMPTS, Lifecycle, community_key, user_key
from bots.core.positions import Positions
from bots.errors import user_error
from bots.moderation.tiers import tier_of
from generation.codec import stored_paths
from generation.errors import QueueRefused
from generation.scheduler import DuplicateJob
from generation.worker import Worker, WorkItem
from storage.database import Database
from storage.records import Job, JobState, User

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Recovery:
    settings: Settings
    db: Database
    files: Files
    worker: Worker
    announcer: Announcer
    positions: Positions
    lifecycle: Lifecycle
    grids: GridSheets

    async def recover(self) -> int:
        """Re-enqueue what a previous run left queued or running. A job the queue holds already (a queue in the
        database, shared with other processes) is only followed: its events reach its owner from here."""
        recovered = 0
        grids: list[Job] = []
        for job in await self.db.jobs_in_states([JobState.QUEUED, JobState.RUNNING]):
            if job.operation == GRID:
                if self.announcer.serves(job.platform):
                    await self.announcer.route_stored(job)
                grids.append(job)
                continue
            if job.id in self.worker.queue and job.state is JobState.RUNNING:
                unstarted = await self._unstart(job)
                if unstarted is None:
                    continue
                job = unstarted
            if job.id in self.worker.queue or self.worker.is_running(job.id):
                if self.announcer.serves(job.platform) and job.grid_id is None:
                    await self.announcer.route_stored(job)
                    if job.id in self.worker.queue:
                        self.positions.track(job.id, (job.platform, job.channel_id), told=None, eta_seconds=None)
                continue
            recovered += await self.requeue(job)
        for grid in grids:
            await self._follow(grid)
        if recovered:
            log.info("re-enqueued %d jobs left by the previous run", recovered)
        return recovered

    async def _follow(self, grid: Job) -> None:
        """A grid left by the previous run: finished when its cells all ended, else its owner told its place (its
        first queued cell's) as for any waiting job."""
        announce = await self.grids.cell_ended(grid.id)
        await announce()
        queued = [cell for cell in await self.db.grid_cells(grid.id) if cell.id in self.worker.queue]
        if queued and self.announcer.serves(grid.platform):
            chat = (grid.platform, grid.channel_id)
            self.positions.track(queued[0].id, chat, told=None, eta_seconds=None, shown_as=grid.id)

    async def _unstart(self, job: Job) -> Job | None:
        """A job written running that the shared queue still holds queued: its start was written and then undone
        by a crash. Back to queued, or failed after `MAX_ATTEMPTS` starts."""
        if job.attempts < MAX_ATTEMPTS:
            return await self.db.requeue_job(job.id)
        log.error("job %s was interrupted %d times; giving up", job.id, job.attempts)
        await self.worker.cancel(job.id)
        await self.lifecycle.close(job.id, JobState.FAILED, error_key="error.internal")
        return None

    async def requeue(self, job: Job) -> int:
        """A job the queue does not hold, queued again; 1 if it was."""
        owner = await self._owner(job)
        if job.state is JobState.RUNNING and job.attempts >= MAX_ATTEMPTS:
            log.error("job %s was interrupted %d times; giving up", job.id, job.attempts)
            await self.lifecycle.close(job.id, JobState.FAILED, error_key="error.internal")
            return 0
        try:
            await self.files.fetch(stored_paths(job.parameters))
            request = await asyncio.to_thread(self.lifecycle.rebuild, job)
        except (ValueError, KeyError, OSError) as error:  # a damaged row, a newer codec, a missing input
            log.error("job %s cannot be rebuilt after a restart: %s", job.id, error)
            await self.lifecycle.close(job.id, JobState.FAILED, error_key="error.internal")
            return 0
        if job.state is JobState.RUNNING:
            await self.db.requeue_job(job.id)
        weight = self.settings.tier(tier_of(self.settings, owner)).weight
        item = WorkItem(
            job.id, request, user_key(owner.id), community_key(job.community_id), weight, counted=counted(job)
        )
        try:
            await self.worker.submit(item)
        except DuplicateJob:  # another process recovering at the same time queued it first
            return 0
        except QueueRefused as error:  # the caps were lowered since the job was accepted
            await self.lifecycle.close(job.id, JobState.FAILED, error_key=user_error(error).key)
            return 0
        if job.grid_id is None:
            self.positions.track(job.id, (job.platform, job.channel_id), told=None, eta_seconds=None)
        return 1

    async def _owner(self, job: Job) -> User:
        """The job's owner, its events routed to them; a cell's events are its grid's, so it is not routed."""
        if job.grid_id is None:
            return await self.announcer.route_stored(job)
        owner = await self.db.get_user(job.owner_id)
        assert owner is not None, f"job {job.id} has no owner"
        return owner


def counted(job: Job) -> bool:
    """Whether a job holds a place of its owner's cap: a grid's cells hold one between them, the last cell's."""
    if job.grid_id is None:
        return True
    return int(job.parameters.get("grid_cell", 0)) == int(job.parameters.get("grid_cells", 1)) - 1
