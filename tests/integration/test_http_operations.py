"""/healthz and /metrics through a real HTTP client against the server `easel run` starts with `[http] enabled`, on
a running core (tiny model) over SQLite and PostgreSQL; /metrics parsed with Prometheus's own text parser."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from core_stack import Launch, Stack, core_settings
from prometheus_client.parser import text_string_to_metric_families

from bots.core.health import HealthCheck
from bots.core.types import Actor, EventKind, JobEvent, Place
from bots.http.adapter import HttpAdapter
from generation.asks import Ask, Options
from generation.grids import Axis

ANN = Actor("test", "ann", "Ann", "en")
HERE = Place("test", "channel-1")


@dataclass
class Server:
    stack: Stack
    adapter: HttpAdapter
    events: list[JobEvent] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.adapter.port}"

    async def listener(self, event: JobEvent) -> None:
        self.events.append(event)

    async def ended(self, job_id: str) -> JobEvent:
        async def wait() -> JobEvent:
            while not (found := [e for e in self.events if e.job_id == job_id and e.kind.final]):
                await asyncio.sleep(0.01)
            return found[0]

        return await asyncio.wait_for(wait(), 30)

    async def get(self, path: str) -> tuple[int, str, str]:
        async with aiohttp.ClientSession() as session, session.get(self.url + path) as response:
            return response.status, response.headers.get("Content-Type", ""), await response.text()


@pytest.fixture
async def server(database_url: str, stack: Launch, tmp_path: Path) -> AsyncIterator[Server]:
    """The database first, so that its teardown (a PostgreSQL database is dropped) comes after the stack stops."""
    settings = core_settings(tmp_path, storage={"database_url": database_url}, http={"enabled": True, "port": 0})
    running = await stack(settings)
    task = running.runtime.task
    health = HealthCheck(running.db, lambda: task is not None and not task.done())
    adapter = HttpAdapter(running.core, settings.http, health)
    served = asyncio.create_task(adapter.run())
    while adapter.port is None:
        await asyncio.sleep(0.01)
    result = Server(running, adapter)
    running.core.listen("test", result.listener)
    yield result
    served.cancel()
    await asyncio.gather(served, return_exceptions=True)
    await adapter.stop_receiving()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition, by name and labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_healthz_says_each_check_and_503_once_the_database_is_gone(server: Server) -> None:
    status, kind, body = await server.get("/healthz")
    assert (status, kind.split(";")[0]) == (200, "application/json")
    assert body.replace(" ", "") == '{"ok":true,"database":"ok","worker":"running","model":"loaded"}'
    await server.stack.db.close()
    status, _, body = await server.get("/healthz")
    assert status == 503 and '"database":"unreachable' in body.replace(" ", "")
    assert (await server.get("/nothing"))[0] == 404 and (await server.get("/"))[0] == 404


async def test_metrics_count_jobs_times_and_the_queue_in_prometheus_text(server: Server) -> None:
    core = server.stack.core
    done = await core.submit(ANN, HERE, Ask("txt2img", "a red fox", Options(seed=1)))
    await server.ended(done.job_id)
    status, kind, body = await server.get("/metrics")
    assert status == 200 and kind.startswith("text/plain; version=0.0.4")
    found = samples(body)
    assert found[("easel_jobs_total", (("operation", "txt2img"), ("outcome", "done")))] == 1
    assert found[("easel_generation_seconds_count", (("operation", "txt2img"),))] == 1
    assert found[("easel_wait_seconds_count", ())] == 1
    assert found[("easel_queue_jobs", (("state", "queued"),))] == 0
    assert found[("easel_queue_jobs", (("state", "running"),))] == 0
    assert found[("easel_gpu_busy_seconds_total", ())] > 0
    assert 0 < found[("easel_gpu_busy_ratio", ())] <= 1

    server.stack.worker.queue.check_capacity("user:1")  # the queue takes more
    refused = await core.submit(ANN, HERE, Ask("txt2img", "a red fox", Options(seed=2)))
    await core.cancel(ANN, refused.job_id)
    await server.ended(refused.job_id)
    found = samples((await server.get("/metrics"))[2])
    cancelled = [kind for kind in server.events if kind.job_id == refused.job_id and kind.kind is EventKind.CANCELLED]
    outcome = "cancelled" if cancelled else "done"
    assert found[("easel_jobs_total", (("operation", "txt2img"), ("outcome", outcome)))] == 1


async def test_a_grid_counts_as_its_cells_and_as_one_grid(server: Server) -> None:
    core = server.stack.core
    receipt = await core.grid(ANN, HERE, Ask("txt2img", "a red fox", Options(seed=1)), (Axis("steps", (2, 3)),))
    assert (await server.ended(receipt.job_id)).kind is EventKind.DONE
    found = samples((await server.get("/metrics"))[2])
    assert found[("easel_jobs_total", (("operation", "txt2img"), ("outcome", "done")))] == 2
    assert found[("easel_jobs_total", (("operation", "grid"), ("outcome", "done")))] == 1
    assert found[("easel_generation_seconds_count", (("operation", "txt2img"),))] == 2
