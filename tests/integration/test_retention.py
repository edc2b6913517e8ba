"""Retention and deletion free the disk of what people made and uploaded, and nothing another job still shows."""

from __future__ import annotations

import asyncio
import io
import sqlite3
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from core_stack import Launch, Stack, core_settings
from PIL import Image

from bots.cli import main
from bots.config import StorageSettings
from bots.core.accounts import now
from bots.core.retention import Pruned, prune, prune_daily
from bots.core.types import Actor, JobEvent, Place
from generation.asks import Ask, Options
from generation.codec import stored_paths
from generation.engine import CancelCheck, GenerationResult, ProgressCallback
from generation.requests import GenerationRequest
from storage import Job

ALICE = Actor("test", "alice", "Alice", "en")
GUILD = Place("test", "channel-1", "guild-1", "Guild")
PRIVATE = Place("test", "dm-1")


def plain(
    batch: Sequence[GenerationRequest], on_progress: ProgressCallback, should_cancel: CancelCheck
) -> list[GenerationResult]:
    """Images that differ by seed, so that no two jobs' outputs share a file unless they are the same image."""
    return [
        GenerationResult(
            r, tuple(Image.new("RGB", (r.width, r.height), (seed % 256, 0, 0)) for seed in r.seeds), r.seeds
        )
        for r in batch
    ]


def upload(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buffer, "PNG")
    return buffer.getvalue()


class Bot:
    def __init__(self, running: Stack) -> None:
        self.running = running
        self.done: set[str] = set()
        running.core.listen("test", self.listener)

    async def listener(self, event: JobEvent) -> None:
        if event.kind in ("done", "failed", "cancelled"):
            self.done.add(event.job_id)

    async def made(self, place: Place, ask: Ask) -> Job:
        receipt = await self.running.core.submit(ALICE, place, ask)
        return await self.finished(receipt.job_id)

    async def finished(self, job_id: str) -> Job:
        while job_id not in self.done:
            await asyncio.sleep(0.01)
        job = await self.running.db.get_job(job_id)
        assert job is not None and job.state.value == "done"
        return job

    async def files_of(self, job: Job) -> list[Path]:
        outputs = await self.running.db.outputs_of(job.id)
        return [self.running.files.path_of(path) for path in [o.path for o in outputs] + stored_paths(job.parameters)]


@pytest.fixture
async def bot(database_url: str, stack: Launch, tmp_path: Path) -> Bot:
    settings = core_settings(tmp_path, storage={"database_url": database_url})
    return Bot(await stack(settings, plain))


def storage(bot: Bot, **values: object) -> StorageSettings:
    return bot.running.settings.storage.model_copy(update=values)


async def run_prune(bot: Bot, days: float, dry_run: bool = False, **values: object) -> Pruned:
    core = bot.running.core
    return await prune(storage(bot, **values), core.db, core.files, now() + timedelta(days=days), dry_run=dry_run)


async def test_images_and_uploads_go_after_keep_days_and_not_before_and_a_dry_run_deletes_nothing(bot: Bot) -> None:
    drawn = await bot.made(GUILD, Ask("txt2img", "a cat", Options(seed=1, count=2)))
    redrawn = await bot.made(PRIVATE, Ask("img2img", "a dog", Options(seed=3), image=upload((0, 90, 0))))
    files = await bot.files_of(drawn) + await bot.files_of(redrawn)
    assert len(files) == 4 and all(path.exists() for path in files)

    assert await run_prune(bot, 6.9, keep_days=7) == Pruned()
    counted = await run_prune(bot, 7.1, dry_run=True, keep_days=7)
    assert (counted.jobs, counted.files) == (2, 4) and counted.bytes == sum(path.stat().st_size for path in files)
    assert all(path.exists() for path in files)
    assert await run_prune(bot, 7.1, keep_days=7) == counted
    assert not any(path.exists() for path in files)
    for job in (drawn, redrawn):
        row = await bot.running.db.get_job(job.id)
        assert row is not None and row.deleted_at is not None and row.prompt == job.prompt  # the row stays
    assert await run_prune(bot, 30, keep_days=7) == Pruned()


