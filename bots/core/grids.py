"""Parameter grids from the user's side: asked for, rerolled, cancelled, and a cell sent alone on request.

A grid is screened, styled and validated as one request, then written as its own job (which no worker runs)
and one job per cell, charged together: the quota of every cell is reserved in the transaction that writes
them, so a grid is accepted whole or refused whole. The cells enter the fair queue as any jobs do, holding one
place of their owner's cap between them; `GridSheets` tells the owner of the grid alone.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace

from bots.core.admission import Admission, quota_error, today
from bots.core.announcer import Announcer, Route
from bots.core.files import Files
from bots.core.grid_sheets import GRID, grid_axes
from bots.core.intake import answered
from bots.core.jobs import Jobs
from bots.core.languages import untranslated
from bots.core.lifecycle import Lifecycle, community_key, user_key
from bots.core.positions import Positions
from bots.core.types import Actor, EventKind, JobEvent, Place, Receipt, short_id
from bots.errors import UserError, user_error
from bots.moderation.commands import Moderation
from generation.asks import Ask, Options
from generation.codec import decode, encode
from generation.costs import job_cost
from generation.errors import QueueRefused
from generation.grids import Axis, cell_options
from generation.requests import SEED_LIMIT
from generation.worker import Worker, WorkItem
from storage.database import Database
from storage.errors import QuotaExceeded
from storage.records import Job, JobDraft, JobState, QuotaReservation


@dataclass(eq=False)
class Grids:
    db: Database
    files: Files
    worker: Worker
    moderation: Moderation
    announcer: Announcer
    lifecycle: Lifecycle
    admission: Admission
    jobs: Jobs
    positions: Positions

    async def submit(
        self, actor: Actor, place: Place, ask: Ask, axes: tuple[Axis, ...], parent_job_id: str | None = None
    ) -> Receipt:
        """A txt2img `ask` made once per combination of `axes`' values, every cell with the same seed unless the
        seed is an axis; answered like any request (its place is its first cell's, its wait its last cell's)."""
        prepared = await self.admission.prepare(actor, place, replace(ask, operation="txt2img"))
        user, community_id, ask, shown_prompt, limits, tier = prepared.parts()
        combinations = cell_options(axes)
        if len(combinations) > limits.max_grid_cells:
            raise UserError("grid.too_many_cells", cells=len(combinations), limit=limits.max_grid_cells)
        seed = ask.options.seed if ask.options.seed is not None else secrets.randbelow(SEED_LIMIT)
        base = replace(ask.options, seed=seed, count=1)
        asks = [replace(ask, options=Options.of(values).over(base)) for values in combinations]
        requests = [self.admission.build(cell, limits) for cell in asks]
        try:
            self.worker.queue.check_capacity(user_key(user.id))
        except QueueRefused as error:
            raise user_error(error) from None
        extra = {"nsfw_channel": place.nsfw}
        grid_draft = JobDraft(
            owner_id=user.id,
            community_id=community_id,
            platform=place.platform,
            channel_id=place.channel_id,
            operation=GRID,
            parameters={
                **encode(requests[0], asks[0], self._no_input),
                **extra,
                "grid": [[axis.option, list(axis.values)] for axis in axes],
            },
            prompt=shown_prompt,
            negative_prompt=requests[0].negative_prompt,
            seed=seed,
            cost=sum(job_cost(request) for request in requests),
            parent_id=parent_job_id,
            answers=answered(),
        )
        drafts = [
            (
                replace(
                    grid_draft,
                    operation=str(request.operation),
                    parameters={
                        **encode(request, cell, self._no_input),
                        **extra,
                        "grid_cell": n,
                        "grid_cells": len(asks),
                    },
                    negative_prompt=request.negative_prompt,
                    seed=request.seed,
                    cost=job_cost(request),
                    parent_id=None,
                    answers=None,
                ),
                QuotaReservation(
                    today(), 1, self.worker.throughput.seconds(request), tier.images_per_day, tier.gpu_seconds_per_day
                ),
            )
            for n, (request, cell) in enumerate(zip(requests, asks, strict=True))
        ]
        try:
            grid, cells = await self.db.create_grid(grid_draft, drafts)
        except QuotaExceeded as error:
            raise quota_error(error.resource, tier) from None
        language = user.chosen_language or actor.language or user.language or requests[0].language
        self.announcer.route(
            grid.id, Route(place.platform, place.channel_id, actor.user_id, language, grid.prompt, place.message_id)
        )
        untold = untranslated(self.admission.settings.translation, requests[0].language)
        receipt: Receipt | None = None
        for n, (cell, request) in enumerate(zip(cells, requests, strict=True)):
            last = n == len(cells) - 1
            item = WorkItem(cell.id, request, user_key(user.id), community_key(community_id), tier.weight, counted=last)
            await self._enqueue(grid, cells, item)
            if receipt is None:  # told as soon as its first cell can start, so that its start never comes first
                rest = sum(self.worker.throughput.seconds(later) for later in requests[1:])
                first_eta = self.worker.eta(cell.id)
                receipt = Receipt(
                    grid.id, self.worker.position(cell.id), None if first_eta is None else first_eta + rest
                )
                await self.admission.tell_queued(grid, actor, receipt, untold)
                if receipt.position is not None:
                    chat = (place.platform, place.channel_id)
                    self.positions.track(
                        cell.id, chat, receipt.position, first_eta, shown_as=grid.id, after_seconds=rest
                    )
        assert receipt is not None
        return receipt

    async def _enqueue(self, grid: Job, cells: list[Job], item: WorkItem) -> None:
        """One cell into the fair queue; a queue that is full fails the grid and takes back the cells already
        queued (their charges refunded)."""
        try:
            await self.worker.submit(item)
        except QueueRefused as error:
            await self.lifecycle.close(grid.id, JobState.FAILED, error_key="queue.refused")
            for queued in cells:
                if await self.worker.cancel(queued.id) != "running":
                    await self.lifecycle.close(queued.id, JobState.CANCELLED)
            raise user_error(error) from None

    async def reroll(self, actor: Actor, place: Place, grid: Job) -> Receipt:
        """The same grid with a new seed (unless the seed is one of its axes), for whoever asks."""
        ask = decode(grid.parameters, grid.seed, self.files.read)
        ask = replace(ask, options=ask.options.without("seed"), shown=grid.prompt)
        return await self.submit(actor, place, ask, grid_axes(grid), grid.id)

    async def cell(self, actor: Actor, place: Place, job_id: str, index: int) -> JobEvent:
        """One cell of a grid as a result of its own (its image, its seed, its buttons), for whoever asks where
        they ask; the adapter shows it as the answer to the button, outside the delivery ledger, as often as asked."""
        grid = await self.jobs.visible_job(job_id)
        cells = sorted(await self.db.grid_cells(grid.id), key=lambda cell: int(cell.parameters.get("grid_cell", 0)))
        if grid.operation != GRID or not 0 <= index < len(cells):
            raise UserError("job.no_such_image", job_id=short_id(job_id), number=index + 1, count=max(len(cells), 1))
        cell = cells[index]
        outputs = await self.db.outputs_of(cell.id)
        if cell.state is not JobState.DONE or cell.deleted_at is not None or not outputs:
            raise UserError("grid.cell_not_made", number=index + 1)
        await self.files.fetch(output.path for output in outputs)
        scores = [output.nsfw_score for output in outputs if output.nsfw_score is not None]
        community = await self.admission.accounts.community_by_id(cell.community_id)
        verdict = self.moderation.nsfw_verdict(community, scores, bool(cell.parameters.get("nsfw_channel")))
        event = JobEvent(
            EventKind.DONE,
            cell.id,
            place.platform,
            place.channel_id,
            actor.user_id,
            actor.language,
            cell.prompt,
            files=tuple(self.files.path_of(output.path) for output in outputs),
            seeds=tuple(output.seed for output in outputs),
            translation=cell.processed_prompt,
            spoiler=verdict == "spoiler",
            reply_to=place.message_id,
            first_delivery=True,
        )
        return event

    @staticmethod
    def _no_input(data: bytes) -> str:
        raise AssertionError("a grid takes no input image")
