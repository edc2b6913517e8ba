"""The queue that processes share on PostgreSQL (`bots.core.shared_queue`) against the in-process one.

Several `SharedQueue`s on one database stand for processes on several hosts: each keeps its own copy of the queue,
and they agree with each other and with `LocalQueue` fed the same trace. Needs a server: EASEL_TEST_POSTGRES_URL.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from functools import partial

import pytest

from bots.core.shared_queue import SharedQueue
from generation.errors import UserQueueFull
from generation.fair_queue_records import QueuedJob
from generation.job_queue import LocalQueue, Measured
from generation.scheduler import DuplicateJob, FairScheduler
from generation.worker import Worker
from storage.database import Database
from storage.notifications import Listener
from storage.queue_log import QUEUE_CHANNEL, RESET
from storage.records import JobDraft, JobState, QuotaReservation

pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)]

USERS = ("ann", "bob", "cy", "dee", "eve")
COMMUNITIES = (None, "red", "blue")
BATCH_KEYS = (None, "a", "b")


def scheduler(**options: object) -> FairScheduler:
    settings: dict[str, object] = {"max_pending_per_user": 1000, "max_queue": 100_000, "max_wait": math.inf}
    return FairScheduler(**(settings | {"communities": True} | options))  # type: ignore[arg-type]


def queued(job_id: str, user: str, community: str | None = None, **options: object) -> QueuedJob:
    return QueuedJob(job_id=job_id, user=user, community=community, cost=1.0, submitted_at=0.0, **options)  # type: ignore[arg-type]


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with Database(database_url) as database:
        yield database


def process(db: Database, owner: str, make: Callable[[], FairScheduler] = scheduler, **options: float) -> SharedQueue:
    return SharedQueue(db, make, owner=owner, **options)  # type: ignore[arg-type]


async def test_a_trace_of_submissions_cancels_and_claims_gives_the_in_process_order(db: Database) -> None:
    """One definition of the fair order: communities, batching and cancels' refunds included."""
    local, shared, watcher = LocalQueue(scheduler()), process(db, "w1"), process(db, "w2")
    rng = random.Random(7)
    queued_ids: list[str] = []
    running: list[list[str]] = []
    taken: list[list[str]] = []
    for step in range(300):
        action = rng.random()
        if action < 0.55 or not (queued_ids or running):
            job = QueuedJob(
                job_id=f"j{step}",
                user=rng.choice(USERS),
                community=rng.choice(COMMUNITIES),
                cost=rng.choice((1.0, 2.0, 3.0)),
                batch_key=rng.choice(BATCH_KEYS),
                images=rng.choice((1, 2)),
                kind="txt2img",
                submitted_at=0.0,
            )
            await local.submit(job)
            await shared.submit(job)
            queued_ids.append(job.job_id)
        elif action < 0.65 and queued_ids:
            job_id = rng.choice(queued_ids)
            assert await local.cancel(job_id) == await shared.cancel(job_id) == "queued"
            queued_ids.remove(job_id)
        elif action < 0.85:
            batch = [job.job_id for job in await local.take(4, 4)]
            assert [job.job_id for job in await shared.take(4, 4)] == batch
            if batch:
                taken.append(batch)
                running.append(batch)
                queued_ids = [job_id for job_id in queued_ids if job_id not in batch]
        elif running:
            batch = running.pop(rng.randrange(len(running)))
            await local.finished(batch, None)
            await shared.finished(batch, Measured("txt2img", 1.0, 0.5))
        assert shared.positions() == local.positions()
    await watcher.refresh()
    assert watcher.positions() == local.positions() and watcher.head(10) == local.head(10)
    assert len(taken) > 30 and any(len(batch) > 1 for batch in taken)


async def test_another_process_sees_the_queue_and_its_caps(db: Database) -> None:
    front = process(db, "front", partial(scheduler, max_pending_per_user=2))
    other = process(db, "other", partial(scheduler, max_pending_per_user=2))
    await front.submit(queued("a1", "ann"))
    await front.submit(queued("a2", "ann"))
    with pytest.raises(UserQueueFull):
        await other.submit(queued("a3", "ann"))
    with pytest.raises(DuplicateJob):
        await other.submit(queued("a1", "ann"))
    await other.submit(queued("b1", "bob"))
    await front.refresh()
    assert front.positions() == other.positions() == {"a1": 1, "b1": 2, "a2": 3}
    assert await front.cancel("b1") == "queued"
    assert [job.job_id for job in await other.take(1, 1)] == ["a1"]
    assert await front.cancel("a1") == "running" and front.is_running("a1")


