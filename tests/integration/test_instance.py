"""Claims on a PostgreSQL database that front ends on several hosts share: a token is served by one of them.

Needs a server: EASEL_TEST_POSTGRES_URL, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test (the PostgreSQL tier,
tests/postgres_tier.py). Claims on SQLite
and in the run directory are tested with real processes (tests/integration/test_easel_run.py,
tests/wire/test_telegram_run.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import postgres_tier
import pytest
from sqlalchemy import make_url

from bots.config import Settings, StorageSettings
from bots.instance import HOST, AlreadyServed, claimed

pytestmark = pytest.mark.postgres


def host(root: Path) -> Settings:
    """A front end of its own (its own run directory, as on another machine) on the shared database."""
    pytest.importorskip("asyncpg")
    url = make_url(postgres_tier.url()).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    return Settings(storage=StorageSettings(database_url=url, run_dir=root))


async def test_a_token_is_served_by_one_front_end_of_a_shared_database_and_free_once_released(
    tmp_path: Path,
) -> None:
    first, second = host(tmp_path / "a"), host(tmp_path / "b")
    async with claimed(first, {"telegram": "123:shared", "discord": "own-token"}):
        with pytest.raises(AlreadyServed) as refused:
            async with claimed(second, {"telegram": "123:shared"}):
                pass
        assert str(refused.value) == (
            f"another easel process (pid {os.getpid()} on {HOST}) serves the telegram bot token in "
            "TELEGRAM_BOT_TOKEN: a token is served by one process at a time"
        )
        async with claimed(second, {"telegram": "123:other"}):
            pass
    async with claimed(second, {"telegram": "123:shared"}):
        pass


async def test_processes_that_run_jobs_share_a_postgresql_database(tmp_path: Path) -> None:
    """Its queue lives in the database (`bots.core.shared_queue`): workers on several hosts take turns at it."""
    first, second = host(tmp_path / "a"), host(tmp_path / "b")
    async with claimed(first, {}), claimed(second, {"telegram": "123:front"}), claimed(second, {}):
        pass
