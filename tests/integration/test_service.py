"""The core service over a real SQLite file and a real PostgreSQL database (tests/databases.py), with the tiny engine
or a controllable stand-in."""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bots.config import Settings, TierSettings, load_settings
from bots.core.announcer import MAX_DELIVERY_ATTEMPTS
from bots.core.facade import Core
from bots.core.types import Actor, JobEvent, Place, short_id
from bots.errors import UserError
from bots.root import Runtime, open_runtime
from generation.asks import Ask, Options
from generation.engine import CancelCheck, Engine, GenerationResult, ProgressCallback
from generation.errors import GenerationCancelled
from generation.images import RegionMask
from generation.models import KandinskyModels
from generation.requests import GenerationRequest
from generation.worker import GenerateFn, Worker
from storage import Database, FileStore, Job, JobState

ALICE = Actor("test", "alice", "Alice", "en")
BOB = Actor("test", "bob", "Bob", "en")
CAROL = Actor("test", "carol", "Carol", "en")
HERE = Place("test", "channel-1", "guild-1", "Guild")


def settings_for(
    tmp_path: Path, database_url: str, tiers: dict[str, TierSettings] | None = None, **queue: Any
) -> Settings:
    settings = load_settings(None, environ={"EASEL_MODEL__PRESET": "tiny"})
    storage = settings.storage.model_copy(update={"database_url": database_url, "outputs_dir": tmp_path / "files"})
    return settings.model_copy(
        update={"storage": storage, "queue": settings.queue.model_copy(update=queue), "tiers": tiers or settings.tiers},
    )