async def test_a_dead_workers_jobs_go_back_to_the_queue_once_its_lease_runs_out(db: Database) -> None:
    ids = [await _job_row(db, "one"), await _job_row(db, "two")]
    users_only = partial(scheduler, communities=False)
    dead = process(db, "dead", users_only, lease_seconds=0.3)
    alive = process(db, "alive", users_only, lease_seconds=0.3)
    for job_id in ids:
        await dead.submit(queued(job_id, "ann" if job_id == ids[0] else "bob", batch_key="k"))
    assert [job.job_id for job in await dead.take(4, 4)] == ids
    await db.mark_running_many(ids, datetime.now(UTC))
    assert await alive.expire() == []  # its lease still runs
    assert not await db.leases_lapsed(ids, 0.3)  # the periodic sweep takes no lock
    await asyncio.sleep(0.4)
    assert await db.leases_lapsed([], 0.3)
    assert await alive.expire() == []  # back in the queue: attempt 1 of 2
    assert all(job_id in alive for job_id in ids)
    stored = [await db.get_job(job_id) for job_id in ids]
    assert [job.state for job in stored if job is not None] == [JobState.QUEUED, JobState.QUEUED]
    assert [job.job_id for job in await alive.take(4, 4)] == ids
    await db.mark_running_many(ids, datetime.now(UTC))
    await asyncio.sleep(0.4)
    given_up: list[str] = []
    dead.give_up = alive.give_up = _collect(given_up)
    assert await dead.expire() == ids  # started twice: given up
    assert given_up == ids
    await alive.refresh()
    assert alive.positions() == {} and not alive.is_running(ids[0])


async def test_the_log_is_dropped_when_the_queue_stands_empty_and_a_new_process_starts_from_there(
    db: Database,
) -> None:
    first = process(db, "first")
    await first.submit(queued("x", "ann"))
    await first.finished([job.job_id for job in await first.take(1, 1)], None)
    await first.close()  # an end is counted with the next claim, or at once if none follows, or at the stop
    [reset] = await db.queue_events(0)
    assert reset.kind == RESET and reset.seq > 3
    await first.submit(queued("y", "bob"))
    late = process(db, "late")
    await late.refresh()
    assert late.positions() == {"y": 1}


async def test_a_worker_is_told_to_stop_a_job_that_a_cancel_elsewhere_reaches(db: Database) -> None:
    worker = process(db, "gpu")
    stopped: list[str] = []
    worker.watch(stopped.append, lambda measured: None)
    await worker.submit(queued("z", "ann"))
    await worker.take(1, 1)
    worker.stop_notified("z")
    worker.stop_notified("not-mine")
    assert stopped == ["z"]


def _collect(into: list[str]) -> Callable[[str], asyncio.Future[None]]:
    async def give_up(job_id: str) -> None:
        into.append(job_id)

    return give_up  # type: ignore[return-value]


async def _job_row(db: Database, prompt: str) -> str:
    user = await db.get_or_create_user("console", prompt)
    draft = JobDraft(
        owner_id=user.id,
        community_id=None,
        platform="console",
        channel_id="c",
        operation="txt2img",
        parameters={},
        prompt=prompt,
        negative_prompt="",
        seed=1,
        cost=1.0,
    )
    job = await db.create_job(draft, QuotaReservation(datetime.now(UTC).date(), 1, 1.0, 100, 1000.0))
    return job.id


async def test_a_job_whose_worker_died_between_counting_and_writing_its_end_is_queued_again(db: Database) -> None:
    """The end of a batch is counted in the queue at once; its results are written a moment later. A worker that
    dies in between leaves a job running in the database that the queue no longer holds: the core rebuilds it."""
    job_id = await _job_row(db, "orphan")
    dead, alive = process(db, "dead", lease_seconds=0.3), process(db, "alive", lease_seconds=0.3)
    await dead.submit(queued(job_id, "ann"))
    await dead.take(1, 1)
    await db.mark_running_many([job_id], datetime.now(UTC))
    await dead.finished([job_id], None)
    orphans: list[str] = []
    alive.orphaned = _collect(orphans)
    await asyncio.sleep(0.4)
    assert await alive.expire() == [] and orphans == [job_id]
    stored = await db.get_job(job_id)
    assert stored is not None and stored.state is JobState.QUEUED and stored.attempts == 1
    done = await _job_row(db, "done")
    await alive.submit(queued(done, "bob"))
    await alive.take(1, 1)
    await db.mark_running_many([done], datetime.now(UTC))
    await db.mark_cancelled(done, datetime.now(UTC))  # an end written drops the lease with it; its worker dies
    assert not await db.leases_lapsed([done], 0.3)
    await asyncio.sleep(0.4)
    assert await db.leases_lapsed([done], 0.3) and not await db.leases_lapsed([], 0.3)
    orphans.clear()
    assert await alive.expire() == [] and orphans == [] and not alive.is_running(done)


