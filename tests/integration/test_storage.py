"""Storage on a real SQLite file and a real PostgreSQL database (tests/databases.py): migrations, connection settings,
and every query method."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, inspect
from sqlalchemy.exc import IntegrityError

from storage import (
    PERMANENT,
    Database,
    DeliveryState,
    InvalidTransition,
    Job,
    JobDraft,
    JobState,
    MessageAlreadyLinked,
    MessageLink,
    NotFound,
    OutputDraft,
    QuotaExceeded,
    QuotaReservation,
    QuotaState,
    QuotaUsage,
    User,
    upgrade_database,
)
from storage.engine import open_engine
from storage.migrate import alembic_config
from storage.models import Base

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = T0.date()
TABLES = {
    "users",
    "communities",
    "jobs",
    "outputs",
    "message_links",
    "quota_ledger",
    "moderation_log",
    "inbox",
    "file_blobs",
}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


class Clock:
    """The database's clock, set by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
"""For what only SQLite has: its PRAGMAs, its query plans."""


@pytest.fixture
def url(database_url: str) -> str:
    return database_url


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def db(url: str, clock: Clock) -> AsyncIterator[Database]:
    database = Database(url, clock=clock)
    await database.upgrade()
    async with database:
        yield database


@pytest.fixture
async def owner(db: Database) -> User:
    return await db.get_or_create_user("telegram", "1001", "Ann", "en")


def draft_for(owner: User, **changes: object) -> JobDraft:
    draft = JobDraft(
        owner_id=owner.id,
        platform="telegram",
        channel_id="-100500",
        operation="txt2img",
        parameters={"width": 768, "height": 768, "steps": 50},
        prompt="a lighthouse at dawn",
        seed=2**32 - 1,
        cost=3.5,
        negative_prompt="blurry",
    )
    return dataclasses.replace(draft, **changes)


async def job_at(db: Database, clock: Clock, owner: User, minutes: float = 0) -> Job:
    clock.now = at(minutes)
    return await db.create_job(draft_for(owner))


def outputs(count: int) -> list[OutputDraft]:
    return [
        OutputDraft(
            index=i, path=f"outputs/0{i}/0{i}.png", sha256=f"0{i}" * 32, size=100 + i, width=768, height=512, seed=7 + i
        )
        for i in range(count)
    ]


def schema_differences(connection: Connection) -> list[object]:
    return compare_metadata(MigrationContext.configure(connection), Base.metadata)


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def on_database(url: str, work: Callable[[Connection], object]) -> object:
    engine = open_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(work)
    finally:
        await engine.dispose()


# Schema and connections


async def test_upgrade_builds_the_schema_the_models_describe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_database_url: str
) -> None:
    url = empty_database_url
    monkeypatch.chdir(tmp_path)  # the migrations are found from the package, not the working directory
    await upgrade_database(url)

    if url.startswith("sqlite"):
        assert (tmp_path / "data" / "easel.db").is_file()
    assert await on_database(url, schema_differences) == []
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert await on_database(url, current_revision) == head == "0012"
    assert TABLES <= set(await on_database(url, lambda connection: inspect(connection).get_table_names()))


async def test_upgrading_a_database_at_head_changes_nothing(db: Database, url: str) -> None:
    user = await db.get_or_create_user("discord", "7")
    await db.upgrade()
    assert await db.get_user(user.id) == user
    assert await on_database(url, schema_differences) == []


