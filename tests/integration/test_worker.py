"""The GPU worker with an in-memory sink: batching, cancellation inside a batch, failures, stopping."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from PIL import Image

from generation.engine import CancelCheck, GenerationResult, ProgressCallback
from generation.errors import GenerationCancelled, QueueRefused
from generation.previews import Preview
from generation.requests import GenerationRequest
from generation.scheduler import FairScheduler
from generation.throughput import Throughput
from generation.worker import Done, Ending, Worker, WorkItem

Build = Callable[..., GenerationRequest]


class Sink:
    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []
        self.finished = asyncio.Event()
        self.expected = 0

    def _record(self, kind: str, job_id: str) -> None:
        self.log.append((kind, job_id))
        if sum(1 for entry in self.log if entry[0] in ("done", "failed", "cancelled")) >= self.expected:
            self.finished.set()

    async def on_started(self, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            self.log.append(("started", job_id))

    async def on_progress(self, job_ids: Sequence[str], fraction: float, previews: Sequence[Preview] = ()) -> None:
        if previews:
            self.log.extend(("preview", job_id) for job_id in job_ids)

    async def on_ended(self, endings: Sequence[Ending]) -> None:
        for ending in endings:
            if isinstance(ending, Done):
                await self.on_done(ending.job_id, ending.result, ending.gpu_seconds)
            else:
                self._record("cancelled", ending.job_id)

    async def on_done(self, job_id: str, result: GenerationResult, gpu_seconds: float) -> None:
        assert gpu_seconds >= 0
        self._record("done", job_id)

    async def on_failed(self, job_id: str, error: BaseException) -> None:
        self._record("failed", job_id)


class Pipeline:
    """Holds every batch until released; records what ran together."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.batches: list[list[str]] = []

    def __call__(
        self, batch: Sequence[GenerationRequest], on_progress: ProgressCallback, should_cancel: CancelCheck
    ) -> list[GenerationResult]:
        self.batches.append([request.prompt for request in batch])
        self.entered.set()
        while not self.release.wait(0.005):
            if should_cancel():
                raise GenerationCancelled
        image = Image.new("RGB", (64, 64))
        return [GenerationResult(request, (image,) * request.count, request.seeds) for request in batch]


def worker_for(pipeline: Pipeline, **options: Any) -> Worker:
    scheduler = FairScheduler(max_pending_per_user=10, max_queue=100, max_wait=900.0)
    return Worker(pipeline, scheduler, **options)


async def run_until_finished(worker: Worker, sink: Sink, pipeline: Pipeline, expected: int) -> None:
    sink.expected = expected
    task = asyncio.create_task(worker.run(sink))
    await asyncio.to_thread(pipeline.entered.wait, 5)
    pipeline.release.set()
    await asyncio.wait_for(sink.finished.wait(), 10)
    await worker.stop()
    await task
    worker.close()


async def test_compatible_jobs_at_the_head_share_one_call_in_fair_order(request_for: Build) -> None:
    pipeline, sink = Pipeline(), Sink()
    worker = worker_for(pipeline)
    await worker.submit(WorkItem("a1", request_for("txt2img", "a1"), "alice"))
    await worker.submit(WorkItem("a2", request_for("txt2img", "a2"), "alice"))
    await worker.submit(WorkItem("b1", request_for("txt2img", "b1", steps=7), "bob"))
    await worker.submit(WorkItem("c1", request_for("txt2img", "c1"), "carol"))
    await worker.submit(WorkItem("d1", request_for("txt2img", "d1"), "dan"))
    await run_until_finished(worker, sink, pipeline, expected=5)
    # fair order is a1, b1, c1, d1, a2: b1 is not compatible, so a1 runs alone; c1 and d1 stand level and share a
    # call; a2 is alice's second job, which a job submitted meanwhile would have gone before, so it runs alone
    assert pipeline.batches == [["a1"], ["b1"], ["c1", "d1"], ["a2"]]