async def test_a_file_another_job_still_names_stays(bot: Bot) -> None:
    """A reroll keeps its parent's upload: pruning the parent leaves it for the reroll, then the reroll's turn."""
    parent = await bot.made(PRIVATE, Ask("img2img", "a dog", Options(seed=3), image=upload((0, 0, 90))))
    receipt = await bot.running.core.reroll(ALICE, PRIVATE, parent.id)
    child = await bot.finished(receipt.job_id)
    assert stored_paths(child.parameters) == stored_paths(parent.parameters)
    upload_path = bot.running.files.path_of(stored_paths(parent.parameters)[0])
    await bot.running.db.mark_deleted_many([], now())  # nothing: an empty list is no error

    at = (child.finished_at - parent.finished_at).total_seconds() / 86400 / 2  # type: ignore[operator]
    partial = await prune(
        storage(bot, keep_days=1),
        bot.running.db,
        bot.running.core.files,
        parent.finished_at + timedelta(days=1) + timedelta(days=at),  # type: ignore[operator]
    )
    assert (partial.jobs, partial.files) == (1, 1) and upload_path.exists()  # its own image only
    assert (await run_prune(bot, 2, keep_days=1)).files == 2 and not upload_path.exists()


async def test_a_community_keeps_its_own_days_and_zero_everywhere_else_keeps_everything(bot: Bot) -> None:
    in_guild = await bot.made(GUILD, Ask("txt2img", "a cat", Options(seed=5)))
    in_private = await bot.made(PRIVATE, Ask("txt2img", "a cat", Options(seed=6)))
    shorter = {"community_keep_days": {"test:guild-1": 1, "test:never-seen": 1}}
    assert (await run_prune(bot, 1.5, **shorter)).jobs == 1
    assert not any(path.exists() for path in await bot.files_of(in_guild))
    assert all(path.exists() for path in await bot.files_of(in_private))
    kept_longer = {"keep_days": 2, "community_keep_days": {"test:guild-1": 0}}
    fresh = await bot.made(GUILD, Ask("txt2img", "a cat", Options(seed=7)))
    assert (await run_prune(bot, 3, **kept_longer)).jobs == 1  # the private one; the guild keeps its own
    assert all(path.exists() for path in await bot.files_of(fresh))


async def test_delete_removes_the_upload_too_unless_a_reroll_still_uses_it(bot: Bot) -> None:
    core = bot.running.core
    alone = await bot.made(PRIVATE, Ask("img2img", "a dog", Options(seed=3), image=upload((90, 90, 0))))
    files = await bot.files_of(alone)
    await core.delete(ALICE, alone.id)
    assert not any(path.exists() for path in files)

    parent = await bot.made(PRIVATE, Ask("img2img", "a dog", Options(seed=4), image=upload((0, 90, 90))))
    child = await bot.finished((await core.reroll(ALICE, PRIVATE, parent.id)).job_id)
    await core.delete(ALICE, parent.id)
    assert bot.running.files.path_of(stored_paths(parent.parameters)[0]).exists()
    await core.delete(ALICE, child.id)
    assert not bot.running.files.path_of(stored_paths(parent.parameters)[0]).exists()


async def test_the_service_prunes_at_start_and_keeps_going(bot: Bot) -> None:
    drawn = await bot.made(PRIVATE, Ask("txt2img", "a cat", Options(seed=8)))
    core = bot.running.core
    later = lambda: now() + timedelta(days=2)  # noqa: E731
    task = asyncio.create_task(prune_daily(storage(bot, keep_days=1), core.db, core.files, later))
    try:
        while any(path.exists() for path in await bot.files_of(drawn)):
            await asyncio.sleep(0.01)
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_prune_command_says_what_it_would_delete_and_deletes_it(
    stack: Launch, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["storage", "prune", "--dry-run"]) == 0
    assert "nothing to prune: storage.keep_days is 0" in capsys.readouterr().out
    bot = Bot(await stack(core_settings(tmp_path), plain))
    drawn = await bot.made(PRIVATE, Ask("txt2img", "a cat", Options(seed=9, count=2)))
    files = await bot.files_of(drawn)
    await bot.running.stop()
    with sqlite3.connect(tmp_path / "easel.db") as connection:
        connection.execute("UPDATE jobs SET finished_at = '2020-01-01 00:00:00.000000'")
    (tmp_path / "config.toml").write_text(
        '[storage]\nkeep_days = 3\noutputs_dir = "files"\ndatabase_url = "sqlite+aiosqlite:///easel.db"\n'
    )
    assert await asyncio.to_thread(main, ["storage", "prune", "--dry-run"]) == 0
    size = sum(path.stat().st_size for path in files) / 1_000_000
    assert capsys.readouterr().out == f"would delete 2 file(s), {size:.1f} MB, of 1 job(s)\n"
    assert all(path.exists() for path in files)
    assert await asyncio.to_thread(main, ["storage", "prune"]) == 0
    assert capsys.readouterr().out == f"deleted 2 file(s), {size:.1f} MB, of 1 job(s)\n"
    assert not any(path.exists() for path in files)
