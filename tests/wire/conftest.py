"""Wire tests: the real platform clients against fake platform servers on 127.0.0.1, with the tiny model.

The platform-neutral core an adapter under test talks to comes from the `stack` fixture (tests/conftest.py);
`stop` and a second `launch` on the same directory act as a restart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from fake_telegram import FakeTelegram
from previewing import HeldAtPreview

from generation.config import PreviewSettings
from generation.engine import Engine
from generation.models import KandinskyModels

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx and aiohttp honour proxy variables even for 127.0.0.1: the fakes must be reached directly."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def held_at_preview(tiny_models: KandinskyModels) -> Iterator[HeldAtPreview]:
    """Released at teardown, before the bot stops (as `held`)."""
    gate = HeldAtPreview(Engine(tiny_models, previews=PreviewSettings(interval_seconds=1e-6, size=32)))
    yield gate
    gate.release()


@pytest.fixture
async def telegram_api() -> AsyncIterator[FakeTelegram]:
    """The fake Bot API, for tests that run `easel run` as a process against it."""
    server = FakeTelegram()
    await server.start()
    yield server
    await server.stop()
