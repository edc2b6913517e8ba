"""The log lines of a job's life, as an operator (or a log shipper, with their fields as keys) reads them."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from core_stack import Launch, core_settings
from PIL import Image

from bots.core.types import Actor, JobEvent, Place
from generation.asks import Ask, Options
from generation.engine import CancelCheck, GenerationResult, ProgressCallback
from generation.requests import GenerationRequest

ALICE = Actor("test", "alice", "Alice", "en")
HERE = Place("test", "channel-1", "guild-1", "Guild")


class Held:
    """Plain images, once released."""

    def __init__(self) -> None:
        self.released = threading.Event()

    def __call__(
        self, batch: Sequence[GenerationRequest], on_progress: ProgressCallback, should_cancel: CancelCheck
    ) -> list[GenerationResult]:
        assert self.released.wait(10)
        return [
            GenerationResult(r, tuple(Image.new("RGB", (r.width, r.height)) for _ in r.seeds), r.seeds) for r in batch
        ]


async def test_a_job_is_logged_when_queued_started_and_done_and_a_cancelled_one_when_cancelled(
    stack: Launch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="easel.jobs")
    held = Held()
    running = await stack(core_settings(tmp_path), held)
    events: list[JobEvent] = []

    async def listener(event: JobEvent) -> None:
        events.append(event)

    running.core.listen("test", listener)
    first = await running.core.submit(ALICE, HERE, Ask("txt2img", "a red cat", Options(seed=1)))
    second = await running.core.submit(ALICE, HERE, Ask("txt2img", "a blue cat", Options(seed=2)))
    while not running.worker.is_running(first.job_id):
        await asyncio.sleep(0.01)
    await running.core.cancel(ALICE, second.job_id)
    held.released.set()
    while not any(event.job_id == first.job_id and event.kind == "done" for event in events):
        await asyncio.sleep(0.01)

    lines = {(record.job_id, record.event): record for record in caplog.records if record.name == "easel.jobs"}
    queued = lines[(first.job_id, "queued")]
    assert queued.operation == "txt2img" and queued.platform == "test" and queued.platform_user == "alice"
    assert queued.position == 1 and isinstance(queued.user_id, int) and isinstance(queued.community_id, int)
    started = lines[(first.job_id, "started")]
    assert started.wait_seconds >= 0
    done = lines[(first.job_id, "done")]
    assert done.gpu_seconds > 0 and done.total_seconds >= done.wait_seconds
    assert done.user_id == queued.user_id and done.operation == "txt2img"
    assert "s generating" in done.getMessage()
    cancelled = lines[(second.job_id, "cancelled")]
    assert cancelled.getMessage().endswith("cancelled") and (second.job_id, "started") not in lines
