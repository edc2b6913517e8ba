"""easel's HTTP server, an adapter like the chat ones: the REST API (`bots.http.api`), /healthz and /metrics.

It runs in the `easel run` process when `[http] enabled`, served by uvicorn in the process's event loop. Jobs
asked for over HTTP announce to this adapter, which hands their events to the streams that watch them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn

from bots.config import HttpSettings
from bots.core.facade import Core
from bots.core.health import HealthCheck
from bots.http.api import PLATFORM
from bots.http.app import http_app
from bots.http.feed import JobFeed
from bots.kit.lifetime import started

log = logging.getLogger(__name__)

GRACE_SECONDS = 2
"""How long requests in flight may finish once the server stops (an event stream ends at once)."""


class _Embedded(uvicorn.Server):
    """uvicorn inside `easel run`: the signals are the process's, which stops its adapters itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpAdapter:
    name = PLATFORM

    def __init__(self, core: Core, settings: HttpSettings, health: HealthCheck) -> None:
        self.core = core
        self.settings = settings
        self.feed = JobFeed()
        self.app = http_app(core, settings, health, self.feed)
        self._server: _Embedded | None = None
        self._serving: asyncio.Task[None] | None = None
        self.port: int | None = None
        """The port it listens on, once it does (the configured one, or the one chosen for port 0)."""
        self.ready = asyncio.Event()
        """Set once the server takes requests."""

    def register(self) -> None:
        self.core.listen(PLATFORM, self.feed.on_event)

    async def run(self) -> None:
        listening = socket.create_server((self.settings.host, self.settings.port), reuse_port=False)
        self.port = int(listening.getsockname()[1])
        if not self.settings.public_url:
            self.core.access.base_url = f"http://{self.settings.host}:{self.port}"
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=GRACE_SECONDS,
            proxy_headers=True,
        )
        self._server = _Embedded(config)
        self._serving = asyncio.create_task(self._server.serve(sockets=[listening]), name="easel-http-server")
        while not self._server.started and not self._serving.done():
            await asyncio.sleep(0.01)
        if self._serving.done():
            await self._serving
            raise RuntimeError(f"the HTTP server could not start on port {self.port}")
        log.info("http: listening on %s", self.core.access.base_url)
        started(PLATFORM)
        self.ready.set()
        await asyncio.shield(self._serving)

    async def stop_receiving(self) -> None:
        """Every event stream ends, and requests in flight get GRACE_SECONDS to finish."""
        self.feed.closing.set()
        if self._server is not None and self._serving is not None:
            self._server.should_exit = True
            await asyncio.gather(self._serving, return_exceptions=True)
            self._server = self._serving = None

    async def close(self) -> None:
        """No client to close."""