async def test_every_change_is_announced_to_the_listening_processes(db: Database, database_url: str) -> None:
    heard: list[str] = []
    connected = asyncio.Event()
    listener = Listener(database_url, {QUEUE_CHANNEL: heard.append}, on_connect=connected.set)
    listener.start()
    try:
        await asyncio.wait_for(connected.wait(), 10)
        queue, other = process(db, "front"), process(db, "other")
        await queue.submit(queued("n1", "ann"))
        await other.refresh()
        assert [job.job_id for job in await other.take(1, 1)] == ["n1"]
        for _ in range(200):
            if len(heard) >= 2:
                break
            await asyncio.sleep(0.01)
        assert [int(seq) for seq in heard] == sorted(int(seq) for seq in heard) and len(heard) == 2
    finally:
        await listener.close()


async def test_the_end_of_a_batch_rides_with_the_next_claim_or_is_counted_alone(db: Database) -> None:
    worker, watcher = process(db, "gpu"), process(db, "watcher")
    for job_id, user in (("e1", "ann"), ("e2", "bob")):
        await worker.submit(queued(job_id, user))
    await worker.finished([job.job_id for job in await worker.take(1, 1)], None)
    await worker.take(1, 1)
    kinds = [(event.kind, event.data.get("jobs")) for event in await db.queue_events(0)][-2:]
    assert kinds == [("finish", ["e1"]), ("take", ["e2"])]
    await worker.finished(["e2"], None)
    for _ in range(100):
        await watcher.refresh()
        if not watcher.is_running("e2"):
            break
        await asyncio.sleep(0.01)
    assert not watcher.is_running("e2") and [event.kind for event in await db.queue_events(0)] == ["reset"]


async def test_etas_share_the_work_ahead_among_the_workers_that_serve_the_queue(db: Database) -> None:
    front, first, second = process(db, "front"), process(db, "gpu1"), process(db, "gpu2")
    for index in range(6):
        await front.submit(queued(f"w{index}", f"user{index}"))
    for worker in (first, second):  # what a listener or the poll does in a process
        await worker.refresh()
    await first.take(1, 1)
    await front.refresh()
    alone = front.eta("w5", 1.0)
    assert front.parallelism == 1
    await second.take(1, 1)
    await front.refresh()
    assert front.parallelism == 2
    worker = Worker(lambda *_: [], front, seconds_per_cost=1.0)
    job = front.queued("w5")
    assert job is not None and worker.eta("w5") == pytest.approx(front.eta("w5", 1.0) / 2 + job.cost, abs=0.01)
    assert front.eta("w5", 1.0) <= alone


async def test_a_read_by_a_process_that_is_behind_does_not_age_its_queue_apart_from_the_others(db: Database) -> None:
    """Places are read at the time of the last change a process knows: read at its own later time, aging would
    move jobs in its copy that the others had not moved when they decided, and its copy would no longer agree."""
    aging = partial(scheduler, communities=False, max_wait=0.4)
    worker, watcher = process(db, "gpu", aging), process(db, "watcher", aging)
    for job_id, user in (("a1", "ann"), ("a2", "ann"), ("b1", "bob")):
        await worker.submit(queued(job_id, user))
    await watcher.refresh()
    first = await worker.take(1, 1)
    await worker.finished([job.job_id for job in first], None)
    second = await worker.take(1, 1)
    assert [job.job_id for job in first + second] == ["a1", "b1"]
    await asyncio.sleep(0.5)  # past max_wait: a2 and b1 would be aged at this host's time, a2 first
    assert watcher.positions() == {"a1": 1, "b1": 2, "a2": 3}
    await watcher.refresh()
    assert watcher.positions() == {"a2": 1} and watcher.is_running("b1")
