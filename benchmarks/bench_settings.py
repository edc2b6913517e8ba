"""Settings the benchmarks share: the tiny preset over a SQLite file (or a scratch PostgreSQL database) and a file
store in a scratch directory."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import make_url

from bots.config import Settings, load_settings

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
"""What would send the benchmarks' calls to the fake platform servers on 127.0.0.1 through a proxy."""


def bench_settings(root: Path, jobs: int, database_url: str | None = None) -> Settings:
    """Storage in `root` (the database at `database_url` instead, when given), and caps and quotas high enough that
    none of `jobs` is refused."""
    settings = load_settings(None, environ={"EASEL_MODEL__PRESET": "tiny"})
    url = database_url or f"sqlite+aiosqlite:///{root / 'easel.db'}"
    storage = settings.storage.model_copy(update={"database_url": url, "outputs_dir": root / "files"})
    queue = settings.queue.model_copy(update={"max_pending_per_user": jobs, "max_queue": jobs})
    tier = settings.tier("default").model_copy(update={"images_per_day": 1_000_000, "gpu_seconds_per_day": 1e9})
    return settings.model_copy(
        update={"storage": storage, "queue": queue, "tiers": {**settings.tiers, "default": tier}}
    )


@contextlib.asynccontextmanager
async def scratch_postgres(server_url: str | None) -> AsyncIterator[str | None]:
    """A new, empty database on the PostgreSQL server at `server_url`, dropped afterwards; None without a server."""
    if server_url is None:
        yield None
        return
    import asyncpg

    server = make_url(server_url)
    name = f"easel_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(admin)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
        try:
            yield server.set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)
        finally:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()
