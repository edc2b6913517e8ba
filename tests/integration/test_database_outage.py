"""A PostgreSQL server that goes away while easel runs (a restart, a network cut), seen through a TCP proxy on
127.0.0.1 that the test cuts and restores: storage says so as `DatabaseUnavailable`, a connection that the outage
ended is replaced once the server answers, and the worker's writes wait the outage out, so that no job is lost."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest
from core_stack import core_settings
from PIL import Image
from sqlalchemy import make_url
from tcp_proxy import Proxy

from bots.core.types import Actor, JobEvent, Place
from bots.kit.boundary import explain
from bots.root import open_runtime
from bots.texts import render
from generation.asks import Ask
from generation.engine import CancelCheck, GenerationResult, ProgressCallback
from generation.requests import GenerationRequest
from storage import Database, DatabaseUnavailable, DeliveryState, JobState

ALICE = Actor("test", "alice", "Alice", "en")
BOB = Actor("test", "bob", "Bob", "en")
HERE = Place("test", "channel-1", "guild-1", "Guild")

pytestmark = pytest.mark.postgres


@pytest.fixture
async def proxy(database_url: str) -> AsyncIterator[Proxy]:
    target = make_url(database_url)
    running = Proxy(target.host or "127.0.0.1", target.port or 5432)
    await running.start()
    yield running
    await running.cut()


@pytest.fixture
def proxied_url(database_url: str, proxy: Proxy) -> Iterator[str]:
    yield make_url(database_url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_lost_connection_is_said_and_replaced_once_the_server_answers(proxied_url: str, proxy: Proxy) -> None:
    async with Database(proxied_url) as db:
        user = await db.get_or_create_user("telegram", "1", "Ann")
        await proxy.cut()
        for _ in range(2):
            with pytest.raises(DatabaseUnavailable) as lost:
                await db.get_user(user.id)
        assert "127.0.0.1" in str(lost.value)
        await proxy.restore()
        assert await db.get_user(user.id) == user
        assert await db.set_user_language(user.id, "de") is not None


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_an_outage_while_idle_costs_the_next_call_nothing(proxied_url: str, proxy: Proxy) -> None:
    """The pooled connection that a restart ended is found out before it is used (a restart at night must not fail
    the first request of the morning)."""
    async with Database(proxied_url) as db:
        user = await db.get_or_create_user("telegram", "1", "Ann")
        await proxy.cut()
        await proxy.restore()
        assert await db.get_user(user.id) == user


class HeldPipeline:
    """Plain images, each batch held until released."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.started = threading.Event()

    def __call__(
        self, batch: Sequence[GenerationRequest], on_progress: ProgressCallback, should_cancel: CancelCheck
    ) -> list[GenerationResult]:
        self.started.set()
        self.released.wait(20)
        return [GenerationResult(r, tuple(Image.new("RGB", (64, 64)) for _ in r.seeds), r.seeds) for r in batch]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_result_made_during_an_outage_is_written_and_delivered_once_the_server_answers(
    proxied_url: str, proxy: Proxy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bots.core.persistence")
    settings = core_settings(tmp_path, storage={"database_url": proxied_url})
    pipeline = HeldPipeline()
    runtime = await open_runtime(settings, pipeline)
    events: list[JobEvent] = []

    async def listener(event: JobEvent) -> None:
        events.append(event)

    runtime.core.listen("test", listener)
    runtime.start()
    try:
        receipt = await runtime.core.submit(ALICE, HERE, Ask("txt2img", "a red cat"))
        for _ in range(200):  # its start written: the outage meets its result
            if any(event.kind == "started" for event in events):
                break
            await asyncio.sleep(0.05)
        await proxy.cut()
        with pytest.raises(DatabaseUnavailable) as refused:  # meanwhile, a request is told to come back soon
            await runtime.core.submit(BOB, HERE, Ask("txt2img", "a blue cat"))
        assert explain(refused.value, "de") == render("service.unavailable", "de")
        pipeline.released.set()
        waiting = f"the result of job {receipt.job_id} waits for the database"
        for _ in range(200):
            if waiting in caplog.text:
                break
            await asyncio.sleep(0.05)
        assert waiting in caplog.text
        await proxy.restore()
        for _ in range(600):
            if any(event.kind == "done" for event in events):
                break
            await asyncio.sleep(0.05)
        assert [event.kind for event in events if event.kind.final] == ["done"]
        for _ in range(200):
            job = await runtime.db.get_job(receipt.job_id)
            if job is not None and job.delivery_state is DeliveryState.DELIVERED:
                break
            await asyncio.sleep(0.05)
        assert job is not None and (job.state, job.delivery_state) == (JobState.DONE, DeliveryState.DELIVERED)
        assert f"the result of job {receipt.job_id} written after" in caplog.text
    finally:
        pipeline.released.set()
        await proxy.restore()  # a failed test must not leave the worker's writes waiting for ever
        await runtime.stop()
