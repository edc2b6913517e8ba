"""Parameter grids through the core, on SQLite and on PostgreSQL: one job per cell in the fair queue, charged
together, one labelled sheet told to the owner (never the cells one by one), a cell sent alone on request, and a
grid cancelled, refused, rerolled or recovered as one request."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from core_stack import Launch, Stack, core_settings
from PIL import Image

from bots.config import TierSettings
from bots.core.grid_sheets import GRID
from bots.core.types import Actor, EventKind, JobEvent, Place
from bots.errors import UserError
from generation.asks import Ask, Options
from generation.engine import GenerationResult
from generation.grids import Axis
from generation.requests import GenerationRequest
from generation.worker import CancelCheck, ProgressCallback
from storage.records import JobState

GUILD = Place("test", "channel-1", "guild-1", "Guild")
ANN = Actor("test", "ann", "Ann", "en")
BOB = Actor("test", "bob", "Bob", "en")
STEPS_AND_GUIDANCE = (Axis("steps", (2, 3)), Axis("guidance", (2, 4, 6)))


def colour(request: GenerationRequest) -> tuple[int, int, int]:
    return (request.steps * 40 % 256, int(request.guidance_scale * 30) % 256, request.seed % 251)


class Painter:
    """Each image a flat colour read from its request, after progress at a quarter and at three quarters, `seconds`
    apart; a batch holding a request whose steps are in `failing` fails; while `gate` is closed, every batch waits
    for it."""

    def __init__(self, failing: Sequence[int] = (), seconds: float = 0.0) -> None:
        self.failing = set(failing)
        self.seconds = seconds
        self.gate = threading.Event()
        self.gate.set()
        self.batches: list[list[int]] = []

    def __call__(
        self, batch: Sequence[GenerationRequest], on_progress: ProgressCallback, should_cancel: CancelCheck
    ) -> list[GenerationResult]:
        assert self.gate.wait(20), "the gate never opened"
        self.batches.append([request.steps for request in batch])
        on_progress(0.25)
        time.sleep(self.seconds)
        on_progress(0.75)
        if any(request.steps in self.failing for request in batch):
            raise RuntimeError("this batch fails")
        return [
            GenerationResult(
                request, (Image.new("RGB", (request.width, request.height), colour(request)),), request.seeds
            )
            for request in batch
        ]


@dataclass
class Grids:
    stack: Stack
    painter: Painter
    events: list[JobEvent] = field(default_factory=list)

    async def listener(self, event: JobEvent) -> None:
        self.events.append(event)

    async def final(self, job_id: str) -> JobEvent:
        async def wait() -> JobEvent:
            while not (found := [e for e in self.events if e.job_id == job_id and e.kind.final]):
                await asyncio.sleep(0.01)
            return found[0]

        return await asyncio.wait_for(wait(), 30)

    async def usage(self, actor: Actor = ANN) -> int:
        return (await self.stack.core.quota(actor)).images


@pytest.fixture
def launch(database_url: str, stack: Launch, tmp_path: Path) -> object:
    """The database first, so that its teardown (a PostgreSQL database is dropped) comes after the stacks stop."""

    async def start(painter: Painter | None = None, **sections: dict[str, object]) -> Grids:
        painter = painter or Painter()
        settings = core_settings(tmp_path, storage={"database_url": database_url}, **sections)
        running = await stack(settings, painter)
        grids = Grids(running, painter)
        running.core.listen("test", grids.listener)
        await running.core.recover()
        return grids

    return start


def fox(**options: object) -> Ask:
    return Ask("txt2img", "a red fox", Options(width=64, height=64, **options))  # type: ignore[arg-type]


def sheet_of(event: JobEvent) -> np.ndarray:
    (path,) = event.files
    return np.asarray(Image.open(io.BytesIO(path.read_bytes())).convert("RGB"))


async def test_a_grid_runs_a_job_per_cell_and_tells_its_owner_one_labelled_sheet(launch) -> None:  # type: ignore[no-untyped-def]
    grids: Grids = await launch()
    receipt = await grids.stack.core.grid(ANN, GUILD, fox(seed=11), STEPS_AND_GUIDANCE)
    done = await grids.final(receipt.job_id)
    assert done.kind is EventKind.DONE and done.grid_cells == 6 and done.seeds == (11,)
    cells = await grids.stack.db.grid_cells(receipt.job_id)
    assert [cell.state for cell in cells] == [JobState.DONE] * 6
    assert [(cell.parameters["steps"], cell.parameters["guidance_scale"]) for cell in cells] == [
        (2, 2.0),
        (3, 2.0),
        (2, 4.0),
        (3, 4.0),
        (2, 6.0),
        (3, 6.0),
    ]
    assert {cell.seed for cell in cells} == {11}, "every cell keeps the seed, so only the axes differ"
    sheet = sheet_of(done)
    for cell in cells:
        wanted = (cell.parameters["steps"] * 40 % 256, int(cell.parameters["guidance_scale"] * 30), 11)
        assert np.all(sheet == wanted, axis=-1).sum() > 30 * 30, f"cell {cell.parameters['grid_cell']} on the sheet"
    told = {event.job_id for event in grids.events}
    assert told == {receipt.job_id}, "the cells are never told one by one"
    assert [e.kind for e in grids.events if e.kind in (EventKind.QUEUED, EventKind.STARTED)] == ["queued", "started"]
    assert await grids.usage() == 6, "each cell is an image of the owner's day"
    history = await grids.stack.core.history(ANN)
    assert [(item.job_id, item.operation) for item in history] == [(receipt.job_id, GRID)]


async def test_a_grids_progress_never_goes_back_when_a_cell_starts_before_the_last_is_written(launch) -> None:  # type: ignore[no-untyped-def]
    painter = Painter()
    painter.gate.clear()
    grids: Grids = await launch(painter, queue={"max_batch_images": 1})
    receipt = await grids.stack.core.grid(ANN, GUILD, fox(), (Axis("seed", (1, 2, 3)),))
    while not [event for event in grids.events if event.kind is EventKind.STARTED]:
        await asyncio.sleep(0.01)
    first, second, _ = await grids.stack.db.grid_cells(receipt.job_id)
    sheets = grids.stack.core.grid_sheets
    await sheets.started([second])  # as a second worker would, while the first cell is not yet written ended
    await sheets.progress([first.id], 0.9, ())
    await sheets.progress([second.id], 0.1, ())
    painter.gate.set()
    await grids.final(receipt.job_id)
    progress = [event.progress for event in grids.events if event.kind is EventKind.PROGRESS]
    assert progress[0] == 0.3 and progress == sorted(set(progress)), f"told only forward: {progress}"


async def test_a_waiting_grid_is_told_its_place_as_the_queue_moves(launch) -> None:  # type: ignore[no-untyped-def]
    painter = Painter(seconds=0.3)
    painter.gate.clear()
    grids: Grids = await launch(painter, queue={"max_batch_images": 1, "position_chat_interval_seconds": 0.0})
    ahead = [await grids.stack.core.submit(ANN, GUILD, fox(steps=4)) for _ in range(3)]
    receipt = await grids.stack.core.grid(ANN, GUILD, fox(), (Axis("seed", (1, 2)),))
    assert receipt.position == 3 and receipt.eta_seconds is not None
    painter.gate.set()
    await grids.final(receipt.job_id)
    cells = {cell.id for cell in await grids.stack.db.grid_cells(receipt.job_id)}
    places = [(e.job_id, e.position) for e in grids.events if e.kind is EventKind.POSITION]
    assert (receipt.job_id, 1) in places, places
    assert not cells & {event.job_id for event in grids.events}, "a cell's place is its grid's"
    for job in ahead:
        assert (await grids.final(job.job_id)).kind is EventKind.DONE


async def test_a_cell_is_sent_alone_on_request_to_whoever_asks(launch) -> None:  # type: ignore[no-untyped-def]
    grids: Grids = await launch()
    receipt = await grids.stack.core.grid(ANN, GUILD, fox(seed=5), (Axis("guidance", (2, 4)),))
    await grids.final(receipt.job_id)
    shown = await grids.stack.core.cell(BOB, GUILD, receipt.job_id, 1)
    cells = await grids.stack.db.grid_cells(receipt.job_id)
    assert (shown.kind, shown.job_id, shown.user_id) == (EventKind.DONE, cells[1].id, "bob")
    (path,) = shown.files
    assert Image.open(path).getpixel((0, 0)) == (cells[1].parameters["steps"] * 40 % 256, 4 * 30, 5)
    with pytest.raises(UserError) as caught:
        await grids.stack.core.cell(BOB, GUILD, receipt.job_id, 2)
    assert caught.value.key == "job.no_such_image"
    for building_on_the_sheet in (
        grids.stack.core.variations(BOB, GUILD, receipt.job_id, 0),
        grids.stack.core.edit(BOB, GUILD, receipt.job_id, 0, "in ink", Options()),
        grids.stack.core.outpaint(BOB, GUILD, receipt.job_id, 0, Options(zoom=1.5)),
    ):
        with pytest.raises(UserError) as caught:
            await building_on_the_sheet
        assert caught.value.key == "grid.pick_a_cell"


async def test_a_grid_is_charged_whole_or_refused_whole(launch) -> None:  # type: ignore[no-untyped-def]
    grids: Grids = await launch(tiers={"default": TierSettings(images_per_day=5)})
    with pytest.raises(UserError) as caught:
        await grids.stack.core.grid(ANN, GUILD, fox(), STEPS_AND_GUIDANCE)
    assert caught.value.key == "quota.images"
    assert await grids.stack.db.jobs_in_states(list(JobState)) == [] and await grids.usage() == 0
    receipt = await grids.stack.core.grid(ANN, GUILD, fox(), (Axis("steps", (2, 3, 4, 5)),))
    assert (await grids.final(receipt.job_id)).kind is EventKind.DONE and await grids.usage() == 4


async def test_a_grid_holds_one_place_of_its_owners_cap_and_its_cells_share_the_gpu_fairly(launch) -> None:  # type: ignore[no-untyped-def]
    painter = Painter()
    painter.gate.clear()
    grids: Grids = await launch(painter, queue={"max_pending_per_user": 2, "max_batch_images": 1})
    first = await grids.stack.core.grid(ANN, GUILD, fox(), STEPS_AND_GUIDANCE)
    second = await grids.stack.core.submit(ANN, GUILD, fox(steps=7))
    with pytest.raises(UserError) as caught:
        await grids.stack.core.submit(ANN, GUILD, fox(steps=8))
    assert caught.value.key == "queue.user_full"
    other = await grids.stack.core.submit(BOB, GUILD, fox(steps=9))
    painter.gate.set()
    for job_id in (first.job_id, second.job_id, other.job_id):
        assert (await grids.final(job_id)).kind is EventKind.DONE
    order = [steps for batch in painter.batches for steps in batch]
    assert order.index(9) < 4, f"Bob's one request waits for a share of the grid only, not all of it: {order}"


async def test_cells_that_fail_are_crossed_out_refunded_and_the_rest_delivered(launch) -> None:  # type: ignore[no-untyped-def]
    grids: Grids = await launch(Painter(failing=[3]))
    receipt = await grids.stack.core.grid(ANN, GUILD, fox(seed=1), STEPS_AND_GUIDANCE)
    done = await grids.final(receipt.job_id)
    assert done.kind is EventKind.DONE and done.grid_cells == 6
    states = [cell.state for cell in await grids.stack.db.grid_cells(receipt.job_id)]
    assert states == [JobState.DONE, JobState.FAILED] * 3
    assert np.all(sheet_of(done) == (3 * 40, 60, 1), axis=-1).sum() == 0
    assert await grids.usage() == 3, "a failed cell is not charged"


async def test_a_grid_whose_every_cell_fails_fails_and_costs_nothing(launch) -> None:  # type: ignore[no-untyped-def]
    grids: Grids = await launch(Painter(failing=[2, 3]))
    receipt = await grids.stack.core.grid(ANN, GUILD, fox(), STEPS_AND_GUIDANCE)
    ended = await grids.final(receipt.job_id)
    assert (ended.kind, ended.error_key) == (EventKind.FAILED, "error.internal")
    assert await grids.usage() == 0


async def test_cancelling_a_grid_cancels_its_cells_and_refunds_them(launch) -> None:  # type: ignore[no-untyped-def]
    painter = Painter()
    painter.gate.clear()
    grids: Grids = await launch(painter, queue={"max_batch_images": 1})
    receipt = await grids.stack.core.grid(ANN, GUILD, fox(), STEPS_AND_GUIDANCE)
    cancelled = await grids.stack.core.cancel(ANN, receipt.job_id[:8])
    assert cancelled.job_id == receipt.job_id
    painter.gate.set()
    assert (await grids.final(receipt.job_id)).kind is EventKind.CANCELLED

    async def settled() -> list[JobState]:
        while True:
            states = [cell.state for cell in await grids.stack.db.grid_cells(receipt.job_id)]
            if JobState.QUEUED not in states and JobState.RUNNING not in states:
                return states
            await asyncio.sleep(0.01)

    states = await asyncio.wait_for(settled(), 20)
    assert states.count(JobState.CANCELLED) >= 5
    assert await grids.usage() == states.count(JobState.DONE)
    assert [e.kind for e in grids.events if e.job_id == receipt.job_id and e.kind.final] == ["cancelled"]


async def test_a_grid_over_the_cell_cap_or_of_bad_values_is_refused_with_its_reason(launch) -> None:  # type: ignore[no-untyped-def]
    grids: Grids = await launch(limits={"max_grid_cells": 4})
    with pytest.raises(UserError) as caught:
        await grids.stack.core.grid(ANN, GUILD, fox(), STEPS_AND_GUIDANCE)
    assert (caught.value.key, caught.value.values["cells"], caught.value.values["limit"]) == (
        "grid.too_many_cells",
        6,
        4,
    )
    with pytest.raises(UserError) as caught:
        await grids.stack.core.grid(ANN, GUILD, fox(), (Axis("steps", (2, 500)),))
    assert caught.value.key == "request.invalid"
    assert await grids.stack.db.jobs_in_states(list(JobState)) == []


async def test_a_reroll_makes_the_same_grid_with_a_new_seed(launch) -> None:  # type: ignore[no-untyped-def]
    grids: Grids = await launch()
    receipt = await grids.stack.core.grid(ANN, GUILD, fox(seed=3), STEPS_AND_GUIDANCE)
    await grids.final(receipt.job_id)
    again = await grids.stack.core.reroll(BOB, GUILD, receipt.job_id)
    done = await grids.final(again.job_id)
    assert done.grid_cells == 6 and done.seeds != (3,) and done.user_id == "bob"
    cells = await grids.stack.db.grid_cells(again.job_id)
    assert [c.parameters["steps"] for c in cells] == [2, 3] * 3


async def test_a_grid_left_by_a_crash_is_finished_after_the_restart(launch) -> None:  # type: ignore[no-untyped-def]
    painter = Painter()
    painter.gate.clear()
    grids: Grids = await launch(painter)
    receipt = await grids.stack.core.grid(ANN, GUILD, fox(), STEPS_AND_GUIDANCE)
    await grids.stack.crash()
    painter.gate.set()
    again: Grids = await launch()
    done = await again.final(receipt.job_id)
    assert done.kind is EventKind.DONE and done.grid_cells == 6
    assert {event.job_id for event in again.events} == {receipt.job_id}
