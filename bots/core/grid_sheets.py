"""A parameter grid from the GPU's point of view: its cells run as jobs, and their owner hears of the grid alone.

A cell's start starts the grid, a cell's progress is the grid's (the cells ended so far, plus this one's share),
and a cell's ending is never told: when the last cell of a grid ends, however it ended, the grid's sheet is drawn
from the cells that were made (a failed or blocked cell shows as a crossed square) and the grid ends with it, or
fails when no cell was made. Whoever writes the last cell's ending draws the sheet; two processes that both see
the last one end (a shared queue) race on one guarded write, and the loser says nothing.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from PIL import Image

from bots.core.accounts import Accounts, now
from bots.core.announcer import Announcer
from bots.core.files import Files
from bots.core.metrics import Metrics
from bots.core.persistence import persistently
from bots.core.types import EventKind
from bots.moderation.commands import Moderation
from generation.grids import Axis, cell_count, compose
from generation.previews import Preview
from storage.database import Database
from storage.errors import InvalidTransition
from storage.files import StoredFile
from storage.records import Job, JobState, OutputDraft

log = logging.getLogger(__name__)

GRID = "grid"
"""The operation stored on a grid's own job; its cells are the operation they run."""
ACTIVE = (JobState.QUEUED, JobState.RUNNING)


async def _nothing() -> None:
    """A cell's ending, which is not told."""


def grid_axes(job: Job) -> tuple[Axis, ...]:
    """The axes stored on a grid's job."""
    return tuple(Axis(option, tuple(values)) for option, values in job.parameters["grid"])


def grid_size(job: Job) -> int:
    """A grid's number of cells; 0 for any other job."""
    return cell_count(grid_axes(job)) if job.operation == GRID else 0