def _png(kind: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((64, 64), 50).save(buffer, kind)
    return buffer.getvalue()


class Gate:
    """A stand-in pipeline that holds each batch until released, and fails prompts containing 'boom'."""

    def __init__(self, held: bool = False) -> None:
        self.released = threading.Event()
        if not held:
            self.released.set()
        self.batches: list[list[str]] = []

    def __call__(
        self, batch: Sequence[GenerationRequest], on_progress: ProgressCallback, should_cancel: CancelCheck
    ) -> list[GenerationResult]:
        self.batches.append([request.prompt for request in batch])
        while not self.released.wait(0.01):
            if should_cancel():
                raise GenerationCancelled
        if any("boom" in request.prompt for request in batch):
            raise RuntimeError("the stand-in pipeline exploded")
        on_progress(0.5)
        return [
            GenerationResult(
                request,
                tuple(Image.new("RGB", (64, 64), (index, 0, 0)) for index in range(request.count)),
                request.seeds,
            )
            for request in batch
        ]


@dataclass
class Harness:
    settings: Settings
    db: Database
    files: FileStore
    service: Core
    worker: Worker
    generate: GenerateFn | None
    events: list[JobEvent] = field(default_factory=list)
    failing_deliveries: int = 0

    async def listener(self, event: JobEvent) -> None:
        self.events.append(event)
        if event.kind == "done" and self.failing_deliveries:
            self.failing_deliveries -= 1
            raise ConnectionError("the platform is down")

    def kinds(self, job_id: str) -> list[str]:
        return [event.kind for event in self.events if event.job_id == job_id]

    async def final(self, job_id: str, timeout: float = 20.0) -> JobEvent:
        async def wait() -> JobEvent:
            while True:
                for event in self.events:
                    if event.job_id == job_id and event.kind in ("done", "failed", "cancelled"):
                        return event
                await asyncio.sleep(0.01)

        return await asyncio.wait_for(wait(), timeout)

    async def recorded(self, job_id: str, timeout: float = 5.0) -> Job:
        """The job once its final event's delivery is written (just after the listener returns)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            job = await self.db.get_job(job_id)
            assert job is not None
            if job.delivery_state.value != "pending" or asyncio.get_running_loop().time() > deadline:
                return job
            await asyncio.sleep(0.01)

    async def state(self, job_id: str) -> JobState:
        job = await self.db.get_job(job_id)
        assert job is not None
        return job.state


Start = Callable[..., Any]


@pytest.fixture
async def start(tmp_path: Path, database_url: str, tiny_models: KandinskyModels) -> AsyncIterator[Start]:
    running: list[tuple[Harness, Runtime]] = []

    async def launch(
        generate: GenerateFn | None = None,
        *,
        recover: bool = False,
        work: bool = True,
        tiers: dict[str, TierSettings] | None = None,
        **queue: Any,
    ) -> Harness:
        settings = settings_for(tmp_path, database_url, tiers, **queue)
        runtime = await open_runtime(settings, generate or Engine(tiny_models).generate)
        harness = Harness(settings, runtime.db, runtime.files, runtime.core, runtime.worker, generate)
        runtime.core.listen("test", harness.listener)
        if recover:
            await runtime.core.recover()
        if work:
            runtime.start()
        running.append((harness, runtime))
        return harness

    yield launch
    for harness, runtime in running:
        if isinstance(harness.generate, Gate):
            harness.generate.released.set()  # a failed test must not leave a batch held forever
        await runtime.finish()
        if runtime.task is not None:
            runtime.task.result()  # a worker that died fails the test
        harness.worker.close()
        await harness.db.close()


async def test_a_prompt_becomes_a_stored_delivered_image(start: Start) -> None:
    harness: Harness = await start()
    receipt = await harness.service.submit(ALICE, HERE, Ask("txt2img", "a red cat", Options(seed=5, count=2)))
    assert receipt.position == 1 and receipt.eta_seconds is not None
    done = await harness.final(receipt.job_id)
    assert done.kind == "done" and done.seeds == (5, 6) and done.user_id == "alice" and done.channel_id == "channel-1"
    assert harness.kinds(receipt.job_id)[0] == "queued" and "started" in harness.kinds(receipt.job_id)
    job = await harness.recorded(receipt.job_id)
    assert job.state is JobState.DONE and job.seed == 5 and job.attempts == 1
    assert job.delivery_state.value == "delivered"
    outputs = await harness.db.outputs_of(receipt.job_id)
    assert [output.seed for output in outputs] == [5, 6]
    for output, path in zip(outputs, done.files, strict=True):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == output.sha256
        assert output.sha256 in path.name and "cat" not in str(path)
        assert Image.open(path).size == (64, 64)
    status = await harness.service.quota(ALICE)
    assert status.images == 2 and status.gpu_seconds > 0


async def test_quota_is_reserved_at_submit_and_refunded_on_failure(start: Start) -> None:
    gate = Gate(held=True)
    harness: Harness = await start(gate)
    receipt = await harness.service.submit(ALICE, HERE, Ask("txt2img", "boom", Options(count=3)))
    assert (await harness.service.quota(ALICE)).images == 3
    gate.released.set()
    failed = await harness.final(receipt.job_id)
    assert failed.kind == "failed" and failed.error_key == "error.internal"
    assert (await harness.service.quota(ALICE)).images == 0
    job = await harness.db.get_job(receipt.job_id)
    assert job is not None and job.state is JobState.FAILED and "exploded" in (job.error_message or "")


async def test_quota_is_refunded_on_cancel_and_committed_on_done(start: Start) -> None:
    gate = Gate(held=True)
    harness: Harness = await start(gate)
    first = await harness.service.submit(ALICE, HERE, Ask("txt2img", "one", Options(steps=5)))
    second = await harness.service.submit(ALICE, HERE, Ask("txt2img", "two", Options(steps=6)))
    assert (await harness.service.quota(ALICE)).images == 2
    assert (await harness.service.cancel(ALICE, second.job_id)).outcome == "queued"
    assert (await harness.final(second.job_id)).kind == "cancelled"
    assert (await harness.service.quota(ALICE)).images == 1
    gate.released.set()
    assert (await harness.final(first.job_id)).kind == "done"
    status = await harness.service.quota(ALICE)
    assert status.images == 1 and status.gpu_seconds > 0


async def test_requests_over_the_daily_quota_never_enter_the_queue(start: Start, tmp_path: Path) -> None:
    harness: Harness = await start(tiers={"default": TierSettings(images_per_day=2)})
    receipt = await harness.service.submit(ALICE, HERE, Ask("txt2img", "a cat", Options(count=2)))
    await harness.final(receipt.job_id)
    with pytest.raises(UserError) as caught:
        await harness.service.submit(ALICE, HERE, Ask("txt2img", "another cat"))
    assert caught.value.key == "quota.images" and caught.value.values["limit"] == 2
    assert len(await harness.service.history(ALICE)) == 1
    assert len(harness.worker.queue.positions()) == 0


async def test_a_failing_pipeline_fails_that_job_only_and_the_next_one_runs(start: Start) -> None:
    gate = Gate(held=True)
    harness: Harness = await start(gate)
    blocker = await harness.service.submit(CAROL, HERE, Ask("txt2img", "first", Options(steps=3)))
    bad = await harness.service.submit(ALICE, HERE, Ask("txt2img", "boom"))
    good = await harness.service.submit(BOB, HERE, Ask("txt2img", "fine"))
    gate.released.set()
    assert (await harness.final(blocker.job_id)).kind == "done"
    assert (await harness.final(bad.job_id)).kind == "failed"
    assert (await harness.final(good.job_id)).kind == "done"
    assert ["boom", "fine"] in gate.batches  # batched first, then retried one by one
    assert ["fine"] in gate.batches and ["boom"] in gate.batches


async def test_cancelling_a_running_job_stops_it(start: Start) -> None:
    gate = Gate(held=True)
    harness: Harness = await start(gate)
    receipt = await harness.service.submit(ALICE, HERE, Ask("txt2img", "slow"))
    while not harness.worker.is_running(receipt.job_id):
        await asyncio.sleep(0.01)
    assert (await harness.service.cancel(ALICE, receipt.job_id)).outcome == "running"
    assert (await harness.final(receipt.job_id)).kind == "cancelled"
    assert await harness.state(receipt.job_id) is JobState.CANCELLED
    assert (await harness.service.quota(ALICE)).images == 0
    gate.released.set()
    after = await harness.service.submit(ALICE, HERE, Ask("txt2img", "next"))
    assert (await harness.final(after.job_id)).kind == "done"


async def test_only_the_owner_may_cancel(start: Start) -> None:
    gate = Gate(held=True)
    harness: Harness = await start(gate)
    receipt = await harness.service.submit(ALICE, HERE, Ask("txt2img", "mine"))
    for actor, key in ((BOB, "job.not_yours"), (ALICE, None)):
        if key is None:
            assert (await harness.service.cancel(actor, receipt.job_id)).outcome in ("queued", "running")
        else:
            with pytest.raises(UserError) as caught:
                await harness.service.cancel(actor, receipt.job_id)
            assert caught.value.key == key
    with pytest.raises(UserError) as caught:
        await harness.service.cancel(ALICE, "no-such-job")
    assert caught.value.key == "job.not_found"
    gate.released.set()


async def test_per_user_cap_refuses_politely_and_writes_nothing(start: Start) -> None:
    gate = Gate(held=True)
    harness: Harness = await start(gate, max_pending_per_user=1)
    await harness.service.submit(ALICE, HERE, Ask("txt2img", "running"))
    while not harness.worker.positions() == {} and len(gate.batches) == 0:
        await asyncio.sleep(0.01)
    await harness.service.submit(ALICE, HERE, Ask("txt2img", "waiting"))
    with pytest.raises(UserError) as caught:
        await harness.service.submit(ALICE, HERE, Ask("txt2img", "one too many"))
    assert caught.value.key == "queue.user_full" and caught.value.values["limit"] == 1
    assert len(await harness.service.history(ALICE)) == 2
    gate.released.set()


@pytest.mark.parametrize(
    ("ask", "key"),
    [
        (Ask("txt2img", ""), "request.invalid"),
        (Ask("txt2img", "cat", Options(width=100)), "request.invalid"),
        (Ask("img2img", "cat", image=b"not an image"), "image.unsupported_format"),
        (Ask("img2img", "cat", image=_png("BMP")), "image.unsupported_format"),
        (Ask("inpaint", "cat", image=_png()[:200]), "image.truncated_image"),
        (Ask("mix", "", mix=("only one",)), "request.invalid"),
    ],
)
async def test_bad_input_is_refused_without_a_job_or_quota(start: Start, ask: Ask, key: str) -> None:
    harness: Harness = await start(Gate())
    with pytest.raises(UserError) as caught:
        await harness.service.submit(ALICE, HERE, ask)
    assert caught.value.key == key
    assert await harness.service.history(ALICE) == []
    assert (await harness.service.quota(ALICE)).images == 0


async def test_a_banned_user_is_refused(start: Start) -> None:
    harness: Harness = await start(Gate())
    user = await harness.db.get_or_create_user("test", "alice")
    await harness.db.ban_user(user.id, None, "spam")
    with pytest.raises(UserError) as caught:
        await harness.service.submit(ALICE, HERE, Ask("txt2img", "cat"))
    assert caught.value.key == "user.banned" and caught.value.values["reason"] == "spam"
    await harness.db.ban_user(user.id, datetime(2099, 1, 2, 3, 4, tzinfo=UTC), "flood")
    with pytest.raises(UserError) as caught:
        await harness.service.submit(ALICE, HERE, Ask("txt2img", "cat"))
    assert caught.value.key == "user.banned_until" and caught.value.values["until"] == "2099-01-02 03:04"
    assert len(harness.worker.queue.positions()) == 0


async def test_reroll_and_variations(start: Start, photo: Image.Image, tmp_path: Path) -> None:
    harness: Harness = await start()
    path = tmp_path / "in.png"
    photo.save(path)
    original = await harness.service.submit(
        ALICE, HERE, Ask("img2img", "a dog", Options(seed=1), image=path.read_bytes())
    )
    await harness.final(original.job_id)
    reroll = await harness.service.reroll(ALICE, HERE, original.job_id)
    variation = await harness.service.variations(ALICE, HERE, original.job_id)
    for receipt in (reroll, variation):
        assert (await harness.final(receipt.job_id)).kind == "done"
        job = await harness.db.get_job(receipt.job_id)
        assert job is not None and job.parent_id == original.job_id and job.operation == "img2img"
    rerolled = await harness.db.get_job(reroll.job_id)
    assert rerolled is not None and rerolled.parameters["strength"] == 0.5
    with pytest.raises(UserError) as caught:
        await harness.service.variations(ALICE, HERE, original.job_id, index=1)
    assert caught.value.key == "job.no_such_image" and caught.value.values["count"] == 1
    history = await harness.service.history(ALICE)
    assert [summary.job_id for summary in history][-1] == original.job_id and len(history) == 3


async def test_outpaint_and_remix_reroll_as_asked_and_outpaint_a_result(
    start: Start, photo: Image.Image, tmp_path: Path
) -> None:
    """Their stored form gives the same request back: the source image, the pan or zoom, the strength."""
    harness: Harness = await start()
    path = tmp_path / "in.png"
    photo.save(path)
    panned = await harness.service.submit(
        ALICE, HERE, Ask("outpaint", "a bay", Options(pan="left", seed=3), image=path.read_bytes())
    )
    remixed = await harness.service.submit(
        ALICE, HERE, Ask("remix", "in ink", Options(strength=1.0), image=path.read_bytes())
    )
    for receipt in (panned, remixed):
        assert (await harness.final(receipt.job_id)).kind == "done"
    zoomed = await harness.service.outpaint(ALICE, HERE, panned.job_id, 0, Options(zoom=1.5))
    assert (await harness.final(zoomed.job_id)).kind == "done"
    for original in (panned, remixed):
        again = await harness.service.reroll(ALICE, HERE, original.job_id)
        assert (await harness.final(again.job_id)).kind == "done"
        first, second = await harness.db.get_job(original.job_id), await harness.db.get_job(again.job_id)
        assert first is not None and second is not None
        kept = ("operation", "pan", "zoom", "strength", "width", "height", "prompt")
        assert {key: second.parameters[key] for key in kept} == {key: first.parameters[key] for key in kept}
    zoomed_job = await harness.db.get_job(zoomed.job_id)
    assert zoomed_job is not None and zoomed_job.parent_id == panned.job_id
    assert (zoomed_job.parameters["width"], zoomed_job.parameters["height"]) == (192, 128)
    assert zoomed_job.prompt == "a bay"


async def test_inpaint_and_mix_inputs_survive_in_the_file_store(
    start: Start, photo: Image.Image, tmp_path: Path
) -> None:
    harness: Harness = await start()
    path = tmp_path / "in.png"
    photo.save(path)
    data = path.read_bytes()
    inpaint = await harness.service.submit(
        ALICE, HERE, Ask("inpaint", "a window", Options(mask=RegionMask(0, 0, 50, 50)), image=data)
    )
    mix = await harness.service.submit(ALICE, HERE, Ask("mix", "", Options(weights=(2, 1)), mix=(data, "autumn")))
    for receipt in (inpaint, mix):
        assert (await harness.final(receipt.job_id)).kind == "done"
    job = await harness.db.get_job(mix.job_id)
    assert job is not None and job.parameters["mix_weights"] == pytest.approx([2 / 3, 1 / 3])
    stored = job.parameters["inputs"]["mix"][0]["image"]
    assert harness.files.read(stored) == data and stored.startswith("inputs/")


async def test_undelivered_results_are_delivered_again_and_only_once(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    harness: Harness = await start(Gate())
    harness.failing_deliveries = 1
    receipt = await harness.service.submit(ALICE, HERE, Ask("txt2img", "cat"))
    await harness.final(receipt.job_id)
    await asyncio.sleep(0.05)
    job = await harness.db.get_job(receipt.job_id)
    assert job is not None and job.delivery_state.value == "pending" and job.delivery_attempts == 1
    with caplog.at_level(logging.INFO, logger="bots.core.deliveries"):
        assert await harness.service.redeliver() == 1
        assert await harness.service.redeliver() == 0
    assert f"delivering job {receipt.job_id} (done) again: attempt 2, 1 earlier failed" in caplog.text
    assert harness.kinds(receipt.job_id).count("done") == 2
    first, again = [event for event in harness.events if event.kind == "done"]
    assert again.files == first.files and again.seeds == first.seeds and len(again.files) == 1
    assert first.first_delivery and not again.first_delivery  # the adapter looks for what the first one sent
    job = await harness.db.get_job(receipt.job_id)
    assert job is not None and job.delivery_state.value == "delivered"


async def test_restart_recovery_requeues_and_retries_once(start: Start) -> None:
    crashed: Harness = await start(work=False)  # accepts jobs, but its worker never runs: the process died
    running = await crashed.service.submit(ALICE, HERE, Ask("txt2img", "was running", Options(steps=3)))
    queued = await crashed.service.submit(BOB, HERE, Ask("txt2img", "was queued"))
    twice = await crashed.service.submit(BOB, HERE, Ask("txt2img", "crashed twice", Options(steps=7)))
    now = datetime.now(UTC)
    await crashed.db.mark_running(running.job_id, now)
    for _ in range(2):
        await crashed.db.mark_running(twice.job_id, now)
        await crashed.db.requeue_job(twice.job_id)
    await crashed.db.mark_running(twice.job_id, now)

    restarted: Harness = await start(recover=True)
    assert (await restarted.final(running.job_id)).kind == "done"
    assert (await restarted.final(queued.job_id)).kind == "done"
    assert (await restarted.final(twice.job_id)).kind == "failed"
    retried = await restarted.db.get_job(running.job_id)
    assert retried is not None and retried.attempts == 2 and retried.delivery_state.value == "delivered"
    assert (await restarted.service.quota(BOB)).images == 1
    assert await restarted.service.redeliver() == 0


class OneByOne(Gate):
    """A stand-in pipeline that holds each batch until the test lets one more through."""

    def __init__(self) -> None:
        super().__init__()
        self.passes = threading.Semaphore(0)

    def __call__(
        self, batch: Sequence[GenerationRequest], on_progress: ProgressCallback, should_cancel: CancelCheck
    ) -> list[GenerationResult]:
        while not self.passes.acquire(timeout=0.01):
            if should_cancel():
                raise GenerationCancelled
        return super().__call__(batch, on_progress, should_cancel)


async def test_a_waiting_user_is_told_when_their_place_halves(start: Start) -> None:
    pipeline = OneByOne()
    harness: Harness = await start(pipeline)
    receipts = [
        await harness.service.submit(actor, HERE, Ask("txt2img", f"job {n}", Options(steps=3 + n)))
        for n, actor in enumerate((ALICE, BOB, ALICE, BOB))
    ]
    first, second, third, fourth = (receipt.job_id for receipt in receipts)
    assert [receipt.position for receipt in receipts] == [1, 1, 2, 3]  # the first is on the GPU at once
    pipeline.passes.release()  # the first ends, the second starts: the third moves from 2 to 1, the fourth 3 to 2

    async def told() -> list[tuple[str, int | None]]:
        while not any(event.kind == "position" for event in harness.events):
            await asyncio.sleep(0.01)
        return [(event.job_id, event.position) for event in harness.events if event.kind == "position"]

    assert await asyncio.wait_for(told(), 10) == [(third, 1)]  # 3 to 2 is not worth a message
    pipeline.passes.release(3)
    for job_id in (first, second, third, fourth):
        assert (await harness.final(job_id)).kind == "done"


async def test_concurrent_requests_cannot_overdraw_the_quota(start: Start) -> None:
    harness: Harness = await start(Gate(held=True), tiers={"default": TierSettings(images_per_day=1)})
    outcomes = await asyncio.gather(
        *(harness.service.submit(ALICE, HERE, Ask("txt2img", f"cat {n}")) for n in range(3)), return_exceptions=True
    )
    refused = [outcome for outcome in outcomes if isinstance(outcome, UserError)]
    assert len(refused) == 2 and all(error.key == "quota.images" for error in refused)
    assert len(await harness.service.history(ALICE)) == 1
    assert (await harness.service.quota(ALICE)).images == 1


async def test_delivery_is_given_up_after_the_last_attempt(start: Start) -> None:
    harness: Harness = await start(Gate())
    harness.failing_deliveries = MAX_DELIVERY_ATTEMPTS + 5
    receipt = await harness.service.submit(ALICE, HERE, Ask("txt2img", "cat"))
    await harness.final(receipt.job_id)
    await asyncio.sleep(0.05)
    while await harness.service.redeliver():
        pass
    assert harness.kinds(receipt.job_id).count("done") == MAX_DELIVERY_ATTEMPTS
    job = await harness.db.get_job(receipt.job_id)
    assert job is not None and job.delivery_state.value == "failed" and job.delivery_attempts == MAX_DELIVERY_ATTEMPTS


async def test_anyone_may_reroll_a_visible_job_and_pays_for_it(start: Start) -> None:
    harness: Harness = await start(Gate())
    original = await harness.service.submit(ALICE, HERE, Ask("txt2img", "a fox", Options(seed=5)))
    await harness.final(original.job_id)
    rerolled = await harness.service.reroll(BOB, HERE, original.job_id)
    assert (await harness.final(rerolled.job_id)).kind == "done"
    job = await harness.db.get_job(rerolled.job_id)
    assert job is not None and job.seed != 5 and job.prompt == "a fox"
    assert (await harness.service.quota(BOB)).images == 1 and (await harness.service.quota(ALICE)).images == 1


async def test_edit_redraws_one_output_after_a_new_prompt(start: Start) -> None:
    harness: Harness = await start()
    original = await harness.service.submit(ALICE, HERE, Ask("txt2img", "a house", Options(count=2)))
    await harness.final(original.job_id)
    edited = await harness.service.edit(BOB, HERE, original.job_id, 1, "a house in snow", Options(strength=0.7))
    assert (await harness.final(edited.job_id)).kind == "done"
    job = await harness.db.get_job(edited.job_id)
    assert job is not None and job.operation == "img2img" and job.parent_id == original.job_id
    assert job.prompt == "a house in snow" and job.parameters["strength"] == 0.7
    with pytest.raises(UserError) as caught:
        await harness.service.edit(ALICE, HERE, original.job_id, 2, "x", Options())
    assert caught.value.key == "job.no_such_image"


async def test_cancel_takes_a_short_id_or_the_newest_active_job(start: Start) -> None:
    gate = Gate(held=True)
    harness: Harness = await start(gate)
    first = await harness.service.submit(ALICE, HERE, Ask("txt2img", "one"))
    second = await harness.service.submit(ALICE, HERE, Ask("txt2img", "two"))
    assert [entry.job_id for entry in await harness.service.queue(ALICE)] == [first.job_id, second.job_id]
    assert (await harness.service.cancel(ALICE, short_id(second.job_id).upper())).job_id == second.job_id
    assert (await harness.service.cancel(ALICE)).job_id == first.job_id
    assert (await harness.final(first.job_id)).kind == "cancelled"
    for reference, key in (("abc", "job.not_found"), (None, "job.none_active")):
        with pytest.raises(UserError) as caught:
            await harness.service.cancel(ALICE, reference)
        assert caught.value.key == key
    with pytest.raises(UserError) as caught:
        await harness.service.cancel(BOB, first.job_id[:6])
    assert caught.value.key == "job.not_found"  # a prefix only ever names the actor's own jobs
    gate.released.set()


async def test_preferences_apply_under_explicit_options_and_bad_ones_are_refused(start: Start) -> None:
    harness: Harness = await start(Gate())
    assert await harness.service.set_preferences(ALICE, {"steps": 3, "width": 128}) == {"steps": 3, "width": 128}
    for changes, key in (({"seed": 1}, "settings.unknown"), ({"steps": 10_000}, "request.invalid")):
        with pytest.raises(UserError) as caught:
            await harness.service.set_preferences(ALICE, changes)
        assert caught.value.key == key
    mine = await harness.service.submit(ALICE, HERE, Ask("txt2img", "a", Options(steps=4)))
    theirs = await harness.service.submit(BOB, HERE, Ask("txt2img", "b"))
    shaped = await harness.service.submit(ALICE, HERE, Ask("txt2img", "c", Options(aspect=(9, 16))))
    for receipt in (mine, theirs, shaped):
        await harness.final(receipt.job_id)
    tall = await harness.db.get_job(shaped.job_id)  # the ratio decides the size; the preferred width steps aside
    assert tall is not None and (tall.parameters["width"], tall.parameters["height"], tall.parameters["steps"]) == (
        64,
        128,
        3,
    )
    job = await harness.db.get_job(mine.job_id)
    assert job is not None and (job.parameters["steps"], job.parameters["width"]) == (4, 128)
    other = await harness.db.get_job(theirs.job_id)
    assert other is not None and other.parameters["width"] != 128
    assert await harness.service.set_preferences(ALICE, {"width": None}) == {"steps": 3}
    await harness.service.reset_preferences(ALICE)
    assert await harness.service.preferences(ALICE) == {}


async def test_delete_removes_the_files_of_own_finished_jobs_and_returns_their_messages(start: Start) -> None:
    harness: Harness = await start()
    receipt = await harness.service.submit(ALICE, HERE, Ask("txt2img", "a boat", Options(seed=9)))
    done = await harness.final(receipt.job_id)
    twin = await harness.service.submit(ALICE, HERE, Ask("txt2img", "a boat", Options(seed=9)))
    await harness.final(twin.job_id)  # the same pixels: one file, shown by both jobs
    await harness.service.link_message("test", "channel-1", "m1", receipt.job_id, 0)
    with pytest.raises(UserError) as caught:
        await harness.service.delete(BOB, receipt.job_id)
    assert caught.value.key == "job.not_yours"
    links = await harness.service.delete(ALICE, receipt.job_id)
    assert [link.message_id for link in links] == ["m1"]
    assert done.files[0].exists()  # still shown by the twin
    await harness.service.delete(ALICE, twin.job_id)
    assert not done.files[0].exists()
    with pytest.raises(UserError) as caught:
        await harness.service.variations(ALICE, HERE, receipt.job_id)
    assert caught.value.key == "job.not_found"
    assert all(summary.files == () for summary in await harness.service.history(ALICE))
    assert (await harness.service.job_of_message("test", "channel-1", "m1")).job_id == receipt.job_id


async def test_an_image_with_transparent_pixels_asks_for_inpaint(start: Start, photo: Image.Image) -> None:
    harness: Harness = await start(Gate())

    def png(image: Image.Image) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        return buffer.getvalue()

    holed = photo.convert("RGBA")
    holed.putpixel((3, 3), (0, 0, 0, 0))
    assert await harness.service.upload_operation(png(holed)) == "inpaint"
    assert await harness.service.upload_operation(png(photo.convert("RGBA"))) == "img2img"  # alpha, all opaque
    assert await harness.service.upload_operation(png(photo)) == "img2img"
    with pytest.raises(UserError) as caught:
        await harness.service.upload_operation(b"%PDF-1.4")
    assert caught.value.key == "image.unsupported_format"


async def test_events_answer_the_message_that_asked(start: Start) -> None:
    harness: Harness = await start(Gate())
    receipt = await harness.service.submit(ALICE, replace(HERE, message_id="m7"), Ask("txt2img", "a cat"))
    assert {event.reply_to for event in harness.events if event.job_id == receipt.job_id} == {"m7"}
    assert (await harness.final(receipt.job_id)).reply_to == "m7"


async def test_a_redelivery_never_announces_a_result_being_delivered(start: Start) -> None:
    harness: Harness = await start(Gate())
    entered, leave = asyncio.Event(), asyncio.Event()

    async def slow(event: JobEvent) -> None:
        harness.events.append(event)
        if event.kind == "done":
            entered.set()
            await leave.wait()

    harness.service.listen("test", slow)
    receipt = await harness.service.submit(ALICE, HERE, Ask("txt2img", "cat"))
    await entered.wait()
    assert await harness.service.redeliver() == 0
    leave.set()
    await harness.final(receipt.job_id)
    while (await harness.db.get_job(receipt.job_id)).delivery_state.value == "pending":  # type: ignore[union-attr]
        await asyncio.sleep(0.01)
    assert harness.kinds(receipt.job_id).count("done") == 1


async def test_a_batchs_next_result_is_written_while_the_one_before_is_delivered_and_told_after_it(
    start: Start,
) -> None:
    gate = Gate(held=True)
    harness: Harness = await start(gate)
    held: set[str] = set()
    entered, leave = asyncio.Event(), asyncio.Event()

    async def slow(event: JobEvent) -> None:
        harness.events.append(event)
        if event.kind == "done" and event.job_id in held:
            entered.set()
            await leave.wait()  # a photo uploading

    harness.service.listen("test", slow)
    await harness.service.submit(CAROL, HERE, Ask("txt2img", "a bird", Options(seed=1)))  # on the GPU meanwhile
    first = await harness.service.submit(ALICE, HERE, Ask("txt2img", "a cat", Options(seed=1)))
    second = await harness.service.submit(BOB, HERE, Ask("txt2img", "a dog", Options(seed=1)))
    held.add(first.job_id)
    gate.released.set()
    try:
        await asyncio.wait_for(entered.wait(), 10)
        assert gate.batches == [["a bird"], ["a cat", "a dog"]]
        for _ in range(500):  # written while the first is still being delivered
            if await harness.state(second.job_id) is JobState.DONE:
                break
            await asyncio.sleep(0.01)
        assert await harness.state(second.job_id) is JobState.DONE
        assert second.job_id not in {event.job_id for event in harness.events if event.kind == "done"}
    finally:
        leave.set()
    await harness.final(second.job_id)
    done = [event for event in harness.events if event.kind == "done" and event.job_id in (first.job_id, second.job_id)]
    assert [event.job_id for event in done] == [first.job_id, second.job_id]
    assert all(event.first_delivery for event in done)


async def test_a_result_that_cannot_be_written_is_logged_with_its_job_and_the_next_one_is_still_told(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    gate = Gate(held=True)
    harness: Harness = await start(gate)
    await harness.service.submit(CAROL, HERE, Ask("txt2img", "a bird", Options(seed=1)))  # on the GPU meanwhile
    first = await harness.service.submit(ALICE, HERE, Ask("txt2img", "a cat", Options(seed=1)))
    second = await harness.service.submit(BOB, HERE, Ask("txt2img", "a dog", Options(seed=1)))
    mark_done = harness.db.mark_done

    async def failing(job_id: str, *args: Any, **kwargs: Any) -> Job:
        if job_id == first.job_id:
            raise RuntimeError("the disk is full")
        return await mark_done(job_id, *args, **kwargs)

    harness.db.mark_done = failing  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="bots.core.lifecycle"):
        gate.released.set()
        assert (await harness.final(second.job_id)).kind == "done"
    assert gate.batches == [["a bird"], ["a cat", "a dog"]]
    assert f"recording the end of job {first.job_id} failed" in caplog.text and "the disk is full" in caplog.text
    assert first.job_id not in {event.job_id for event in harness.events if event.kind == "done"}