def test_alembic_commands_without_a_connection_migrate_on_their_own_engine(url: str) -> None:
    config = alembic_config(url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    command.upgrade(config, "head")


@SQLITE_ONLY
async def test_sqlite_connections_use_wal_and_enforce_foreign_keys(db: Database, owner: User, url: str) -> None:
    def pragmas(connection: Connection) -> tuple[object, ...]:
        return tuple(connection.exec_driver_sql(f"PRAGMA {name}").scalar() for name in ("journal_mode", "foreign_keys"))

    assert await on_database(url, pragmas) == ("wal", 1)


async def test_a_job_of_an_unknown_user_is_refused(db: Database, owner: User) -> None:
    with pytest.raises(IntegrityError):
        await db.create_job(draft_for(owner, owner_id=999))


async def test_datetimes_come_back_in_utc_and_naive_ones_are_refused(db: Database, clock: Clock, owner: User) -> None:
    clock.now = T0.astimezone(timezone(timedelta(hours=3)))
    job = await db.create_job(draft_for(owner))
    assert job.created_at == T0 and job.created_at.tzinfo is UTC
    running = await db.mark_running(job.id, at(1).astimezone(timezone(timedelta(hours=-5))))
    assert running.started_at == at(1) and running.started_at.tzinfo is UTC
    assert (await db.get_job(job.id)).created_at.tzinfo is UTC

    with pytest.raises(ValueError, match="naive"):
        await db.mark_done(job.id, datetime(2026, 3, 1, 12, 0), outputs(1))
    clock.now = datetime(2026, 3, 1, 12, 0)
    with pytest.raises(ValueError, match="naive"):
        await db.create_job(draft_for(owner))


def test_storage_imports_nothing_of_the_platforms_or_the_generation_side() -> None:
    probe = "import sys, storage, storage.migrate; print(sorted({name.partition('.')[0] for name in sys.modules}))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    for package in ("generation", "bots", "torch", "diffusers", "discord", "telegram"):
        assert f"'{package}'" not in loaded


# Users and communities


async def test_a_platform_account_is_one_user(db: Database) -> None:
    ann = await db.get_or_create_user("telegram", "42", "Ann", "de")
    assert (ann.platform, ann.platform_user_id, ann.display_name, ann.language) == ("telegram", "42", "Ann", "de")
    assert (ann.tier, ann.banned_until, ann.ban_reason, ann.created_at) == ("default", None, None, T0)

    renamed = await db.get_or_create_user("telegram", "42", "Anna", "fr")
    assert renamed.id == ann.id
    assert (renamed.display_name, renamed.language) == ("Anna", "de")  # the name follows, the language is hers
    assert (await db.get_or_create_user("telegram", "42")).display_name == "Anna"
    assert (await db.get_or_create_user("discord", "42")).id != ann.id
    assert await db.get_user(ann.id) == renamed
    assert await db.get_user(12345) is None


async def test_language_and_tier_can_be_changed(db: Database, owner: User) -> None:
    chosen = await db.set_user_language(owner.id, "ru")
    assert (chosen.chosen_language, chosen.language) == ("ru", owner.language)
    assert (await db.set_user_tier(owner.id, "patron")).tier == "patron"
    assert await db.get_user(owner.id) == dataclasses.replace(owner, chosen_language="ru", tier="patron")
    assert await db.chosen_languages() == {(owner.platform, owner.platform_user_id): "ru"}
    assert (await db.set_user_language(owner.id, None)).chosen_language is None
    assert await db.chosen_languages() == {}
    with pytest.raises(NotFound):
        await db.set_user_tier(12345, "patron")


async def test_bans_are_timed_or_permanent_until_lifted(db: Database, owner: User) -> None:
    timed = await db.ban_user(owner.id, at(60), "spam")
    assert (timed.banned_until, timed.ban_reason, timed.banned_permanently) == (at(60), "spam", False)
    assert timed.is_banned(at(59)) and not timed.is_banned(at(60))

    permanent = await db.ban_user(owner.id, None, "abuse")
    assert (permanent.banned_until, permanent.ban_reason, permanent.banned_permanently) == (PERMANENT, "abuse", True)
    assert permanent.is_banned(datetime(9000, 1, 1, tzinfo=UTC))
    assert await db.get_user(owner.id) == permanent

    lifted = await db.unban_user(owner.id)
    assert (lifted.banned_until, lifted.ban_reason) == (None, None) and not lifted.is_banned(T0)
    with pytest.raises(NotFound):
        await db.ban_user(12345, None, "spam")


async def test_communities_are_created_once_and_settings_merge(db: Database) -> None:
    guild = await db.get_or_create_community("discord", "555", "Painters")
    assert (guild.name, guild.settings, guild.created_at) == ("Painters", {}, T0)
    assert (await db.get_or_create_community("discord", "555")).id == guild.id
    assert (await db.get_or_create_community("discord", "555", "Painters Guild")).name == "Painters Guild"

    await db.update_community_settings(guild.id, {"language": "en", "nsfw": False})
    updated = await db.update_community_settings(guild.id, {"nsfw": True, "limits": {"daily_images": 20}})
    assert updated.settings == {"language": "en", "nsfw": True, "limits": {"daily_images": 20}}
    assert (await db.get_community(guild.id)).settings == updated.settings
    assert await db.get_community(12345) is None
    with pytest.raises(NotFound):
        await db.update_community_settings(12345, {})


# Jobs


async def test_a_new_job_is_queued_with_everything_the_draft_says(db: Database, clock: Clock, owner: User) -> None:
    guild = await db.get_or_create_community("telegram", "-100500")
    parent = await db.create_job(draft_for(owner))
    draft = draft_for(owner, community_id=guild.id, parent_id=parent.id, input_files=("ab" * 32, "cd" * 32))
    clock.now = at(1)

    job = await db.create_job(draft)

    assert len(job.id) == 32 and int(job.id, 16) >= 0 and job.id != parent.id
    assert (job.state, job.attempts, job.created_at, job.started_at, job.finished_at) == (
        JobState.QUEUED,
        0,
        at(1),
        None,
        None,
    )
    assert (job.delivery_state, job.delivery_attempts) == (DeliveryState.PENDING, 0)
    for name in ("owner_id", "community_id", "platform", "channel_id", "operation", "parameters", "prompt"):
        assert getattr(job, name) == getattr(draft, name)
    assert (job.negative_prompt, job.processed_prompt, job.seed, job.cost) == ("blurry", None, 2**32 - 1, 3.5)
    assert (job.parent_id, job.input_files) == (parent.id, draft.input_files)
    assert await db.get_job(job.id) == job
    assert await db.get_job("0" * 32) is None


async def test_a_job_runs_and_finishes_with_its_outputs(db: Database, owner: User) -> None:
    job = await db.create_job(draft_for(owner))

    running = await db.mark_running(job.id, at(1))
    assert (running.state, running.attempts, running.started_at) == (JobState.RUNNING, 1, at(1))

    done = await db.mark_done(job.id, at(2), outputs(3)[::-1])
    assert (done.state, done.finished_at, done.error_code) == (JobState.DONE, at(2), None)
    stored = await db.outputs_of(job.id)
    assert [dataclasses.astuple(output)[1:] for output in stored] == [dataclasses.astuple(o) for o in outputs(3)]
    assert all(output.job_id == job.id for output in stored)
    assert await db.get_job(job.id) == done


async def test_failure_and_cancellation_are_recorded(db: Database, owner: User) -> None:
    failing = await db.create_job(draft_for(owner))
    await db.mark_running(failing.id, at(1))
    failed = await db.mark_failed(failing.id, at(2), "out_of_memory", "CUDA out of memory")
    assert (failed.state, failed.finished_at, failed.error_code, failed.error_message) == (
        JobState.FAILED,
        at(2),
        "out_of_memory",
        "CUDA out of memory",
    )
    refused = await db.mark_failed((await db.create_job(draft_for(owner))).id, at(2), "queue.refused")
    assert (refused.error_code, refused.error_message, refused.attempts) == ("queue.refused", None, 0)

    queued = await db.create_job(draft_for(owner))
    cancelled = await db.mark_cancelled(queued.id, at(3))
    assert (cancelled.state, cancelled.finished_at, cancelled.attempts) == (JobState.CANCELLED, at(3), 0)
    assert await db.outputs_of(queued.id) == []


Step = Callable[[Database, str], Awaitable[Job]]


async def start(db: Database, job_id: str) -> Job:
    return await db.mark_running(job_id, at(1))


async def finish(db: Database, job_id: str) -> Job:
    return await db.mark_done(job_id, at(2), outputs(1))


async def fail(db: Database, job_id: str) -> Job:
    return await db.mark_failed(job_id, at(2), "bug", "boom")


async def cancel(db: Database, job_id: str) -> Job:
    return await db.mark_cancelled(job_id, at(2))


async def requeue(db: Database, job_id: str) -> Job:
    return await db.requeue_job(job_id)


@pytest.mark.parametrize(
    ("history", "refused", "state", "target"),
    [
        ([start, finish], cancel, "done", "cancelled"),
        ([start, finish], fail, "done", "failed"),
        ([start, finish], start, "done", "running"),
        ([start, finish], requeue, "done", "queued"),
        ([cancel], finish, "cancelled", "done"),
        ([cancel], start, "cancelled", "running"),
        ([start, fail], cancel, "failed", "cancelled"),
        ([start], start, "running", "running"),
        ([], finish, "queued", "done"),
        ([], requeue, "queued", "queued"),
    ],
)
async def test_state_changes_out_of_order_are_refused(
    db: Database, owner: User, history: list[Step], refused: Step, state: str, target: str
) -> None:
    job = before = await db.create_job(draft_for(owner))
    for step in history:
        before = await step(db, job.id)

    with pytest.raises(InvalidTransition) as refusal:
        await refused(db, job.id)

    assert (refusal.value.current, refusal.value.target) == (state, target)
    assert job.id in str(refusal.value)
    assert await db.get_job(job.id) == before


async def test_of_racing_changes_to_one_job_exactly_one_wins(db: Database, owner: User) -> None:
    job = await db.create_job(draft_for(owner))
    await db.mark_running(job.id, at(1))

    results = await asyncio.gather(finish(db, job.id), cancel(db, job.id), fail(db, job.id), return_exceptions=True)

    winners = [result for result in results if isinstance(result, Job)]
    assert len(winners) == 1
    assert all(isinstance(result, InvalidTransition) for result in results if result not in winners)
    assert await db.get_job(job.id) == winners[0]


@pytest.mark.parametrize("step", [start, finish, fail, cancel, requeue])
async def test_state_changes_of_an_unknown_job_raise_not_found(db: Database, step: Step) -> None:
    with pytest.raises(NotFound):
        await step(db, "f" * 32)


async def test_outputs_and_done_are_written_together_or_not_at_all(db: Database, owner: User) -> None:
    job = await db.create_job(draft_for(owner))
    running = await db.mark_running(job.id, at(1))
    twice_index_0 = [*outputs(1), *outputs(1)]

    with pytest.raises(IntegrityError):
        await db.mark_done(job.id, at(2), twice_index_0)

    assert await db.get_job(job.id) == running
    assert await db.outputs_of(job.id) == []


async def test_restart_recovery_finds_unfinished_jobs_oldest_first_and_retries_them(
    db: Database, clock: Clock, owner: User
) -> None:
    first, second, third, fourth = [await job_at(db, clock, owner, minute) for minute in (3, 1, 2, 4)]
    await db.mark_running(first.id, at(5))
    await db.mark_running(third.id, at(5))
    await db.mark_failed(fourth.id, at(6), "bug", "boom")

    assert [job.id for job in await db.jobs_in_states([JobState.QUEUED])] == [second.id]
    unfinished = await db.jobs_in_states([JobState.RUNNING, JobState.QUEUED])
    assert [job.id for job in unfinished] == [second.id, third.id, first.id]

    requeued = await db.requeue_job(first.id)
    assert (requeued.state, requeued.attempts, requeued.started_at) == (JobState.QUEUED, 1, None)
    assert (await db.mark_running(first.id, at(7))).attempts == 2


async def test_owner_jobs_are_a_users_own_newest_first(db: Database, clock: Clock, owner: User) -> None:
    other = await db.get_or_create_user("discord", "2")
    mine = [await job_at(db, clock, owner, minute) for minute in range(5)]
    await job_at(db, clock, other, 10)

    assert [job.id for job in await db.owner_jobs(owner.id, limit=3)] == [job.id for job in mine[::-1][:3]]
    assert len(await db.owner_jobs(owner.id)) == 5
    assert await db.owner_jobs(12345) == []


async def test_finished_results_wait_for_delivery_until_delivered(db: Database, owner: User) -> None:
    done, failed, cancelled, running = [await db.create_job(draft_for(owner)) for _ in range(4)]
    await db.mark_running(done.id, at(1))
    await db.mark_done(done.id, at(4), outputs(1))
    await db.mark_failed(failed.id, at(2), "bug", "boom")
    await db.mark_cancelled(cancelled.id, at(3))
    await db.mark_running(running.id, at(1))
    assert [job.id for job in await db.undelivered_jobs()] == [failed.id, cancelled.id, done.id]

    retry = await db.mark_delivery_failed(done.id, at(5), "telegram: 502 Bad Gateway")
    assert (retry.delivery_state, retry.delivery_attempts, retry.delivery_attempted_at, retry.delivery_error) == (
        DeliveryState.PENDING,
        1,
        at(5),
        "telegram: 502 Bad Gateway",
    )
    assert done.id in [job.id for job in await db.undelivered_jobs()]

    delivered = await db.mark_delivered(done.id, at(6))
    assert (delivered.delivery_state, delivered.delivered_at, delivered.delivery_attempts) == (
        DeliveryState.DELIVERED,
        at(6),
        2,
    )
    assert delivered.delivery_error is None

    given_up = await db.mark_delivery_failed(failed.id, at(7), "chat not found", final=True)
    assert (given_up.delivery_state, given_up.delivered_at) == (DeliveryState.FAILED, None)
    assert [job.id for job in await db.undelivered_jobs()] == [cancelled.id]


async def test_a_result_is_delivered_once_and_only_when_finished(db: Database, owner: User) -> None:
    job = await db.create_job(draft_for(owner))
    await db.mark_running(job.id, at(1))
    with pytest.raises(InvalidTransition) as early:
        await db.mark_delivered(job.id, at(2))
    assert early.value.current == "running"

    await db.mark_done(job.id, at(2), outputs(1))
    delivered = await db.mark_delivered(job.id, at(3))
    for again in (db.mark_delivered(job.id, at(4)), db.mark_delivery_failed(job.id, at(4), "x")):
        with pytest.raises(InvalidTransition) as twice:
            await again
        assert twice.value.current == "delivered"
    assert await db.get_job(job.id) == delivered
    with pytest.raises(NotFound):
        await db.mark_delivered("f" * 32, at(4))


# Quotas


async def test_a_reservation_counts_at_once_and_settles_once(db: Database, owner: User) -> None:
    job = await db.create_job(draft_for(owner))
    reserved = await db.reserve_quota(owner.id, job.id, DAY, 2, 30.0)
    assert (reserved.state, reserved.images, reserved.gpu_seconds, reserved.day) == (QuotaState.RESERVED, 2, 30.0, DAY)
    assert await db.reserve_quota(owner.id, job.id, DAY, 2, 30.0) == reserved  # a retried reservation
    assert await db.quota_usage(owner.id, DAY) == QuotaUsage(images=2, gpu_seconds=30.0)

    committed = await db.commit_quota(job.id, 12.5)
    assert (committed.state, committed.images, committed.gpu_seconds) == (QuotaState.COMMITTED, 2, 12.5)
    assert await db.commit_quota(job.id, 99.0) == committed  # a retried commit
    assert await db.reserve_quota(owner.id, job.id, DAY, 2, 30.0) == committed
    assert await db.quota_usage(owner.id, DAY) == QuotaUsage(images=2, gpu_seconds=12.5)

    refunded = await db.refund_quota(job.id)
    assert refunded.state is QuotaState.REFUNDED
    assert await db.refund_quota(job.id) == refunded
    assert await db.quota_usage(owner.id, DAY) == QuotaUsage()
    with pytest.raises(InvalidTransition):
        await db.commit_quota(job.id, 12.5)


async def test_a_refunded_reservation_no_longer_counts(db: Database, owner: User) -> None:
    kept, dropped = [await db.create_job(draft_for(owner)) for _ in range(2)]
    await db.reserve_quota(owner.id, kept.id, DAY, 1, 10.0)
    await db.reserve_quota(owner.id, dropped.id, DAY, 4, 40.0)

    assert (await db.refund_quota(dropped.id)).state is QuotaState.REFUNDED
    assert await db.quota_usage(owner.id, DAY) == QuotaUsage(images=1, gpu_seconds=10.0)
    assert (await db.commit_quota(kept.id, 8.0)).gpu_seconds == 8.0
    assert await db.quota_usage(owner.id, DAY) == QuotaUsage(images=1, gpu_seconds=8.0)


async def test_usage_is_per_user_and_per_day(db: Database, owner: User) -> None:
    other = await db.get_or_create_user("discord", "2")
    tomorrow, yesterday = DAY + timedelta(days=1), DAY - timedelta(days=1)
    for user, day, images, gpu_seconds in [(owner, DAY, 1, 5.0), (owner, DAY, 2, 6.0), (owner, tomorrow, 4, 7.0)]:
        await db.reserve_quota(user.id, (await db.create_job(draft_for(user))).id, day, images, gpu_seconds)
    await db.reserve_quota(other.id, (await db.create_job(draft_for(other))).id, DAY, 8, 8.0)

    assert await db.quota_usage(owner.id, DAY) == QuotaUsage(images=3, gpu_seconds=11.0)
    assert await db.quota_usage(owner.id, tomorrow) == QuotaUsage(images=4, gpu_seconds=7.0)
    assert await db.quota_usage(other.id, DAY) == QuotaUsage(images=8, gpu_seconds=8.0)
    assert await db.quota_usage(owner.id, yesterday) == QuotaUsage()


@pytest.mark.parametrize(
    ("limits", "resource", "limit"),
    [
        ({"max_images": 4}, "images", 4),
        ({"max_gpu_seconds": 45.0}, "gpu_seconds", 45.0),
        ({"max_images": 100, "max_gpu_seconds": 45.0}, "gpu_seconds", 45.0),
    ],
)
async def test_a_reservation_over_a_limit_is_refused_and_not_written(
    db: Database, owner: User, limits: dict[str, float], resource: str, limit: float
) -> None:
    jobs = [await db.create_job(draft_for(owner)) for _ in range(3)]
    await db.reserve_quota(owner.id, jobs[0].id, DAY, 2, 20.0, **limits)
    await db.reserve_quota(owner.id, jobs[1].id, DAY, 2, 20.0, **limits)  # exactly at a limit

    with pytest.raises(QuotaExceeded) as refusal:
        await db.reserve_quota(owner.id, jobs[2].id, DAY, 2, 20.0, **limits)

    assert (refusal.value.resource, refusal.value.limit) == (resource, limit)
    assert await db.quota_usage(owner.id, DAY) == QuotaUsage(images=4, gpu_seconds=40.0)
    assert await db.refund_quota(jobs[2].id) is None


async def test_concurrent_reservations_cannot_overdraw(db: Database, owner: User) -> None:
    jobs = [await db.create_job(draft_for(owner)) for _ in range(6)]

    results = await asyncio.gather(
        *(db.reserve_quota(owner.id, job.id, DAY, 2, 1.0, max_images=5) for job in jobs), return_exceptions=True
    )

    assert sum(isinstance(result, QuotaExceeded) for result in results) == 4
    assert (await db.quota_usage(owner.id, DAY)).images == 4


async def test_settling_a_job_that_reserved_nothing_returns_none(db: Database, owner: User) -> None:
    job = await db.create_job(draft_for(owner))
    assert await db.commit_quota(job.id, 1.0) is None
    assert await db.refund_quota(job.id) is None
    with pytest.raises(IntegrityError):
        await db.reserve_quota(owner.id, "f" * 32, DAY, 1, 1.0)


# Message links and the moderation log


async def test_messages_lead_back_to_their_job(db: Database, owner: User) -> None:
    job = await db.create_job(draft_for(owner))
    other = await db.create_job(draft_for(owner))

    status = await db.link_message("telegram", "-100500", "77", job.id)
    image = await db.link_message("telegram", "-100500", "78", job.id, output_index=1)
    await db.link_message("telegram", "-100600", "77", other.id)

    assert await db.find_message("telegram", "-100500", "77") == status
    assert (image.job_id, image.output_index) == (job.id, 1)
    assert (await db.find_message("telegram", "-100600", "77")).job_id == other.id
    assert await db.find_message("discord", "-100500", "77") is None


async def test_a_message_is_linked_to_one_thing(db: Database, owner: User) -> None:
    job = await db.create_job(draft_for(owner))
    other = await db.create_job(draft_for(owner))
    link = await db.link_message("discord", "9", "10", job.id, output_index=0)

    assert await db.link_message("discord", "9", "10", job.id, output_index=0) == link
    for job_id, index in ((other.id, 0), (job.id, 1), (job.id, None)):
        with pytest.raises(MessageAlreadyLinked):
            await db.link_message("discord", "9", "10", job_id, output_index=index)
    assert await db.find_message("discord", "9", "10") == link


async def test_the_moderation_log_lists_a_communitys_entries_newest_first(
    db: Database, clock: Clock, owner: User
) -> None:
    guild = await db.get_or_create_community("discord", "555")
    other = await db.get_or_create_community("discord", "556")
    ban = await db.log_moderation(
        "ban", "telegram:1001", community_id=guild.id, actor_id=owner.id, reason="spam", details={"days": 3}
    )
    clock.now = at(1)
    filtered = await db.log_moderation("block_prompt", "job:abc", community_id=guild.id, details={"word": "gore"})
    await db.log_moderation("ban", "discord:9", community_id=other.id)
    direct = await db.log_moderation("warn", "telegram:5")

    assert (ban.action, ban.target, ban.actor_id, ban.reason, ban.details, ban.created_at) == (
        "ban",
        "telegram:1001",
        owner.id,
        "spam",
        {"days": 3},
        T0,
    )
    assert (filtered.actor_id, filtered.reason, filtered.created_at) == (None, None, at(1))
    assert await db.moderation_log(guild.id) == [filtered, ban]
    assert await db.moderation_log(guild.id, limit=1) == [filtered]
    assert await db.moderation_log(None) == [direct]


# Restarts, sharing, domain types


async def test_everything_survives_closing_and_reopening(url: str) -> None:
    async with Database(url) as first:
        await first.upgrade()
        user = await first.get_or_create_user("telegram", "1", "Ann")
        job = await first.create_job(draft_for(user))
        await first.reserve_quota(user.id, job.id, DAY, 1, 9.0)
        await first.mark_running(job.id, at(1))
        done = await first.mark_done(job.id, at(2), outputs(2))
        link = await first.link_message("telegram", "1", "2", job.id)
        waiting = await first.create_job(draft_for(user))

    second = Database(url)
    await second.upgrade()
    await second.connect()
    try:
        assert await second.get_user(user.id) == user
        assert await second.get_job(job.id) == done
        assert len(await second.outputs_of(job.id)) == 2
        assert await second.find_message("telegram", "1", "2") == link
        assert await second.quota_usage(user.id, DAY) == QuotaUsage(images=1, gpu_seconds=9.0)
        assert [job.id for job in await second.jobs_in_states([JobState.QUEUED])] == [waiting.id]
    finally:
        await second.close()


async def test_two_processes_can_share_the_database_file(db: Database, owner: User, url: str) -> None:
    async with Database(url) as other:
        databases = [db, other] * 10
        created = await asyncio.gather(*(database.create_job(draft_for(owner)) for database in databases))
        await asyncio.gather(
            *(database.mark_running(job.id, at(1)) for job, database in zip(created, databases[::-1], strict=True))
        )
        assert len(await other.jobs_in_states([JobState.RUNNING])) == 20
    assert len(await db.owner_jobs(owner.id, limit=100)) == 20


async def test_callers_get_frozen_domain_records_detached_from_the_database(db: Database, owner: User) -> None:
    guild = await db.get_or_create_community("discord", "555")
    job = await db.create_job(draft_for(owner))
    await db.mark_running(job.id, at(1))
    returned = [
        owner,
        guild,
        job,
        await db.mark_done(job.id, at(2), outputs(1)),
        *await db.outputs_of(job.id),
        await db.link_message("discord", "1", "2", job.id),
        await db.reserve_quota(owner.id, job.id, DAY, 1, 1.0),
        await db.commit_quota(job.id, 1.0),
        await db.quota_usage(owner.id, DAY),
        await db.log_moderation("ban", "x"),
        *await db.owner_jobs(owner.id),
    ]
    for value in returned:
        assert dataclasses.is_dataclass(value) and type(value).__module__ == "storage.records"
        with pytest.raises(dataclasses.FrozenInstanceError):
            value.id = 0  # type: ignore[misc]

    job.parameters["steps"] = 1  # type: ignore[index]
    assert (await db.get_job(job.id)).parameters["steps"] == 50


async def test_mark_done_settles_the_quota_in_the_same_transaction(db: Database, owner: User) -> None:
    job = await db.create_job(draft_for(owner))
    await db.reserve_quota(owner.id, job.id, DAY, 1, 10.0)
    await db.mark_running(job.id, at(1))
    await db.mark_done(job.id, at(2), outputs(1), gpu_seconds=2.5)
    usage = await db.quota_usage(owner.id, DAY)
    assert (usage.images, usage.gpu_seconds) == (1, 2.5)


async def test_a_job_and_its_reservation_are_written_together_or_not_at_all(db: Database, owner: User) -> None:
    reservation = QuotaReservation(DAY, 2, 10.0, max_images=3)
    first = await db.create_job(draft_for(owner), reservation)
    assert (await db.quota_usage(owner.id, DAY)).images == 2
    with pytest.raises(QuotaExceeded):
        await db.create_job(draft_for(owner), reservation)
    assert [job.id for job in await db.owner_jobs(owner.id)] == [first.id]
    assert (await db.quota_usage(owner.id, DAY)).images == 2


async def test_preferences_start_empty_and_are_replaced_whole(db: Database, owner: User) -> None:
    assert owner.preferences == {}
    changed = await db.set_user_preferences(owner.id, {"width": 512, "steps": 20})
    assert changed.preferences == {"width": 512, "steps": 20}
    assert (await db.set_user_preferences(owner.id, {"steps": 30})).preferences == {"steps": 30}
    assert (await db.get_user(owner.id)).preferences == {"steps": 30}


async def test_owner_jobs_filter_by_state_and_id_prefix(db: Database, owner: User) -> None:
    first, second = await db.create_job(draft_for(owner)), await db.create_job(draft_for(owner))
    await db.mark_cancelled(first.id, datetime.now(UTC))
    assert [job.id for job in await db.owner_jobs(owner.id, states=[JobState.QUEUED])] == [second.id]
    assert [job.id for job in await db.owner_jobs(owner.id, id_prefix=first.id[:6])] == [first.id]
    assert await db.owner_jobs(owner.id, id_prefix="%") == []


async def test_deleting_a_job_keeps_the_first_time_and_its_message_links(db: Database, owner: User) -> None:
    job = await db.create_job(draft_for(owner))
    await db.link_message("telegram", "1", "10", job.id, 0)
    await db.link_message("telegram", "1", "9", job.id)
    first = await db.mark_deleted(job.id, datetime(2026, 1, 1, tzinfo=UTC))
    again = await db.mark_deleted(job.id, datetime(2026, 1, 2, tzinfo=UTC))
    assert first.deleted_at == again.deleted_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert [link.message_id for link in await db.messages_of(job.id)] == ["10", "9"]
    with pytest.raises(NotFound):
        await db.mark_deleted("missing", datetime.now(UTC))


async def test_community_bans_are_per_community_replaced_and_lifted(db: Database, owner: User) -> None:
    here = await db.get_or_create_community("telegram", "-1", "Here")
    there = await db.get_or_create_community("telegram", "-2", "There")
    ban = await db.ban_in_community(here.id, owner.id, None, "spam")
    assert ban.permanent and ban.is_active(datetime.now(UTC))
    assert await db.community_ban(there.id, owner.id) is None
    until = datetime(2030, 1, 1, tzinfo=UTC)
    replaced = await db.ban_in_community(here.id, owner.id, until, "flood")
    assert (replaced.until, replaced.reason) == (until, "flood") and not replaced.is_active(until)
    assert await db.unban_in_community(here.id, owner.id) is True
    assert await db.unban_in_community(here.id, owner.id) is False
    assert await db.community_ban(here.id, owner.id) is None


async def test_an_outputs_safety_score_is_kept(db: Database, owner: User) -> None:
    job = await db.create_job(draft_for(owner))
    await db.mark_running(job.id, datetime.now(UTC))
    scored = [
        dataclasses.replace(output, nsfw_score=score) for output, score in zip(outputs(2), (0.25, None), strict=True)
    ]
    await db.mark_done(job.id, datetime.now(UTC), scored)
    assert [output.nsfw_score for output in await db.outputs_of(job.id)] == [0.25, None]


# The inbox


async def test_an_update_is_received_once_and_replayed_until_handled(db: Database, clock: Clock) -> None:
    assert await db.receive_update("telegram:1", 10, "{}")
    assert await db.receive_update("telegram:1", 11, '{"b": 1}')
    assert not await db.receive_update("telegram:1", 10, "{}")
    assert await db.receive_update("telegram:2", 10, "{}")
    await db.updates_handled("telegram:1", [10])
    assert await db.unhandled_updates("telegram:1") == [(11, '{"b": 1}')]
    assert not await db.receive_update("telegram:1", 10, "{}")
    await db.updates_handled("telegram:1", [11])
    clock.now = at(60 * 25)
    assert await db.prune_updates("telegram:1", timedelta(hours=24)) == 2
    assert await db.unhandled_updates("telegram:2") == [(10, "{}")]
    assert await db.receive_update("telegram:1", 10, "{}")


@SQLITE_ONLY
async def test_lookups_by_output_path_and_by_a_users_active_jobs_use_their_indexes(db: Database, url: str) -> None:
    """Deleting a job's images asks which other jobs show each file, and /queue asks for a user's active jobs
    (`active_jobs`' query): neither may read every output, or every job of the user."""
    queries = (
        ("SELECT job_id FROM outputs WHERE path IN (?, ?) AND job_id != ?", ("a", "b", "x")),
        ("SELECT id FROM jobs WHERE owner_id = ? AND state IN (?, ?)", (1, "queued", "running")),
    )

    def plans(connection: Connection) -> list[str]:
        return [
            " ".join(
                str(row[-1]) for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}", values).fetchall()
            )
            for query, values in queries
        ]

    by_path, active = await on_database(url, plans)
    assert "ix_outputs_path" in by_path
    assert "ix_jobs_owner_id_state_created_at" in active


