"""A copy of a SQLite database taken while easel writes to it, and the copy kept before a migration changes it."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from storage.backup import NotSQLite, back_up
from storage.database import Database
from storage.migrate import upgrade_database
from storage.records import JobDraft

OLDER_REVISION = "0007"


def _rows(path: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as connection:
        return connection.execute(query).fetchall()


async def test_a_backup_taken_while_jobs_are_written_is_whole_and_never_overwrites_another(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'easel.db'}"
    db = Database(url)
    await db.upgrade()
    async with db:
        user = await db.get_or_create_user("telegram", "7", "Ada", "en")
        await db.put_blobs({f"outputs/{index}.png": bytes([index]) * 200_000 for index in range(20)})  # ~4 MB
        written: list[str] = []
        stop = asyncio.Event()

        async def write() -> None:
            while not stop.is_set():
                job = await db.create_job(JobDraft(user.id, "telegram", "70", "txt2img", {}, "a cat", 1, 1.0))
                written.append(job.id)

        writer = asyncio.create_task(write())
        while len(written) < 20:
            await asyncio.sleep(0.01)
        before = len(written)
        size = await asyncio.to_thread(back_up, url, tmp_path / "copies" / "easel.db")
        after = len(written)
        stop.set()
        await writer
    copy = tmp_path / "copies" / "easel.db"
    assert size == copy.stat().st_size > 4_000_000
    assert copy.stat().st_mode & 0o077 == 0  # users' prompts: the owner's to read only
    assert _rows(copy, "PRAGMA integrity_check") == [("ok",)]
    copied = [job_id for (job_id,) in _rows(copy, "SELECT id FROM jobs")]
    assert before <= len(copied) <= after + 1  # as of one moment while the jobs were being written
    assert set(copied) <= set(written)
    assert _rows(copy, "SELECT count(*) FROM file_blobs") == [(20,)]
    assert not list(copy.parent.glob(".*.tmp"))
    with pytest.raises(FileExistsError):
        back_up(url, copy)
    assert _rows(copy, "SELECT count(*) FROM jobs") == [(len(copied),)]


def test_only_a_sqlite_file_that_exists_is_copied(tmp_path: Path) -> None:
    with pytest.raises(NotSQLite):
        back_up("postgresql+asyncpg://postgres@127.0.0.1:5432/test", tmp_path / "copy.db")
    with pytest.raises(FileNotFoundError):
        back_up(f"sqlite+aiosqlite:///{tmp_path / 'missing.db'}", tmp_path / "copy.db")
    assert not (tmp_path / "copy.db").exists()


async def test_a_migration_keeps_a_copy_of_the_database_as_it_was(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'easel.db'}"
    assert await upgrade_database(url, OLDER_REVISION) is None  # a new database: nothing to keep
    with sqlite3.connect(tmp_path / "easel.db") as connection:
        connection.execute(
            "INSERT INTO users (platform, platform_user_id, display_name, tier, preferences, created_at) "
            "VALUES ('telegram', '7', 'Ada', 'free', '{}', '2026-12-07 00:00:00')"
        )
    copy = await upgrade_database(url)
    assert copy == tmp_path / f"easel.db.before-{OLDER_REVISION}.bak"
    assert _rows(copy, "SELECT version_num FROM alembic_version") == [(OLDER_REVISION,)]
    assert _rows(copy, "SELECT display_name FROM users") == [("Ada",)]
    assert _rows(copy, "SELECT name FROM sqlite_master WHERE name = 'file_blobs'") == []  # 0008's table
    assert await upgrade_database(url) is None  # at the newest revision already
    assert sorted(path.name for path in tmp_path.iterdir() if ".bak" in path.name) == [copy.name]
