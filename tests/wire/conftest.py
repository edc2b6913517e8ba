"""Wire tests: the real platform clients against fake platform servers on 127.0.0.1, with the tiny model.

`stack` starts the platform-neutral core (database, file store, service, worker on the tiny engine) that an
adapter under test talks to; `stop` and a second `launch` on the same directory act as a restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from wire_core import Launch, Stack, wire_settings

from bots.config import Settings
from bots.run import build_worker
from bots.service import Service
from generation.engine import Engine
from generation.models import KandinskyModels
from generation.worker import GenerateFn
from storage.database import Database
from storage.files import FileStore

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx and aiohttp honour proxy variables even for 127.0.0.1: the fakes must be reached directly."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
async def stack(tmp_path: Path, tiny_models: KandinskyModels) -> AsyncIterator[Launch]:
    """`await stack(settings=None, generate=None, recover=False)`: a running core; stopped at teardown."""
    started: list[Stack] = []

    async def launch(
        settings: Settings | None = None, generate: GenerateFn | None = None, *, recover: bool = False
    ) -> Stack:
        settings = settings or wire_settings(tmp_path)
        db = Database(settings.storage.database_url)
        await db.connect()
        await db.upgrade()
        files = FileStore(settings.storage.outputs_dir)
        service = Service(settings, db, files)
        worker = build_worker(settings, service, generate or Engine(tiny_models).generate)
        service.attach(worker)
        if recover:
            await service.recover()
        running = Stack(settings, db, files, service, worker, asyncio.create_task(worker.run()))
        started.append(running)
        return running

    yield launch
    for running in started:
        await running.stop()