class Previewing(Pipeline):
    """Reports plain progress, then three previews at once: plain progress is held to the interval, previews are
    never dropped."""

    def __call__(
        self, batch: Sequence[GenerationRequest], on_progress: ProgressCallback, should_cancel: CancelCheck
    ) -> list[GenerationResult]:
        on_progress(0.1)
        for fraction in (0.2, 0.3, 0.4):
            on_progress(fraction, [Preview(Image.new("RGB", (8, 8)))] * len(batch))
        return super().__call__(batch, on_progress, should_cancel)


async def test_every_preview_is_reported_whatever_the_progress_interval(request_for: Build) -> None:
    pipeline, sink = Previewing(), Sink()
    worker = worker_for(pipeline, progress_interval=3600.0)
    await worker.submit(WorkItem("ann", request_for("txt2img", "ann"), "ann"))
    await worker.submit(WorkItem("bob", request_for("txt2img", "bob"), "bob"))
    await run_until_finished(worker, sink, pipeline, expected=2)
    previews = [job_id for kind, job_id in sink.log if kind == "preview"]
    assert previews == ["ann", "bob"] * 3
    assert sink.log.index(("preview", "ann")) > sink.log.index(("started", "bob"))  # after the batch's start


class SlowForAnn(Sink):
    """Delivers ann's result slowly, as a chat platform may."""

    async def on_done(self, job_id: str, result: GenerationResult, gpu_seconds: float) -> None:
        if job_id == "ann":
            await asyncio.sleep(0.2)
        await super().on_done(job_id, result, gpu_seconds)


async def test_the_results_of_a_batch_are_reported_in_its_fair_order(request_for: Build) -> None:
    pipeline, sink = Pipeline(), SlowForAnn()
    worker = worker_for(pipeline)
    for user in ("ann", "bob", "cy"):
        await worker.submit(WorkItem(user, request_for("txt2img", user), user))
    await run_until_finished(worker, sink, pipeline, expected=3)
    assert pipeline.batches == [["ann", "bob"], ["cy"]]
    done = [job_id for kind, job_id in sink.log if kind == "done"]
    assert done.index("ann") < done.index("bob")  # cy's call, the next one, need not wait for ann's delivery


async def test_batches_hold_at_most_max_batch_images(request_for: Build) -> None:
    pipeline, sink = Pipeline(), Sink()
    worker = worker_for(pipeline, max_batch_images=4)
    for index, count in enumerate((3, 2, 1)):
        await worker.submit(WorkItem(f"j{index}", request_for("txt2img", f"j{index}", count=count), f"user{index}"))
    await run_until_finished(worker, sink, pipeline, expected=3)
    assert pipeline.batches == [["j0"], ["j1", "j2"]]


async def test_cancelling_one_job_of_a_running_batch_cancels_only_that_job(request_for: Build) -> None:
    pipeline, sink = Pipeline(), Sink()
    worker = worker_for(pipeline)
    await worker.submit(WorkItem("keep", request_for("txt2img", "keep"), "alice"))
    await worker.submit(WorkItem("drop", request_for("txt2img", "drop"), "bob"))
    sink.expected = 2
    task = asyncio.create_task(worker.run(sink))
    await asyncio.to_thread(pipeline.entered.wait, 5)
    assert await worker.cancel("drop") == "running"
    pipeline.release.set()
    await asyncio.wait_for(sink.finished.wait(), 10)
    await worker.stop()
    await task
    worker.close()
    assert ("done", "keep") in sink.log and ("cancelled", "drop") in sink.log
    assert ("done", "drop") not in sink.log


async def test_cancel_of_a_queued_job_and_of_an_unknown_one(request_for: Build) -> None:
    pipeline, sink = Pipeline(), Sink()
    worker = worker_for(pipeline)
    await worker.submit(WorkItem("first", request_for("txt2img", "first"), "alice"))
    await worker.submit(WorkItem("second", request_for("txt2img", "second", steps=9), "alice"))
    assert worker.position("second") == 2 and worker.eta("second") is not None
    assert await worker.cancel("second") == "queued"
    assert await worker.cancel("second") is None and await worker.cancel("never") is None
    assert worker.position("second") is None
    await run_until_finished(worker, sink, pipeline, expected=1)
    assert pipeline.batches == [["first"]]