async def test_the_outputs_of_several_jobs_come_in_one_call(db: Database) -> None:
    user = await db.get_or_create_user("discord", "7")
    jobs = [await db.create_job(draft_for(user)) for _ in range(3)]
    for job, count in zip(jobs, (2, 0, 1), strict=True):
        await db.mark_running(job.id, at(1))
        await db.mark_done(job.id, at(2), outputs(count))
    found = await db.outputs_of_jobs([job.id for job in jobs])
    assert {job_id: [item.index for item in items] for job_id, items in found.items()} == {
        jobs[0].id: [0, 1],
        jobs[2].id: [0],
    }
    assert await db.outputs_of_jobs([]) == {}


async def test_a_users_active_jobs_come_oldest_first(db: Database, clock: Clock) -> None:
    owner = await db.get_or_create_user("telegram", "5")
    first, done, second = [await job_at(db, clock, owner, minutes) for minutes in (1, 2, 3)]
    await db.mark_running(first.id, at(4))
    await db.mark_cancelled(done.id, at(4))
    assert [job.id for job in await db.active_jobs(owner.id)] == [first.id, second.id]


def commit_count(db: Database) -> Callable[[], int]:
    """The number of transactions committed from now on."""
    commits = 0

    def count(*_: object) -> None:
        nonlocal commits
        commits += 1

    thread = db._sessions.thread  # a SQLite file's transactions run on its thread's engine
    if thread is not None:
        event.listen(thread.engine, "commit", count)
    else:
        assert db._engine is not None
        event.listen(db._engine.sync_engine, "commit", count)
    return lambda: commits


