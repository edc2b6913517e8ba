"""easel's HTTP server, an adapter like the chat ones: for now the operations endpoints, /healthz and /metrics.

It runs in the `easel run` process when `[http] enabled` (aiohttp, already easel's HTTP client library: one event
loop, one dependency). /healthz answers 200 when the database answers and the worker runs (503 otherwise) with
each check as JSON; /metrics is Prometheus's text format. Nothing else is served: an unknown path is a 404, and
there is no directory listing.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from bots.config import HttpSettings
from bots.core.facade import Core
from bots.core.health import HealthCheck
from bots.core.metrics import CONTENT_TYPE
from bots.kit.lifetime import started

log = logging.getLogger(__name__)

PLATFORM = "http"


class HttpAdapter:
    name = PLATFORM

    def __init__(self, core: Core, settings: HttpSettings, health: HealthCheck) -> None:
        self.core = core
        self.settings = settings
        self.health = health
        self.app = web.Application()
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/metrics", self._metrics)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        """The port it listens on, once it does (the configured one, or the one chosen for port 0)."""

    def register(self) -> None:
        """Nothing to announce to: no job is asked for over HTTP yet."""

    async def run(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        address = self._runner.addresses[0]
        self.port = int(address[1])
        log.info("http: listening on %s", self.settings.public_url or f"http://{self.settings.host}:{self.port}")
        started(PLATFORM)
        await asyncio.Event().wait()

    async def stop_receiving(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def close(self) -> None:
        """No client to close."""

    async def _healthz(self, _: web.Request) -> web.Response:
        health = await self.health.check()
        return web.json_response({"ok": health.ok, **health.checks}, status=200 if health.ok else 503)

    async def _metrics(self, _: web.Request) -> web.Response:
        body = await self.core.exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
