"""Acting on existing jobs: finding them by reference, cancelling, deleting, purging, and the messages that
show them.

A user acts on their own jobs, named by a full id or an unambiguous start of one; a moderator may act on
any job of their community by its full id, and every such action is written to the audit log.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bots.core.accounts import Accounts, now
from bots.core.files import Files
from bots.core.grid_sheets import GRID
from bots.core.lifecycle import Lifecycle
from bots.core.types import Actor, Cancellation, short_id
from bots.errors import UserError
from bots.moderation.commands import Moderation
from bots.moderation.policy import Moderator
from bots.texts import Text
from generation.codec import stored_paths
from generation.worker import Worker
from storage.database import Database
from storage.errors import InvalidTransition
from storage.records import Job, JobState, MessageLink, Output

ACTIVE_STATES = (JobState.QUEUED, JobState.RUNNING)
FINISHED_STATES = (JobState.DONE, JobState.FAILED, JobState.CANCELLED)
MIN_JOB_REFERENCE = 4


@dataclass(eq=False)
class Jobs:
    db: Database
    files: Files
    worker: Worker
    accounts: Accounts
    moderation: Moderation
    lifecycle: Lifecycle

    async def cancel(
        self, actor: Actor, reference: str | None = None, moderator: Moderator | None = None
    ) -> Cancellation:
        """Cancel one of the actor's own jobs, named by its id or an unambiguous start of it; without a
        reference, their newest job that is still queued or running. A moderator may cancel any job of their
        community by its full id."""
        if reference:
            job = await self._own_job(actor, reference, moderator, "cancel")
        else:
            job = await self._newest_active(actor)
        if job.operation == GRID and job.state in ACTIVE_STATES:
            return Cancellation(job.id, await self._cancel_grid(job))
        outcome = await self.worker.cancel(job.id)
        if outcome == "queued":
            await self.lifecycle.close(job.id, JobState.CANCELLED)
            return Cancellation(job.id, "queued")
        if outcome == "running":
            return Cancellation(job.id, "running")
        raise UserError("job.not_cancellable", job_id=short_id(job.id), state=Text(f"state.{job.state.value}"))

    async def delete(self, actor: Actor, job_id: str, moderator: Moderator | None = None) -> list[MessageLink]:
        """Delete the images of the actor's own job (or, for a moderator, of any job in their community);
        returns the messages that showed them, for the adapter to remove. The job row stays, marked deleted."""
        job = await self._own_job(actor, job_id, moderator, "delete")
        if job.state in ACTIVE_STATES:
            raise UserError("job.not_finished", job_id=short_id(job.id))
        return await self._delete(job)

    async def purge(self, moderator: Moderator, platform_user_id: str) -> list[MessageLink]:
        """Delete every finished image a user made in the moderator's community; returns their messages."""
        community = await self.moderation.community_of(moderator)
        target = await self.db.get_or_create_user(moderator.platform, platform_user_id)
        links: list[MessageLink] = []
        for job in await self.db.owner_jobs(target.id, FINISHED_STATES, limit=100_000, community_id=community.id):
            if job.deleted_at is None:
                links += await self._delete(job)
        await self.moderation.record(moderator, "purge", f"user:{target.id}", community_id=community.id)
        return links

    async def link_message(
        self, platform: str, chat_id: str, message_id: str, job_id: str, output_index: int | None = None
    ) -> None:
        """Remember that a platform message shows a job (or its image `output_index`)."""
        await self.db.link_message(platform, chat_id, message_id, job_id, output_index)

    async def job_of_message(self, platform: str, chat_id: str, message_id: str) -> MessageLink | None:
        return await self.db.find_message(platform, chat_id, message_id)

    async def messages_of(self, job_id: str) -> list[MessageLink]:
        """The messages that show a job: after a restart, what an adapter already posted for it."""
        return await self.db.messages_of(job_id)

    async def visible_job(self, job_id: str) -> Job:
        """A job that anyone who sees its message may build on (reroll, vary, edit): not deleted."""
        job = await self.db.get_job(job_id)
        if job is None or job.deleted_at is not None:
            raise UserError("job.not_found", job_id=short_id(job_id))
        return job

    async def output(self, job_id: str, index: int) -> tuple[Job, Output, bytes]:
        """One image of a visible job, with its bytes; a grid's sheet is not one: its cells are."""
        job = await self.visible_job(job_id)
        if job.operation == GRID:
            raise UserError("grid.pick_a_cell")
        outputs = await self.db.outputs_of(job_id)
        if not outputs:
            raise UserError("job.no_images", job_id=short_id(job_id))
        if not 0 <= index < len(outputs):
            raise UserError("job.no_such_image", job_id=short_id(job_id), number=index + 1, count=len(outputs))
        output = outputs[index]
        await self.files.fetch([output.path])
        try:
            data = await asyncio.to_thread(self.files.read, output.path)
        except OSError:
            raise UserError("job.not_found", job_id=short_id(job_id)) from None
        return job, output, data

    async def _cancel_grid(self, grid: Job) -> str:
        """The grid ends cancelled first, so that its cells' endings draw no sheet; then its cells still queued
        leave the queue (refunded) and a running one stops at its next step."""
        outcome = "queued" if grid.state is JobState.QUEUED else "running"
        try:
            await self.lifecycle.close(grid.id, JobState.CANCELLED)
        except InvalidTransition:  # its last cell ended, and its sheet was drawn, in the meantime
            raise UserError("job.not_cancellable", job_id=short_id(grid.id), state=Text("state.done")) from None
        for cell in await self.db.grid_cells(grid.id):
            if cell.state in ACTIVE_STATES and await self.worker.cancel(cell.id) == "queued":
                await self.lifecycle.close(cell.id, JobState.CANCELLED)
        return outcome

    async def _delete(self, job: Job) -> list[MessageLink]:
        """Its images and its uploads go, unless another job still names the same file; a grid's cells go
        with it."""
        links = []
        if job.operation == GRID:
            for cell in await self.db.grid_cells(job.id):
                links += await self._delete(cell)
        paths = [output.path for output in await self.db.outputs_of(job.id)] + stored_paths(job.parameters)
        await self.db.mark_deleted(job.id, now())
        kept = await self.db.paths_kept(paths, [job.id])
        await self.files.remove(path for path in paths if path not in kept)
        return links + await self.db.messages_of(job.id)

    async def _own_job(self, actor: Actor, reference: str, moderator: Moderator | None, action: str) -> Job:
        """The actor's job named by its full id or by the start of one of their own job ids; or, named by its
        full id, another user's job that `moderator` may act on (logged as `action`)."""
        user = await self.accounts.user(actor)
        reference = reference.strip().lower()
        job = await self.db.get_job(reference)
        if job is not None:
            if job.owner_id == user.id:
                return job
            if not await self.moderation.may_act_on(moderator, job):
                raise UserError("job.not_yours", job_id=short_id(job.id))
            assert moderator is not None
            await self.moderation.record(moderator, action, f"job:{job.id}", community_id=job.community_id)
            return job
        if len(reference) < MIN_JOB_REFERENCE:
            raise UserError("job.not_found", job_id=reference)
        matches = await self.db.owner_jobs(user.id, id_prefix=reference, limit=2)
        if not matches:
            raise UserError("job.not_found", job_id=reference)
        if len(matches) > 1:
            raise UserError("job.ambiguous", job_id=reference)
        return matches[0]

    async def _newest_active(self, actor: Actor) -> Job:
        user = await self.accounts.user(actor)
        active = await self.db.active_jobs(user.id)
        if not active:
            raise UserError("job.none_active")
        return active[-1]
