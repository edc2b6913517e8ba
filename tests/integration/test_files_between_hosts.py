"""The files of jobs between hosts that share a database but no disk (`bots.core.files`), on both backends: what
one host keeps, another fetches before reading it; a file that is nowhere is logged and stays missing; a deleted
job's files leave the database too; without a carrier nothing touches the database."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bots.core.files import Files
from storage import Database, FileStore

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with Database(database_url) as database:
        await database.upgrade()
        yield database


def host(tmp_path: Path, name: str, db: Database | None) -> Files:
    return Files(FileStore(tmp_path / name), db)


async def test_what_one_host_keeps_another_fetches_before_reading_it(db: Database, tmp_path: Path) -> None:
    front, worker = host(tmp_path, "front", db), host(tmp_path, "worker", db)
    upload = front.put(b"an uploaded photo", ".bin", kind="inputs").path
    await front.share([upload])
    with pytest.raises(FileNotFoundError):
        worker.read(upload)
    await worker.fetch([upload])
    assert worker.read(upload) == b"an uploaded photo"

    made = worker.put(PNG, ".png").path
    await worker.share([made, made])
    await front.fetch([made, upload])  # one it has, one it lacks
    assert front.path_of(made).read_bytes() == PNG


async def test_a_file_that_is_nowhere_stays_missing_and_is_logged(
    db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    worker = host(tmp_path, "worker", db)
    lost = FileStore(tmp_path / "gone").put(PNG, ".png").path
    with caplog.at_level(logging.ERROR, logger="bots.core.files"):
        await worker.fetch([lost])
    assert lost in caplog.text and "neither on this host nor in the database" in caplog.text
    with pytest.raises(FileNotFoundError):
        worker.read(lost)


async def test_removed_files_leave_the_host_and_the_database(db: Database, tmp_path: Path) -> None:
    front, worker = host(tmp_path, "front", db), host(tmp_path, "worker", db)
    made = worker.put(PNG, ".png").path
    await worker.share([made])
    await front.fetch([made])
    await front.remove([made])
    assert not front.store.holds(made) and await db.get_blobs([made]) == {}


async def test_a_host_without_a_carrier_keeps_its_files_to_itself(db: Database, tmp_path: Path) -> None:
    alone = host(tmp_path, "alone", None)
    made = alone.put(PNG, ".png").path
    await alone.share([made])
    assert not alone.carried and await db.get_blobs([made]) == {}
    await alone.fetch(["outputs/00/missing.png"])  # nothing to ask: no error, no log
    await alone.remove([made])
    assert not alone.store.holds(made)