@dataclass(eq=False)
class GridSheets:
    db: Database
    files: Files
    accounts: Accounts
    moderation: Moderation
    announcer: Announcer
    metrics: Metrics
    _cells: dict[str, tuple[str, int, int]] = field(default_factory=dict, init=False)
    """Cells running here: their grid, the cells of it that had ended when this one started, and its size."""
    _shown: dict[str, float] = field(default_factory=dict, init=False)
    """Each grid's progress as last told: a cell may start before the one before it is written ended, so a count
    taken at its start can be one short; progress is told only when it goes forward."""

    def is_cell(self, job_id: str) -> bool:
        return job_id in self._cells

    async def started(self, cells: Sequence[Job]) -> None:
        """Cells have started: each grid that had not, starts (written running, then told)."""
        for grid_id in dict.fromkeys(cell.grid_id for cell in cells if cell.grid_id is not None):
            await self._start(grid_id, [cell for cell in cells if cell.grid_id == grid_id])

    async def _start(self, grid_id: str, cells: Sequence[Job]) -> None:
        siblings = await persistently(lambda: self.db.grid_cells(grid_id), f"the cells of grid {grid_id}")
        ended = sum(1 for sibling in siblings if sibling.state not in ACTIVE)
        for cell in cells:
            self._cells[cell.id] = (grid_id, ended, len(siblings))
        grid = await self.db.get_job(grid_id)
        if grid is None or grid.state is not JobState.QUEUED:
            return
        at = now()
        try:
            await persistently(lambda: self.db.mark_running(grid_id, at), f"the start of grid {grid_id}")
        except InvalidTransition:  # started by a cell on another host, or cancelled, in the meantime
            return
        await self.announcer.emit(EventKind.STARTED, grid_id)

    async def progress(
        self, job_ids: Sequence[str], fraction: float, previews: Sequence[Preview]
    ) -> tuple[list[str], list[Preview]]:
        """Tell each grid its progress for its cells among `job_ids`; the jobs that are not cells, with their
        previews, are left to the caller."""
        told: set[str] = set()
        others, kept = [], []
        for place, job_id in enumerate(job_ids):
            cell = self._cells.get(job_id)
            if cell is None:
                others.append(job_id)
                if previews:
                    kept.append(previews[place])
                continue
            grid_id, ended, size = cell
            previous = self._shown.get(grid_id, 0.0)
            if grid_id not in told and (ended + fraction) / size > previous:
                told.add(grid_id)
                self._shown[grid_id] = (ended + fraction) / size
                await self.announcer.emit(EventKind.PROGRESS, grid_id, progress=self._shown[grid_id])
        return others, kept

    def running_cell(self, job_id: str) -> str | None:
        """The grid of a job that started here and has ended, if it is a cell; the cell is forgotten."""
        cell = self._cells.pop(job_id, None)
        return cell[0] if cell is not None else None

    async def cell_ended(self, grid_id: str) -> Callable[[], Awaitable[None]]:
        """A cell of `grid_id` has ended and been written: the grid ends too when it was the last; what tells
        that (nothing, while cells are left or once the grid has ended, cancelled by its owner)."""
        grid = await self.db.get_job(grid_id)
        if grid is None or grid.state not in ACTIVE:
            self._shown.pop(grid_id, None)
            return _nothing
        cells = await self.db.grid_cells(grid_id)
        if any(cell.state in ACTIVE for cell in cells):
            return _nothing
        self._shown.pop(grid_id, None)
        try:
            return await self._finish(grid, cells)
        except InvalidTransition:  # another process drew the sheet first
            log.info("grid %s was ended elsewhere", grid_id)
            return _nothing

    async def _finish(self, grid: Job, cells: Sequence[Job]) -> Callable[[], Awaitable[None]]:
        ended = now()
        if grid.state is JobState.QUEUED:  # no cell ever started (each failed before it ran)
            await self.db.mark_running(grid.id, ended)
        made = [cell for cell in cells if cell.state is JobState.DONE]
        if not made:
            failed = next((cell for cell in cells if cell.state is JobState.FAILED), None)
            if failed is None:
                await self.db.mark_cancelled(grid.id, ended)
                self.metrics.ended(grid, "cancelled")
                return partial(self.announcer.emit, EventKind.CANCELLED, grid.id)
            key = failed.error_code or "error.internal"
            await self.db.mark_failed(grid.id, ended, key, f"every cell failed, the first with {key}")
            self.metrics.ended(grid, "failed")
            return partial(self.announcer.emit, EventKind.FAILED, grid.id, error_key=key)
        outputs = await self.db.outputs_of_jobs([cell.id for cell in made])
        firsts = {job_id: found[0] for job_id, found in outputs.items() if found}
        await self.files.fetch(output.path for output in firsts.values())
        images = await asyncio.to_thread(self._images, cells, firsts)
        sheet = await asyncio.to_thread(self._sheet, images, grid_axes(grid))
        scores = [output.nsfw_score for output in firsts.values() if output.nsfw_score is not None]
        stored, (width, height) = sheet
        output = OutputDraft(
            0, stored.path, stored.sha256, stored.size, width, height, grid.seed, max(scores, default=None)
        )
        translated = next((cell.processed_prompt for cell in made if cell.processed_prompt), None)
        await self.files.share([output.path])
        await self.db.mark_done(grid.id, ended, [output], processed_prompt=translated)  # the cells hold the charges
        self.metrics.ended(grid, "done")
        community = await self.accounts.community_by_id(grid.community_id)
        verdict = self.moderation.nsfw_verdict(community, scores, bool(grid.parameters.get("nsfw_channel")))
        log.info("grid %s done: %d of %d cells made", grid.id, len(made), len(cells))
        values: dict[str, Any] = {
            "files": (self.files.path_of(output.path),),
            "seeds": tuple(dict.fromkeys(cell.seed for cell in cells)),
            "translation": translated,
            "source_language": grid.parameters.get("language") if translated else None,
            "spoiler": verdict == "spoiler",
            "first_delivery": True,
            "grid_cells": len(cells),
        }
        return partial(self.announcer.emit, EventKind.DONE, grid.id, **values)

    def _images(self, cells: Sequence[Job], firsts: dict[str, Any]) -> list[Image.Image | None]:
        """Each cell's image in the cells' order; None where it was not made or its file is gone."""
        images: list[Image.Image | None] = []
        for cell in sorted(cells, key=lambda cell: int(cell.parameters.get("grid_cell", 0))):
            output = firsts.get(cell.id)
            try:
                images.append(Image.open(io.BytesIO(self.files.read(output.path))) if output else None)
            except OSError:
                log.warning("grid %s: the image of cell %s is missing", cell.grid_id, cell.id)
                images.append(None)
        return images

    def _sheet(self, images: list[Image.Image | None], axes: tuple[Axis, ...]) -> tuple[StoredFile, tuple[int, int]]:
        """The sheet drawn and kept; its file and its size."""
        buffer = io.BytesIO()
        drawn = compose(images, axes)
        drawn.save(buffer, "PNG")
        return self.files.put(buffer.getvalue(), ".png"), drawn.size