async def test_stop_lets_the_running_batch_finish_and_leaves_the_rest_queued(request_for: Build) -> None:
    pipeline, sink = Pipeline(), Sink()
    worker = worker_for(pipeline)
    await worker.submit(WorkItem("running", request_for("txt2img", "running"), "alice"))
    await worker.submit(WorkItem("waiting", request_for("txt2img", "waiting", steps=9), "bob"))
    task = asyncio.create_task(worker.run(sink))
    await asyncio.to_thread(pipeline.entered.wait, 5)
    await worker.stop()
    pipeline.release.set()
    await asyncio.wait_for(task, 10)
    worker.close()
    assert sink.log == [("started", "running"), ("done", "running")]
    assert worker.position("waiting") == 1


def test_throughput_is_measured_per_operation() -> None:
    throughput = Throughput(initial=1.0, smoothing=0.5)
    throughput.record("txt2img", cost=10.0, seconds=2.0)
    throughput.record("inpaint", cost=10.0, seconds=6.0)
    assert throughput.rate("txt2img") == 0.2 and throughput.rate("inpaint") == 0.6
    assert throughput.rate("mix") == throughput.overall  # not measured yet: the overall figure
    throughput.record("txt2img", cost=10.0, seconds=4.0)
    assert throughput.rate("txt2img") == pytest.approx(0.3)


async def test_etas_follow_each_operations_own_throughput(request_for: Build, photo: Image.Image) -> None:
    from generation.costs import job_cost
    from generation.images import RegionMask

    pipeline = Pipeline()
    worker = worker_for(pipeline)
    txt2img = request_for("txt2img", "fast")
    inpaint = request_for("inpaint", "slow", image=photo, mask=RegionMask(0, 0, 50, 50))
    worker.throughput.record("txt2img", job_cost(txt2img), 1.0)
    worker.throughput.record("inpaint", job_cost(inpaint), 5.0)
    await worker.submit(WorkItem("slow", inpaint, "alice"))
    await worker.submit(WorkItem("fast", txt2img, "bob"))
    etas = worker.etas()
    assert etas["slow"] == pytest.approx(5.0) and etas["fast"] == pytest.approx(6.0)
    assert worker.eta("fast") == pytest.approx(etas["fast"])


async def test_an_abandoned_batch_stops_at_its_next_step_and_reports_nothing(request_for: Build) -> None:
    """A stop out of time: the GPU thread is free at once, and the job stays as the database has it (running)."""
    pipeline, sink = Pipeline(), Sink()
    worker = worker_for(pipeline)
    await worker.submit(WorkItem("long", request_for("txt2img", "long"), "alice"))
    task = asyncio.create_task(worker.run(sink))
    await asyncio.to_thread(pipeline.entered.wait, 5)
    await worker.stop()
    worker.abandon()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    try:
        await asyncio.wait_for(asyncio.to_thread(worker.close), 10)
    finally:
        pipeline.release.set()  # a batch that ignored the abandon must not hold the test process
    assert sink.log == [("started", "long")]


class SlowStart(Sink):
    """A sink whose start report is held until released, as a database busy with other writes would hold it."""

    def __init__(self) -> None:
        super().__init__()
        self.started_release = asyncio.Event()

    async def on_started(self, job_ids: Sequence[str]) -> None:
        await self.started_release.wait()
        await super().on_started(job_ids)