async def test_jobs_submitted_together_are_written_together_each_refused_alone_over_its_quota(db: Database) -> None:
    """A burst of submissions: the jobs that wait while one group is written go in the next transaction, and a
    reservation over its owner's limit refuses only its own job."""
    alice = await db.get_or_create_user("telegram", "1")
    bob = await db.get_or_create_user("telegram", "2")
    limit = QuotaReservation(DAY, 1, 1.0, max_images=3, max_gpu_seconds=100.0)
    commits = commit_count(db)
    outcomes = await asyncio.gather(
        *(db.create_job(draft_for(owner), limit) for owner in [alice] * 5 + [bob] * 5 + [alice] * 5),
        return_exceptions=True,
    )
    written = [outcome for outcome in outcomes if isinstance(outcome, Job)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, QuotaExceeded)]
    assert [job.owner_id for job in written] == [alice.id] * 3 + [bob.id] * 3
    assert len(refused) == 9 and all(error.resource == "images" for error in refused)
    assert commits() <= 3  # the first job alone, then everyone who waited meanwhile
    assert (await db.quota_usage(alice.id, DAY)).images == 3 and (await db.quota_usage(bob.id, DAY)).images == 3
    assert len(await db.jobs_in_states([JobState.QUEUED])) == 6


async def test_users_and_links_asked_together_are_written_together_a_bad_link_failing_alone(db: Database) -> None:
    """A burst's first contacts and status-message links go in a few transactions (`storage.groups`); a link to a
    job that does not exist fails alone, and so does one that would relink a message."""
    commits = commit_count(db)
    users = await asyncio.gather(*(db.get_or_create_user("telegram", str(i % 7), f"user {i}") for i in range(20)))
    assert len({user.id for user in users}) == 7 and commits() <= 2
    assert users[0].id == users[7].id and users[0].display_name == "user 0"
    job = await db.create_job(draft_for(users[0]))
    before = commits()
    outcomes = await asyncio.gather(
        *(db.link_message("telegram", "-1", str(i), job.id) for i in range(10)),
        db.link_message("telegram", "-1", "0", job.id, output_index=0),
        db.link_message("telegram", "-1", "99", "no such job"),
        return_exceptions=True,
    )
    assert all(isinstance(outcome, MessageLink) for outcome in outcomes[:10])
    assert isinstance(outcomes[10], MessageAlreadyLinked) and isinstance(outcomes[11], IntegrityError)
    assert commits() - before <= 12  # the first alone; then the group that failed, written again link by link
    assert len(await db.messages_of(job.id)) == 10


