"""A user's own jobs read one by one, with their images, for the surfaces outside the chats (the REST API, the web
pages), by a caller whose token or session `Access` checked already, so no user is looked up again. Only the
owner reads a job here; anyone else is told it does not exist, so ids cannot be probed. A job whose images were
deleted is gone from here too (its row stays, for the moderation log)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bots.core.access import Caller
from bots.core.files import Files
from bots.core.grid_sheets import GRID
from bots.core.types import ImageInfo, JobDetail, QueueSpot, short_id
from bots.errors import UserError
from generation.worker import Worker
from storage.database import Database
from storage.records import Job, JobState, Output, User

HISTORY_LIMIT = 100
QUEUE_SHOWN = 100


@dataclass(eq=False)
class JobReads:
    db: Database
    files: Files
    worker: Worker

    async def job(self, caller: Caller, job_id: str) -> JobDetail:
        job, outputs = await self._own(caller.user, job_id)
        return self._detail(job, outputs)

    async def jobs(self, caller: Caller, limit: int = 20) -> list[JobDetail]:
        """The caller's newest jobs (a grid's cells are in their grid), in two queries however many."""
        jobs = await self.db.owner_jobs(caller.user.id, limit=max(1, min(limit, HISTORY_LIMIT)), deleted=False)
        outputs = await self.db.outputs_of_jobs([job.id for job in jobs])
        return [self._detail(job, outputs.get(job.id, [])) for job in jobs]

    async def everyone(self, caller: Caller) -> list[QueueSpot]:
        """The queue as anyone may see it: what runs, then what waits, in order; only the caller's own jobs
        show their prompt and id. A grid is shown as its cells, which are what waits."""
        user = caller.user
        positions = self.worker.positions()
        spots = [
            QueueSpot(
                job.state.value,
                job.operation,
                positions.get(job.id),
                job.owner_id == user.id,
                job.id if job.owner_id == user.id else None,
                job.prompt if job.owner_id == user.id else None,
            )
            for job in await self.db.jobs_in_states([JobState.RUNNING, JobState.QUEUED])
            if job.operation != GRID
        ]
        spots.sort(key=lambda spot: (spot.state != JobState.RUNNING.value, spot.position or 1 << 30))
        return spots[:QUEUE_SHOWN]

    async def image(self, caller: Caller, job_id: str, number: int) -> tuple[str, bytes]:
        """One image of the caller's job (1 for the first; a grid's is its sheet): its file name and bytes."""
        job, outputs = await self._own(caller.user, job_id)
        if not outputs:
            raise UserError("job.no_images", job_id=short_id(job.id))
        if not 1 <= number <= len(outputs):
            raise UserError("job.no_such_image", job_id=short_id(job.id), number=number, count=len(outputs))
        output = outputs[number - 1]
        await self.files.fetch([output.path])
        try:
            data = await asyncio.to_thread(self.files.read, output.path)
        except OSError:
            raise UserError("job.no_images", job_id=short_id(job.id)) from None
        return output.path.rsplit("/", 1)[-1], data

    async def _own(self, user: User, job_id: str) -> tuple[Job, list[Output]]:
        found = await self.db.job_with_outputs(job_id.strip().lower()) if job_id.strip() else None
        if found is None or found[0].owner_id != user.id or found[0].deleted_at is not None:
            raise UserError("job.not_found", job_id=short_id(job_id))
        return found

    def _detail(self, job: Job, outputs: list[Output]) -> JobDetail:
        translation = job.processed_prompt if job.processed_prompt not in (None, job.prompt) else None
        return JobDetail(
            job.id,
            job.operation,
            job.state.value,
            job.prompt,
            job.negative_prompt,
            translation,
            job.seed,
            job.created_at,
            job.started_at,
            job.finished_at,
            job.parent_id,
            job.error_code,
            tuple(ImageInfo(output.index + 1, output.width, output.height, output.seed) for output in outputs),
            self.worker.position(job.id),
            self.worker.eta(job.id),
        )
