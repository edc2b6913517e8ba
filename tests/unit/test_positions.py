"""Telling waiting users their places: when it changed meaningfully, within the budgets, at a cost that does not
grow with the queue."""

from __future__ import annotations

from typing import Any

from bots.config import QueueSettings
from bots.core.positions import Positions


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Queue:
    """The worker as `Positions` sees it: a queue in order, served at `seconds` per job; counts the look-ups."""

    def __init__(self, jobs: list[str], clock: Clock, seconds: float = 1.0) -> None:
        self.order = list(jobs)
        self.clock = clock
        self.seconds = seconds
        self.lookups = 0

    def position(self, job_id: str) -> int | None:
        self.lookups += 1
        return self.order.index(job_id) + 1 if job_id in self.order else None

    def eta(self, job_id: str) -> float | None:
        place = self.position(job_id)
        return None if place is None else place * self.seconds

    def head(self, count: int) -> list[str]:
        return self.order[:count]

    def start(self, count: int) -> None:
        del self.order[:count]


def positions_for(queue: Queue, clock: Clock, **settings: Any) -> Positions:
    return Positions(queue, None, QueueSettings(**settings), clock=clock)  # type: ignore[arg-type]


def test_a_place_is_told_when_it_halves_and_not_before() -> None:
    clock = Clock()
    queue = Queue([f"j{n}" for n in range(10)], clock)
    positions = positions_for(queue, clock, position_interval_seconds=0, position_chat_interval_seconds=0)
    positions.track("j9", ("telegram", "1"), told=10, eta_seconds=10.0)
    queue.start(4)
    positions.moved(4)  # j9 is not among the 8 behind the batch
    clock.now = 5.0  # its check, half its wait later
    assert positions.due() == []  # 10 to 6: not worth a message
    queue.start(1)
    clock.now = 8.0
    assert positions.due() == [("j9", 5, 5.0)]


def test_the_jobs_right_behind_a_batch_are_checked_at_once() -> None:
    clock = Clock()
    queue = Queue(["a", "b", "c"], clock, seconds=100.0)
    positions = positions_for(queue, clock, position_chat_interval_seconds=0)
    positions.track("b", ("telegram", "1"), told=2, eta_seconds=200.0)
    positions.track("c", ("telegram", "2"), told=3, eta_seconds=300.0)
    queue.start(1)
    positions.moved(1)
    assert positions.due() == [("b", 1, 100.0)]  # c went from 3 to 2: not half


def test_users_are_told_within_the_global_and_the_per_chat_budget() -> None:
    clock = Clock()
    queue = Queue([f"j{n}" for n in range(20)], clock)
    positions = positions_for(
        queue, clock, position_updates_per_second=2, position_chat_interval_seconds=10, position_interval_seconds=0
    )
    for n in range(20):
        positions.track(f"j{n}", ("telegram", str(n % 10)), told=None, eta_seconds=None)
    told = [job_id for job_id, _, _ in positions.due()]
    assert len(told) == 2  # the global budget
    clock.now = 1.0
    told += [job_id for job_id, _, _ in positions.due()]
    assert len(told) == 4
    for second in (5.0, 6.0, 7.0):  # two a second at most, however long the budget was left unused
        clock.now = second
        told += [job_id for job_id, _, _ in positions.due()]
    assert len(told) == 10 and len({int(job_id[1:]) % 10 for job_id in told}) == 10  # one each in 10 chats
    clock.now = 9.0
    assert positions.due() == []  # every chat was told within 10 s
    clock.now = 12.0
    assert len(positions.due()) == 2


def test_a_drain_costs_a_few_look_ups_and_messages_per_job_however_long_the_queue() -> None:
    """1,000 queued in 200 chats, four leaving every 0.2 s: telling everyone at every batch would be n^2/8 messages
    (125,000); here each job costs a handful of look-ups and at most a few messages."""
    clock = Clock()
    jobs = [f"j{n}" for n in range(1000)]
    queue = Queue(jobs, clock, seconds=0.05)
    positions = positions_for(queue, clock)
    for place, job_id in enumerate(jobs, start=1):
        positions.track(job_id, ("telegram", str(place % 200)), told=place, eta_seconds=place * 0.05)
    told: dict[str, int] = {}
    while queue.order:
        queue.start(4)
        positions.moved(4)
        clock.now += 0.2
        for job_id, _, _ in positions.due():
            told[job_id] = told.get(job_id, 0) + 1
    assert max(told.values()) <= 3 and sum(told.values()) <= 2 * len(jobs)
    assert queue.lookups <= 12 * len(jobs)