async def test_files_kept_in_the_database_come_back_byte_for_byte_and_go_when_deleted(db: Database) -> None:
    """Hosts that share no disk carry inputs and outputs through the database; a path is named by its content, so
    a second host keeping the same file at once changes nothing."""
    first, second = b"\x89PNG first" + bytes(range(256)), b"second"
    await db.put_blobs({"outputs/aa/a.png": first, "inputs/bb/b.bin": second})
    await asyncio.gather(db.put_blobs({"outputs/aa/a.png": first}), db.put_blobs({"outputs/aa/a.png": first}))
    assert await db.get_blobs(["outputs/aa/a.png", "inputs/bb/b.bin", "outputs/cc/missing.png"]) == {
        "outputs/aa/a.png": first,
        "inputs/bb/b.bin": second,
    }
    await db.delete_blobs(["outputs/aa/a.png"])
    assert await db.get_blobs(["outputs/aa/a.png", "inputs/bb/b.bin"]) == {"inputs/bb/b.bin": second}
    assert await db.get_blobs([]) == {}
    await db.replace_blob("previews/job.jpg", b"first preview")
    await db.replace_blob("previews/job.jpg", b"later preview")
    assert await db.get_blobs(["previews/job.jpg"]) == {"previews/job.jpg": b"later preview"}
