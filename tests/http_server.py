"""The HTTP adapter of a running core (tiny model), served on a free port, for tests that call it over the network
with a real client, as another program would."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from core_stack import Launch, Stack
from PIL import Image

from bots.config import Settings
from bots.core.health import HealthCheck
from bots.core.types import Actor
from bots.http.adapter import HttpAdapter

Start = Callable[..., Any]
"""`async with start(**sections) as served`: the fixture of tests/integration/conftest.py."""
ANN = Actor("telegram", "ann", "Ann", "en")
"""A Telegram user who asked the bot for a token."""


@dataclass
class Served:
    stack: Stack
    adapter: HttpAdapter
    session: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.adapter.port}"

    async def token(self, actor: Actor = ANN) -> str:
        return await self.stack.core.access.api_token(actor)

    async def call(
        self, method: str, path: str, token: str | None = None, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
        """The status, the body (JSON when it is JSON, else bytes) and the headers."""
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        async with self.session.request(method, self.url + path, headers=sent, **kwargs) as response:
            data = await response.read()
            if response.content_type == "application/json":
                return response.status, await response.json(), response.headers
            return response.status, data, response.headers

    async def finished(self, token: str, job_id: str, seconds: float = 60) -> dict[str, Any]:
        async def wait() -> dict[str, Any]:
            while True:
                _, job, _ = await self.call("GET", f"/api/v1/jobs/{job_id}", token)
                if job["state"] in ("done", "failed", "cancelled"):
                    return job
                await asyncio.sleep(0.05)

        return await asyncio.wait_for(wait(), seconds)


@asynccontextmanager
async def serving(launch: Launch, settings: Settings) -> AsyncIterator[Served]:
    running = await launch(settings)
    task = running.runtime.task
    adapter = HttpAdapter(running.core, settings.http, HealthCheck(running.db, lambda: task is not None))
    adapter.register()
    served = asyncio.create_task(adapter.run())
    await asyncio.wait({served, asyncio.create_task(adapter.ready.wait())}, return_when=asyncio.FIRST_COMPLETED)
    if served.done():
        await served
    try:
        async with aiohttp.ClientSession() as session:
            yield Served(running, adapter, session)
    finally:
        served.cancel()
        await asyncio.gather(served, return_exceptions=True)
        await adapter.stop_receiving()


def png(width: int = 64, height: int = 64, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()
