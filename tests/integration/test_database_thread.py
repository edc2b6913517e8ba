"""Transactions written as functions of a sync session: on a SQLite file they run whole on the database's own
thread, elsewhere through the async session's `run_sync`; both must give the same records, and a caller cancelled
mid-transaction must not let the next turn begin before it ends."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.database import Database
from storage.models import Base, UserRow
from storage.records import DeliveryState, JobDraft, JobState, OutputDraft

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _threads() -> set[str]:
    return {thread.name for thread in threading.enumerate() if thread.name.startswith("easel-sqlite")}


async def _lifecycle(db: Database) -> list[object]:
    """One job from submission to delivery, through every transaction that runs on the thread."""
    user = await db.get_or_create_user("telegram", "7", "Ada", "en")
    job = await db.create_job(JobDraft(user.id, "telegram", "70", "txt2img", {}, "a cat", 1, 1.0))
    link = await db.link_message("telegram", "70", "5", job.id)
    started = await db.mark_running_many([job.id], NOW)
    output = OutputDraft(0, f"{job.id}/0.png", "ab" * 32, 10, 64, 64, 1)
    done = await db.mark_done(job.id, NOW, [output], gpu_seconds=0.5, processed_prompt="a cat")
    delivered = await db.mark_delivered(job.id, NOW)
    shown = [(found.job_id == job.id, found.output_index) for found in await db.messages_of(job.id)]
    stored = await db.get_job(job.id)
    assert stored is not None and link.job_id == job.id
    assert [found.state for found in started] == [JobState.RUNNING]
    assert (done.state, delivered.delivery_state) == (JobState.DONE, DeliveryState.DELIVERED)
    return [stored.state, stored.processed_prompt, stored.delivery_state, stored.attempts, shown, user.language]


async def test_a_file_and_an_in_memory_database_give_the_same_records(tmp_path: Path) -> None:
    outcomes = []
    for url, thread in ((f"sqlite+aiosqlite:///{tmp_path / 'easel.db'}", True), ("sqlite+aiosqlite://", False)):
        db = Database(url)
        await db.upgrade()
        async with db:
            assert (db._sessions.thread is not None) is thread
            if not thread:  # a database in memory is new on each connection: the upgrade's is gone
                assert db._engine is not None
                async with db._engine.begin() as connection:
                    await connection.run_sync(Base.metadata.create_all)
            outcomes.append(await _lifecycle(db))
        assert not _threads()
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][:4] == [JobState.DONE, "a cat", DeliveryState.DELIVERED, 1]


async def test_a_cancelled_caller_waits_for_its_transaction_to_end(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'easel.db'}")
    await db.upgrade()
    async with db:
        user = await db.get_or_create_user("telegram", "1")
        inside, release = threading.Event(), threading.Event()

        def rename(session: Session) -> None:
            session.get(UserRow, user.id).display_name = "renamed"  # type: ignore[union-attr]
            inside.set()
            release.wait(10)

        writing = asyncio.create_task(db._sessions.run(rename))
        await asyncio.to_thread(inside.wait, 10)
        writing.cancel()
        reading = asyncio.create_task(db.get_user(user.id))
        await asyncio.sleep(0.05)
        assert not writing.done() and not reading.done()  # the turn is still the cancelled caller's
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await writing
        renamed = await reading
        assert renamed is not None and renamed.display_name == "renamed"


async def test_a_failing_transaction_writes_nothing(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'easel.db'}")
    await db.upgrade()
    async with db:
        user = await db.get_or_create_user("telegram", "1")

        def rename_then_fail(session: Session) -> None:
            session.get(UserRow, user.id).display_name = "half"  # type: ignore[union-attr]
            session.flush()
            raise LookupError("the rest failed")

        with pytest.raises(LookupError):
            await db._sessions.run(rename_then_fail)
        names = await db._sessions.run(lambda session: list(session.scalars(select(UserRow.display_name))))
        assert names == [None]
