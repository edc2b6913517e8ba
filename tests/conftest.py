"""Shared fixtures: the tiny model preset, built once per session, request helpers, and a running core."""

from __future__ import annotations

import os

# Tests never reach the network: the hub is off before diffusers or transformers are imported.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
# `make test` runs a pytest worker per core (pytest-xdist): one torch thread each, set before torch is imported and
# inherited by the easel processes the tests start. Two workers of two threads, beside those processes, left
# OpenMP's spinning threads waiting on one another: a 2-step tiny image once took over 30 s in CI.
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ.setdefault("OMP_NUM_THREADS", "1")

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from core_stack import Launch, Stack, core_settings
from databases import database_url, empty_database_url, postgres_databases  # noqa: F401 (fixtures of every test module)
from PIL import Image
from postgres_tier import (  # noqa: F401 (the PostgreSQL tier's hooks, kept apart so a test can load them alone)
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_terminal_summary,
)

from bots.config import Settings
from bots.root import open_runtime
from generation.config import DefaultsSettings, GenerationDefaults, Limits, ModelSettings, resolve_defaults
from generation.engine import Engine
from generation.models import KandinskyModels, load_models
from generation.requests import GenerationRequest, make_request
from generation.worker import GenerateFn


@pytest.fixture(scope="session")
def defaults() -> GenerationDefaults:
    return resolve_defaults("tiny", DefaultsSettings())


@pytest.fixture(scope="session")
def limits() -> Limits:
    return Limits()


@pytest.fixture(scope="session")
def request_for(defaults: GenerationDefaults, limits: Limits) -> Callable[..., GenerationRequest]:
    def build(operation: str, prompt: str = "a red cat", **options: Any) -> GenerationRequest:
        return make_request(operation, prompt, defaults=defaults, limits=limits, **options)

    return build


@pytest.fixture(scope="session")
def tiny_models() -> KandinskyModels:
    return load_models(ModelSettings(preset="tiny"))


@pytest.fixture(scope="session")
def engine(tiny_models: KandinskyModels) -> Engine:
    return Engine(tiny_models)


@pytest.fixture
def photo() -> Image.Image:
    """A 64x64 picture with structure (a gradient and a square), so changes to it are visible."""
    image = Image.linear_gradient("L").resize((64, 64)).convert("RGB")
    image.paste((200, 30, 30), (16, 16, 48, 48))
    return image


@pytest.fixture
async def stack(tmp_path: Path, tiny_models: KandinskyModels) -> AsyncIterator[Launch]:
    """`await stack(settings=None, generate=None, recover=False)`: a running core; stopped at teardown."""
    started: list[Stack] = []

    async def launch(
        settings: Settings | None = None, generate: GenerateFn | None = None, *, recover: bool = False
    ) -> Stack:
        settings = settings or core_settings(tmp_path)
        runtime = await open_runtime(settings, generate or Engine(tiny_models).generate)
        runtime.start()
        if recover:
            await runtime.core.recover()
        running = Stack(runtime)
        started.append(running)
        return running

    yield launch
    for running in started:
        await running.stop()