async def test_the_next_batch_does_not_wait_for_the_start_report_but_a_done_report_does(request_for: Build) -> None:
    pipeline, sink = Pipeline(), SlowStart()
    pipeline.release.set()
    worker = worker_for(pipeline)
    await worker.submit(WorkItem("first", request_for("txt2img", "first"), "alice"))
    await worker.submit(WorkItem("second", request_for("txt2img", "second", steps=9), "bob"))
    sink.expected = 2
    task = asyncio.create_task(worker.run(sink))
    for _ in range(500):  # both batches ran while neither start report had returned
        if len(pipeline.batches) == 2:
            break
        await asyncio.sleep(0.01)
    assert pipeline.batches == [["first"], ["second"]] and sink.log == []
    sink.started_release.set()
    await asyncio.wait_for(sink.finished.wait(), 10)
    await worker.stop()
    await task
    worker.close()
    for job_id in ("first", "second"):  # each written running before it is written done
        assert sink.log.index(("started", job_id)) < sink.log.index(("done", job_id))


class Loading:
    """A model that only "inpaint" prompts need, loaded once `loaded` is set; records what it was asked to load."""

    def __init__(self) -> None:
        self.loaded = threading.Event()
        self.prepared: list[str] = []

    def prepare(self, request: GenerationRequest) -> None:
        self.prepared.append(request.prompt)

    def ready(self, request: GenerationRequest) -> bool:
        return "inpaint" not in request.prompt or self.loaded.is_set()


async def test_each_job_is_told_to_prepare_as_it_is_queued_and_a_refused_one_is_not(request_for: Build) -> None:
    loading = Loading()
    scheduler = FairScheduler(max_pending_per_user=1, max_queue=100, max_wait=900.0)
    worker = Worker(Pipeline(), scheduler, loading=loading)
    await worker.submit(WorkItem("a", request_for("txt2img", "first"), "alice"))
    with pytest.raises(QueueRefused):
        await worker.submit(WorkItem("b", request_for("txt2img", "second"), "alice"))
    assert loading.prepared == ["first"]
    worker.close()


async def test_a_batch_whose_model_is_loading_waits_aside_while_the_jobs_behind_it_run(request_for: Build) -> None:
    loading, pipeline, sink = Loading(), Pipeline(), Sink()
    pipeline.release.set()
    worker = worker_for(pipeline, loading=loading, max_batch_images=1)
    await worker.submit(WorkItem("a", request_for("txt2img", "an inpaint for alice"), "alice"))
    await worker.submit(WorkItem("c", request_for("txt2img", "an inpaint carol cancels"), "carol"))
    await worker.submit(WorkItem("b", request_for("txt2img", "bob's cat"), "bob"))
    await worker.submit(WorkItem("d", request_for("txt2img", "dan's dog"), "dan"))
    sink.expected = 4
    task = asyncio.create_task(worker.run(sink))
    while ("done", "d") not in sink.log:
        await asyncio.sleep(0.01)
    assert pipeline.batches == [["bob's cat"], ["dan's dog"]]  # alice's and carol's wait for the model
    assert await worker.cancel("c") == "running" and worker.is_running("a")
    loading.loaded.set()
    await asyncio.wait_for(sink.finished.wait(), 10)
    assert pipeline.batches[2] == ["an inpaint for alice"] and ("done", "a") in sink.log
    assert ("cancelled", "c") in sink.log and ("done", "c") not in sink.log
    await worker.stop()
    await task
    worker.close()


async def test_a_stop_runs_the_batches_held_for_their_model_and_the_engine_waits_for_the_load(
    request_for: Build,
) -> None:
    loading, pipeline, sink = Loading(), Pipeline(), Sink()
    pipeline.release.set()
    worker = worker_for(pipeline, loading=loading)
    await worker.submit(WorkItem("a", request_for("txt2img", "an inpaint"), "alice"))
    sink.expected = 1
    task = asyncio.create_task(worker.run(sink))
    while not worker.is_running("a"):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    assert pipeline.batches == []  # held
    await worker.stop()
    await asyncio.wait_for(task, 10)
    assert pipeline.batches == [["an inpaint"]] and ("done", "a") in sink.log  # taken, so run, not dropped
    worker.close()
