"""Fixtures of the HTTP tests: the HTTP adapter of a running core, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from core_stack import Launch, core_settings
from http_server import Served, Start, serving

SMALL_DEFAULTS = {"width": 64, "height": 64, "steps": 2, "prior_steps": 2}


@pytest.fixture
async def start(database_url: str, stack: Launch, tmp_path: Path) -> AsyncIterator[Start]:
    """`async with start(**sections)`: the server on a fresh core with small default images; the database first,
    so that it is dropped last."""

    def begin(**sections: dict[str, Any]) -> Any:
        http = {"enabled": True, "port": 0, **sections.pop("http", {})}
        storage = {"database_url": database_url}
        settings = core_settings(tmp_path, storage=storage, http=http, defaults=SMALL_DEFAULTS, **sections)
        return serving(stack, settings)

    yield begin


@pytest.fixture
async def served(start: Start) -> AsyncIterator[Served]:
    async with start() as server:
        yield server
