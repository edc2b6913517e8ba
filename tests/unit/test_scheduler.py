from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generation.errors import QueueFull, QueueRefused, UserQueueFull
from generation.fair_queue_records import QueuedJob
from generation.scheduler import DuplicateJob, FairScheduler
from generation.sums import SumTree

USERS = ("ann", "bob", "cy", "dee", "eve")
COMMUNITIES = (None, "red", "blue")
BATCH_KEYS = (None, "a", "b")
PROPERTY = settings(max_examples=80, deadline=None)

# A batch on the model clock: when it started and what it held.
Batch = tuple[float, list[QueuedJob]]


def job(
    job_id: str,
    user: str | None = None,
    *,
    community: str | None = None,
    cost: float = 1.0,
    weight: float = 1.0,
    batch_key: Hashable | None = None,
    images: int = 1,
    at: float = 0.0,
) -> QueuedJob:
    return QueuedJob(
        job_id=job_id,
        user=user or job_id,
        community=community,
        cost=cost,
        weight=weight,
        batch_key=batch_key,
        images=images,
        submitted_at=at,
    )


def make(**options: Any) -> FairScheduler:
    return FairScheduler(**({"max_pending_per_user": 1000, "max_queue": 100_000, "max_wait": math.inf} | options))


def submit_all(scheduler: FairScheduler, jobs: Sequence[QueuedJob]) -> None:
    for queued in jobs:
        scheduler.submit(queued, queued.submitted_at)


def drain(scheduler: FairScheduler, now: float = 0.0) -> list[str]:
    """Take every queued job, one at a time and finishing each at once, without moving the clock."""
    order = []
    while len(scheduler):
        for taken in scheduler.next_batch(now):
            order.append(taken.job_id)
            scheduler.finished(taken.job_id, now)
    return order


def simulate(scheduler: FairScheduler, arrivals: Sequence[QueuedJob], max_jobs: int = 1) -> list[Batch]:
    """Run arrivals on a model clock where a batch takes the sum of its costs in seconds.

    Jobs that arrive while a batch runs are submitted before it finishes, as the chat layer would.
    """
    waiting = sorted(arrivals, key=lambda queued: queued.submitted_at)
    batches: list[Batch] = []
    now = 0.0
    index = 0
    while True:
        while index < len(waiting) and waiting[index].submitted_at <= now:
            scheduler.submit(waiting[index], now)
            index += 1
        if not len(scheduler):
            if index == len(waiting):
                return batches
            now = waiting[index].submitted_at
            continue
        batch = scheduler.next_batch(now, max_jobs)
        batches.append((now, batch))
        end = now + sum(taken.cost for taken in batch)
        while index < len(waiting) and waiting[index].submitted_at < end:
            scheduler.submit(waiting[index], waiting[index].submitted_at)
            index += 1
        for taken in batch:
            scheduler.finished(taken.job_id, end)
        now = end


def starts(batches: Sequence[Batch]) -> dict[str, float]:
    return {taken.job_id: at for at, batch in batches for taken in batch}


# --- values and options ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cost", 0.0),
        ("cost", -1.0),
        ("cost", math.nan),
        ("cost", math.inf),
        ("weight", 0.0),
        ("weight", -2.0),
        ("weight", math.nan),
        ("weight", True),
        ("submitted_at", math.nan),
    ],
)
def test_a_job_refuses_bad_values_naming_them(field: str, value: float) -> None:
    values: dict[str, Any] = {"job_id": "j", "user": "u", "community": None, "cost": 1.0, "submitted_at": 0.0}
    with pytest.raises(ValueError, match=field):
        QueuedJob(**(values | {field: value}))


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"max_pending_per_user": 0}, "max_pending_per_user"),
        ({"max_queue": 0}, "max_queue"),
        ({"max_queue": 2.5}, "max_queue"),
        ({"max_wait": 0.0}, "max_wait"),
        ({"max_wait": math.nan}, "max_wait"),
        ({"community_weights": {"red": 2.0}}, "communities is off"),
        ({"communities": True, "community_weights": {"red": 0.0}}, "red"),
    ],
)
def test_the_scheduler_refuses_bad_options_naming_them(options: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        make(**options)


@pytest.mark.parametrize("max_jobs", [0, -1])
def test_a_batch_takes_at_least_one_job(max_jobs: int) -> None:
    with pytest.raises(ValueError, match="max_jobs"):
        make().next_batch(0.0, max_jobs)


# --- caps, duplicates, bookkeeping -----------------------------------------------------------------------------


# (per-user cap, queue cap, owners of the jobs submitted in turn, the refusal of the next one by "ann", its limit)
CAPS: list[tuple[int, int, list[str], type[QueueRefused], int]] = [
    (1, 10, ["ann"], UserQueueFull, 1),
    (3, 10, ["ann", "bob", "ann", "ann"], UserQueueFull, 3),
    (3, 2, ["bob", "cy"], QueueFull, 2),
    (5, 4, ["ann", "bob", "bob", "cy"], QueueFull, 4),
    (2, 2, ["ann", "ann"], UserQueueFull, 2),  # both full: the user's own cap is the one they can act on
]


@pytest.mark.parametrize(("per_user", "queue", "owners", "refusal", "limit"), CAPS)
def test_caps_refuse_with_the_numbers(
    per_user: int, queue: int, owners: list[str], refusal: type[QueueRefused], limit: int
) -> None:
    scheduler = make(max_pending_per_user=per_user, max_queue=queue)
    submit_all(scheduler, [job(f"j{index}", owner) for index, owner in enumerate(owners)])
    with pytest.raises(refusal):
        scheduler.check_capacity("ann")
    with pytest.raises(refusal) as raised:
        scheduler.submit(job("late", "ann"), 0.0)
    assert raised.value.limit == limit and str(limit) in str(raised.value)
    assert raised.value.code in {"user_queue_full", "queue_full"}
    assert "late" not in scheduler and len(scheduler) == len(owners)


def test_a_started_or_cancelled_job_frees_its_place() -> None:
    scheduler = make(max_pending_per_user=2, max_queue=2)
    submit_all(scheduler, [job("a1", "ann"), job("a2", "ann")])
    with pytest.raises(UserQueueFull):
        scheduler.submit(job("a3", "ann"), 0.0)
    assert [taken.job_id for taken in scheduler.next_batch(0.0)] == ["a1"]
    scheduler.submit(job("a3", "ann"), 0.0)
    assert scheduler.cancel("a2")
    scheduler.submit(job("a4", "ann"), 0.0)
    assert drain(scheduler) == ["a3", "a4"]


def test_a_duplicate_id_is_refused_while_queued_or_running() -> None:
    scheduler = make()
    scheduler.submit(job("x", "ann"), 0.0)
    with pytest.raises(DuplicateJob, match="'x'"):
        scheduler.submit(job("x", "bob"), 0.0)
    scheduler.next_batch(0.0)
    with pytest.raises(DuplicateJob):
        scheduler.submit(job("x", "ann"), 0.0)
    scheduler.finished("x", 0.0)
    assert scheduler.submit(job("x", "ann"), 0.0) == 1


def test_cancel_says_whether_the_job_was_queued() -> None:
    scheduler = make()
    submit_all(scheduler, [job("a"), job("b")])
    scheduler.next_batch(0.0)
    assert not scheduler.cancel("a")  # running: the engine stops it
    assert not scheduler.cancel("nobody")
    assert scheduler.cancel("b")
    assert not scheduler.cancel("b")
    assert len(scheduler) == 0 and scheduler.next_batch(0.0) == []


def test_only_running_jobs_can_finish() -> None:
    scheduler = make()
    scheduler.submit(job("a"), 0.0)
    with pytest.raises(KeyError):
        scheduler.finished("a", 0.0)
    scheduler.next_batch(0.0)
    scheduler.finished("a", 0.0)
    with pytest.raises(KeyError):
        scheduler.finished("a", 0.0)


# --- fair order --------------------------------------------------------------------------------------------------


# (jobs submitted in this order, all at time 0, then the order they run in)
ORDERS: list[tuple[list[QueuedJob], list[str]]] = [
    ([job("a1", "a"), job("a2", "a"), job("a3", "a")], ["a1", "a2", "a3"]),
    (
        [job("a1", "a"), job("a2", "a"), job("a3", "a"), job("b1", "b"), job("b2", "b"), job("b3", "b")],
        ["a1", "b1", "a2", "b2", "a3", "b3"],
    ),
    (
        [job(f"a{i}", "a", weight=2.0) for i in range(1, 5)] + [job("b1", "b"), job("b2", "b")],
        ["a1", "b1", "a2", "a3", "b2", "a4"],
    ),
    (
        [job("a1", "a", cost=3.0), job("a2", "a", cost=3.0), job("b1", "b"), job("b2", "b"), job("b3", "b")],
        ["a1", "b1", "b2", "b3", "a2"],
    ),
    (
        [job("a1", "a", cost=2.0), job("b1", "b", cost=2.0, weight=0.5), job("a2", "a", cost=2.0)],
        ["a1", "b1", "a2"],
    ),
]


@pytest.mark.parametrize(("jobs", "expected"), ORDERS)
def test_jobs_run_in_weighted_fair_order(jobs: list[QueuedJob], expected: list[str]) -> None:
    scheduler = make()
    submit_all(scheduler, jobs)
    assert drain(scheduler) == expected


# Each level of the fair order: users in one group, or communities of one user each.
LEVELS = {"users": (False, lambda name: None), "communities": (True, lambda name: name)}


@pytest.mark.parametrize("level", LEVELS)
def test_an_idle_user_or_community_banks_no_credit(level: str) -> None:
    communities, place = LEVELS[level]
    scheduler = make(communities=communities)
    submit_all(scheduler, [job(f"a{i}", "a", community=place("a")) for i in range(1, 7)])
    taken = [scheduler.next_batch(0.0)[0].job_id for _ in range(4)]
    submit_all(scheduler, [job(f"b{i}", "b", community=place("b")) for i in range(1, 5)])
    # b was idle while a ran four jobs: it starts level with a, not four jobs ahead.
    assert taken + drain(scheduler) == ["a1", "a2", "a3", "a4", "b1", "a5", "b2", "a6", "b3", "b4"]


@pytest.mark.parametrize("level", LEVELS)
def test_after_an_idle_spell_everyone_starts_level(level: str) -> None:
    communities, place = LEVELS[level]
    scheduler = make(communities=communities)
    submit_all(scheduler, [job("a1", "a", community=place("a"), cost=5.0)])
    assert drain(scheduler) == ["a1"]
    submit_all(scheduler, [job("a2", "a", community=place("a")), job("b1", "b", community=place("b"))])
    assert drain(scheduler) == ["a2", "b1"]


FLOOD_PLACES = {
    "users": lambda index: None,
    "each light user in a community of their own": lambda index: f"light{index}",
    "light users in the heavy user's community": lambda index: "heavy",
}


@pytest.mark.parametrize("place", FLOOD_PLACES)
def test_a_flood_cannot_hold_back_newcomers(place: str) -> None:
    communities = place != "users"
    community = "heavy" if communities else None
    scheduler = make(communities=communities)
    submit_all(scheduler, [job(f"h{i}", "heavy", community=community, cost=4.0) for i in range(50)])
    assert [taken.job_id for taken in scheduler.next_batch(0.0)] == ["h0"]
    lights = [job(f"l{i}", f"light{i}", community=FLOOD_PLACES[place](i), cost=4.0, at=1.0) for i in range(5)]
    submit_all(scheduler, lights)
    scheduler.finished("h0", 4.0)
    order = drain(scheduler, 4.0)
    assert order[:6] == ["l0", "l1", "l2", "l3", "l4", "h1"]


def test_a_flooding_community_cannot_starve_a_small_one() -> None:
    scheduler = make(communities=True)
    submit_all(scheduler, [job(f"c{u}-{i}", f"crowd{u}", community="big") for i in range(5) for u in range(100)])
    submit_all(scheduler, [job(f"solo-{i}", "solo", community="small") for i in range(5)])
    order = drain(scheduler)
    # The small community gets every other job while both are waiting.
    assert [order.index(f"solo-{i}") for i in range(5)] == [1, 3, 5, 7, 9]


@pytest.mark.parametrize(("big", "small", "share"), [(1.0, 1.0, 1 / 2), (1.0, 3.0, 3 / 4), (3.0, 1.0, 1 / 4)])
def test_communities_share_by_their_weights(big: float, small: float, share: float) -> None:
    scheduler = make(communities=True, community_weights={"big": big, "small": small})
    submit_all(scheduler, [job(f"c{u}-{i}", f"crowd{u}", community="big") for i in range(10) for u in range(20)])
    submit_all(scheduler, [job(f"solo-{i}", "solo", community="small") for i in range(40)])
    first = drain(scheduler)[:40]
    assert sum(job_id.startswith("solo") for job_id in first) == pytest.approx(40 * share, abs=1)


def test_direct_messages_share_one_group() -> None:
    scheduler = make(communities=True)
    submit_all(scheduler, [job(f"dm{u}-{i}", f"dm{u}", community=None) for i in range(4) for u in range(3)])
    submit_all(scheduler, [job(f"red-{i}", "red-user", community="red") for i in range(6)])
    first = drain(scheduler)[:12]
    assert sum(job_id.startswith("red") for job_id in first) == 6


# --- cancellation -------------------------------------------------------------------------------------------------


def test_cancel_gives_the_users_charge_back() -> None:
    scheduler = make()
    submit_all(scheduler, [job("a1", "a", cost=3.0), job("a2", "a", cost=3.0), job("b1", "b"), job("b2", "b")])
    assert scheduler.cancel("a1")
    # Without the refund a2 would wait behind both of b's jobs.
    assert drain(scheduler) == ["a2", "b1", "b2"]


def test_repeated_submit_and_cancel_cannot_push_a_community_back() -> None:
    scheduler = make(communities=True)
    submit_all(scheduler, [job(f"blue{i}", "b", community="blue") for i in range(3)])
    for index in range(100):
        scheduler.submit(job(f"troll{index}", "troll", community="red"), 0.0)
        assert scheduler.cancel(f"troll{index}")
    submit_all(scheduler, [job("red1", "r", community="red")])
    assert drain(scheduler)[:2] == ["blue0", "red1"]


# --- aging --------------------------------------------------------------------------------------------------------


def test_jobs_past_max_wait_run_first_oldest_first() -> None:
    scheduler = make(max_wait=10.0)
    submit_all(scheduler, [job("old1", "a", weight=0.01, at=0.0), job("old2", "a", weight=0.01, at=1.0)])
    submit_all(scheduler, [job(f"new{i}", f"n{i}", at=5.0) for i in range(3)])
    assert scheduler.positions(5.0) == {"old1": 1, "new0": 2, "new1": 3, "new2": 4, "old2": 5}
    assert scheduler.positions(10.5) == {"old1": 1, "new0": 2, "new1": 3, "new2": 4, "old2": 5}
    assert scheduler.position("old2", 11.5) == 2
    assert drain(scheduler, 11.5) == ["old1", "old2", "new0", "new1", "new2"]


def test_an_aged_job_keeps_its_place_once_aged() -> None:
    scheduler = make(max_wait=10.0)
    submit_all(scheduler, [job("a", at=0.0), job("b", at=1.0)])
    assert scheduler.position("b", 20.0) == 2
    scheduler.submit(job("c", at=3.0), 20.0)  # re-queued with its old time: aged at once, behind older jobs
    assert scheduler.positions(20.0) == {"a": 1, "b": 2, "c": 3}
    assert scheduler.cancel("a") and scheduler.positions(20.0) == {"b": 1, "c": 2}


STREAM_USERS = 4


def stream_with_light_jobs(weight: float, light_at: Sequence[float]) -> list[QueuedJob]:
    """Users of weight 1 keep the GPU exactly busy; a low-weight user submits now and then."""
    stream = [job(f"s{t}", f"s{t % STREAM_USERS}", at=float(t)) for t in range(300)]
    return stream + [job(f"light{index}", "light", weight=weight, at=at) for index, at in enumerate(light_at)]


@pytest.mark.parametrize(("weight", "max_wait"), [(0.01, 10.0), (0.001, 10.0), (0.01, 30.0), (0.001, 60.0)])
def test_aging_bounds_every_wait_by_max_wait_and_one_job(weight: float, max_wait: float) -> None:
    arrivals = stream_with_light_jobs(weight, [0.5, 100.5, 200.5])
    started = starts(simulate(make(max_wait=max_wait), arrivals))
    assert all(started[queued.job_id] - queued.submitted_at <= max_wait + 1.0 for queued in arrivals)


def test_without_aging_a_low_weight_user_waits_far_longer() -> None:
    arrivals = stream_with_light_jobs(0.01, [0.5, 100.5, 200.5])
    started = starts(simulate(make(), arrivals))
    assert started["light1"] - 100.5 > 60.0


# --- positions and ETAs -------------------------------------------------------------------------------------------


def test_eta_counts_what_runs_and_the_work_ahead() -> None:
    scheduler = make()
    submit_all(scheduler, [job("run", "a", cost=4.0), job("b1", "b", cost=2.0), job("c1", "c", cost=3.0)])
    scheduler.next_batch(10.0)
    assert scheduler.etas(11.0, 0.5) == {"b1": 1.0, "c1": 2.0}
    assert scheduler.eta("c1", 11.0, 0.5) == 2.0
    assert scheduler.eta("c1", 13.0, 0.5) == 1.0  # the running job is overdue: it counts as finishing now
    scheduler.finished("run", 13.0)
    assert scheduler.etas(13.0, 0.5) == {"b1": 0.0, "c1": 1.0}


def test_a_batch_counts_once_however_many_jobs_it_holds() -> None:
    scheduler = make()
    submit_all(scheduler, [job(f"k{i}", f"u{i}", batch_key="k", images=2 - min(i, 1)) for i in range(3)])
    submit_all(scheduler, [job("next", "v")])
    assert len(scheduler.next_batch(0.0, max_jobs=3)) == 3
    assert scheduler.eta("next", 1.0, 1.0) == 2.0


def test_position_and_eta_of_an_unknown_job_raise_key_error() -> None:
    scheduler = make()
    with pytest.raises(KeyError):
        scheduler.position("x", 0.0)
    with pytest.raises(KeyError):
        scheduler.eta("x", 0.0, 1.0)


# --- batching -----------------------------------------------------------------------------------------------------


# (jobs of distinct users in fair order as (batch key, cost, images), max_jobs, max_cost, max_images, how many it takes)
BATCHES: list[tuple[list[tuple[Hashable | None, float, int]], int, float | None, int | None, int]] = [
    ([("k", 1, 1), ("k", 1, 1), ("k", 1, 1)], 4, None, None, 2),  # at most twice the head's images
    ([("k", 2, 2), ("k", 1, 1), ("k", 1, 1), ("k", 1, 1)], 4, None, None, 3),
    ([("k", 2, 2), ("k", 1, 1), ("k", 1, 1)], 4, None, 3, 2),
    ([("k", 2, 2), ("k", 1, 1), ("k", 1, 1)], 2, None, None, 2),
    ([("k", 4, 4), ("k", 1, 1)], 4, None, 4, 1),
    ([("k", 1, 1), ("j", 1, 1), ("k", 1, 1)], 4, None, None, 1),  # the compatible third job is not pulled forward
    ([(None, 1, 1), (None, 1, 1)], 4, None, None, 1),
    ([("k", 2, 2), ("k", 2, 1), ("k", 2, 1)], 4, 5.0, None, 2),
    ([("k", 8, 1), ("k", 1, 1)], 4, 5.0, None, 1),  # the head always runs
]


@pytest.mark.parametrize(("specs", "max_jobs", "max_cost", "max_images", "taken"), BATCHES)
def test_a_batch_is_the_compatible_head_of_the_order(
    specs: list[tuple[Hashable | None, float, int]],
    max_jobs: int,
    max_cost: float | None,
    max_images: int | None,
    taken: int,
) -> None:
    scheduler = make()
    jobs = [job(f"j{i}", cost=cost, batch_key=key, images=images) for i, (key, cost, images) in enumerate(specs)]
    submit_all(scheduler, jobs)
    batch = scheduler.next_batch(0.0, max_jobs, max_cost, max_images)
    assert [queued.job_id for queued in batch] == [f"j{i}" for i in range(taken)]
    assert drain(scheduler) == [f"j{i}" for i in range(taken, len(specs))]


def batches(scheduler: FairScheduler, now: float) -> list[list[str]]:
    """Take everything as the worker would (up to 4 images a call), finishing each call at once."""
    taken = []
    while len(scheduler):
        batch = scheduler.next_batch(now, max_jobs=4, max_images=4)
        taken.append([queued.job_id for queued in batch])
        for queued in batch:
            scheduler.finished(queued.job_id, now)
    return taken


def batches_taken(scheduler: FairScheduler, now: float, count: int) -> list[list[str]]:
    """Take `count` calls as the worker would, leaving them running."""
    return [[queued.job_id for queued in scheduler.next_batch(now, 4, max_images=4)] for _ in range(count)]


@pytest.mark.parametrize("level", LEVELS)
def test_a_light_user_is_not_batched_with_a_backlog(level: str) -> None:
    """The burst of issue 13: A sends 6 prompts, B one while A's first runs; B's call holds B's job alone."""
    communities, place = LEVELS[level]
    scheduler = make(communities=communities)
    submit_all(scheduler, [job(f"a{i}", "a", community=place("a"), batch_key="k") for i in range(6)])
    assert batches_taken(scheduler, 0.0, 1) == [["a0"]]  # a user's own backlog never fills a batch either
    submit_all(scheduler, [job("b", "b", community=place("b"), batch_key="k", at=0.5)])
    scheduler.finished("a0", 1.0)
    assert batches(scheduler, 1.0) == [["b"], ["a1"], ["a2"], ["a3"], ["a4"], ["a5"]]


def test_users_level_at_the_head_share_calls_round_by_round() -> None:
    scheduler = make()
    submit_all(scheduler, [job(f"{user}{i}", user, batch_key="k") for i in range(2) for user in "abcd"])
    assert batches(scheduler, 0.0) == [["a0", "b0"], ["c0", "d0"], ["a1", "b1"], ["c1", "d1"]]


def test_a_newcomer_runs_alone_and_the_level_users_share_again() -> None:
    scheduler = make()
    submit_all(scheduler, [job(f"{user}{i}", user, batch_key="k") for i in range(3) for user in "ac"])
    assert batches_taken(scheduler, 0.0, 1) == [["a0", "c0"]]
    submit_all(scheduler, [job("b0", "b", batch_key="k", at=0.5)])  # level with a0 and c0, ahead of a1 and c1
    scheduler.finished("a0", 1.0)
    scheduler.finished("c0", 1.0)
    assert batches(scheduler, 1.0) == [["b0"], ["a1", "c1"], ["a2", "c2"]]


@pytest.mark.parametrize(("second", "taken"), [("red", [["x"], ["y"]]), ("blue", [["x", "y"]])])
def test_with_communities_only_jobs_level_across_communities_share(second: str, taken: list[list[str]]) -> None:
    """Two users of one community hold consecutive slots: a newcomer from elsewhere would go between them."""
    scheduler = make(communities=True)
    submit_all(scheduler, [job("x", community="red", batch_key="k"), job("y", community=second, batch_key="k")])
    assert batches(scheduler, 0.0) == taken


def test_aged_jobs_share_a_call_but_never_two_of_one_user() -> None:
    scheduler = make(max_wait=10.0)
    submit_all(scheduler, [job("old1", "a", batch_key="k"), job("old2", "a", batch_key="k", at=1.0)])
    submit_all(scheduler, [job("old3", "b", batch_key="k", at=2.0)])
    assert batches(scheduler, 20.0) == [["old1"], ["old2", "old3"]]


# --- properties ---------------------------------------------------------------------------------------------------


@st.composite
def jobs(draw: st.DrawFn, max_size: int = 30, times: int = 30) -> list[QueuedJob]:
    """Jobs with distinct ids; a user keeps one tier weight; costs and weights are exact in binary."""
    weights = {user: draw(st.sampled_from((1.0, 2.0, 4.0, 0.5))) for user in USERS}
    made = []
    for index in range(draw(st.integers(1, max_size))):
        user = draw(st.sampled_from(USERS))
        made.append(
            job(
                f"j{index}",
                user,
                community=draw(st.sampled_from(COMMUNITIES)),
                cost=float(draw(st.integers(1, 4))),
                weight=weights[user],
                batch_key=draw(st.sampled_from(BATCH_KEYS)),
                images=draw(st.sampled_from((1, 1, 2))),
                at=float(draw(st.integers(0, times))),
            )
        )
    return made


@st.composite
def batchable(draw: st.DrawFn, max_size: int, times: int) -> list[QueuedJob]:
    """Jobs that can often share a call: mostly one batch key, few users, costs and weights."""
    made = []
    for index in range(draw(st.integers(1, max_size))):
        user = draw(st.sampled_from(USERS[:3]))
        made.append(
            job(
                f"j{index}",
                user,
                community=draw(st.sampled_from(COMMUNITIES[:2])),
                cost=draw(st.sampled_from((1.0, 1.0, 2.0))),
                weight=2.0 if user == USERS[2] else 1.0,
                batch_key=draw(st.sampled_from(("k", "k", "k", None))),
                images=draw(st.sampled_from((1, 1, 2))),
                at=float(draw(st.integers(0, times))),
            )
        )
    return made


OPERATIONS = st.one_of(
    st.tuples(st.just("submit"), st.sampled_from(USERS), st.sampled_from(COMMUNITIES), st.integers(1, 4)),
    st.tuples(st.just("next"), st.integers(1, 3)),
    st.tuples(st.just("finish")),
    st.tuples(st.just("cancel"), st.integers(0, 60)),
    st.tuples(st.just("wait"), st.integers(0, 8)),
)


@PROPERTY
@given(operations=st.lists(OPERATIONS, max_size=60), communities=st.booleans())
def test_no_job_is_lost_or_run_twice(operations: list[tuple[Any, ...]], communities: bool) -> None:
    scheduler = make(communities=communities, max_pending_per_user=4, max_queue=12, max_wait=10.0)
    now = 0.0
    submitted: list[str] = []
    costs: dict[str, float] = {}
    queued: dict[str, str] = {}  # job id -> user
    accepted: set[str] = set()
    running: set[str] = set()
    cancelled: set[str] = set()
    taken: list[str] = []
    for operation in operations:
        match operation:
            case ("submit", user, community, cost):
                new = job(f"j{len(submitted)}", user, community=community, cost=float(cost), batch_key="k", at=now)
                submitted.append(new.job_id)
                costs[new.job_id] = new.cost
                if sum(owner == user for owner in queued.values()) >= 4:
                    with pytest.raises(UserQueueFull):
                        scheduler.submit(new, now)
                elif len(queued) >= 12:
                    with pytest.raises(QueueFull):
                        scheduler.submit(new, now)
                else:
                    scheduler.submit(new, now)
                    queued[new.job_id] = user
                    accepted.add(new.job_id)
            case ("next", max_jobs):
                for queued_job in scheduler.next_batch(now, max_jobs):
                    assert queued.pop(queued_job.job_id)
                    running.add(queued_job.job_id)
                    taken.append(queued_job.job_id)
            case ("finish",):
                for job_id in running:
                    scheduler.finished(job_id, now)
                running.clear()
            case ("cancel", index) if submitted:
                job_id = submitted[index % len(submitted)]
                assert scheduler.cancel(job_id) == (job_id in queued)
                if queued.pop(job_id, None):
                    cancelled.add(job_id)
            case ("wait", seconds):
                now += seconds
        assert len(scheduler) == len(queued)
        places = scheduler.positions(now)
        assert set(places) == set(queued)
        etas = scheduler.etas(now, 1.0)
        order = sorted(places, key=places.__getitem__)
        for before, after in itertools.pairwise(order):  # the sum trees agree with the order after every change
            assert etas[after] - etas[before] == pytest.approx(costs[before])
    taken += drain(scheduler, now)
    assert len(taken) == len(set(taken))
    assert set(taken) == accepted - cancelled


@PROPERTY
@given(
    workload=jobs(),
    started=st.integers(0, 3),
    now=st.integers(0, 40),
    seconds_per_cost=st.sampled_from((0.25, 1.0, 3.0)),
    communities=st.booleans(),
)
def test_positions_and_etas_match_the_order_jobs_run_in(
    workload: list[QueuedJob], started: int, now: int, seconds_per_cost: float, communities: bool
) -> None:
    scheduler = make(communities=communities, max_wait=12.0)
    for queued in workload:
        assert scheduler.submit(queued, queued.submitted_at) == scheduler.position(queued.job_id, queued.submitted_at)
    at = float(max(now, max(queued.submitted_at for queued in workload)))
    running_cost = sum(queued.cost for queued in scheduler.next_batch(at, started)) if started else 0.0
    later = at + 1.5
    positions = scheduler.positions(later)
    etas = scheduler.etas(later, seconds_per_cost)
    for job_id, place in positions.items():
        assert scheduler.position(job_id, later) == place
        assert scheduler.eta(job_id, later, seconds_per_cost) == etas[job_id]
    order = drain(scheduler, later)
    assert positions == {job_id: place for place, job_id in enumerate(order, start=1)}
    costs = {queued.job_id: queued.cost for queued in workload}
    ahead = max(0.0, running_cost * seconds_per_cost - 1.5)
    for job_id in order:
        assert etas[job_id] == pytest.approx(ahead)
        ahead += costs[job_id] * seconds_per_cost


@PROPERTY
@given(
    before=jobs(max_size=10),
    after=jobs(max_size=15),
    taken=st.integers(0, 10),
    cancelled=st.integers(0, 100),
)
def test_a_cancelled_job_is_as_if_never_submitted(
    before: list[QueuedJob], after: list[QueuedJob], taken: int, cancelled: int
) -> None:
    after = [
        job(f"late{index}", queued.user, cost=queued.cost, weight=queued.weight) for index, queued in enumerate(after)
    ]
    victim = after[cancelled % len(after)].job_id

    def run(skip: str | None) -> list[str]:
        scheduler = make()
        submit_all(scheduler, before)
        for _ in range(taken):
            for queued in scheduler.next_batch(0.0):
                scheduler.finished(queued.job_id, 0.0)
        submit_all(scheduler, [queued for queued in after if queued.job_id != skip])
        if skip is None:
            assert scheduler.cancel(victim)
        return drain(scheduler)

    assert run(skip=None) == run(skip=victim)


@PROPERTY
@given(workload=jobs(max_size=40), cancelled=st.integers(0, 100), taken=st.integers(0, 5))
def test_cancel_moves_nobody_else_back(workload: list[QueuedJob], cancelled: int, taken: int) -> None:
    """With equal costs; with unequal ones a refunded user's cheaper later job may pass one other job."""
    scheduler = make(communities=True, community_weights={"red": 2.0, None: 0.5})
    submit_all(scheduler, [job(q.job_id, q.user, community=q.community, weight=q.weight) for q in workload])
    for _ in range(taken):
        scheduler.next_batch(0.0)
    if not len(scheduler):
        return
    before = scheduler.positions(0.0)
    victim = sorted(before)[cancelled % len(before)]
    assert scheduler.cancel(victim)
    after = scheduler.positions(0.0)
    assert set(after) == set(before) - {victim}
    assert all(after[job_id] <= before[job_id] for job_id in after)


@PROPERTY
@given(
    users=st.integers(2, 6),
    backlog=st.integers(2, 10),
    cost=st.sampled_from((1.0, 3.0)),
    shuffle=st.randoms(use_true_random=False),
    communities=st.booleans(),
)
def test_equal_users_get_equal_service(users: int, backlog: int, cost: float, shuffle: Any, communities: bool) -> None:
    workload = [
        job(f"u{user}-{index}", f"u{user}", community=f"c{user}", cost=cost)
        for user in range(users)
        for index in range(backlog)
    ]
    shuffle.shuffle(workload)
    scheduler = make(communities=communities)
    submit_all(scheduler, workload)
    served = Counter[str]()
    for job_id in drain(scheduler)[: users * (backlog - 1)]:  # every user still has work waiting
        served[job_id.split("-")[0]] += 1
        counts = [served[f"u{user}"] for user in range(users)]
        assert max(counts) - min(counts) <= 1


@PROPERTY
@given(
    weights=st.lists(st.sampled_from((1.0, 2.0, 3.0, 4.0)), min_size=2, max_size=4),
    costs=st.lists(st.lists(st.sampled_from((1.0, 2.0, 4.0)), min_size=3, max_size=12), min_size=4, max_size=4),
    shuffle=st.randoms(use_true_random=False),
)
def test_service_follows_weights_within_the_sfq_bound(
    weights: list[float], costs: list[list[float]], shuffle: Any
) -> None:
    workload = [
        job(f"u{user}-{index}", f"u{user}", cost=cost, weight=weight)
        for user, weight in enumerate(weights)
        for index, cost in enumerate(costs[user])
    ]
    shuffle.shuffle(workload)
    scheduler = make()
    submit_all(scheduler, workload)
    by_id = {queued.job_id: queued for queued in workload}
    left = Counter(queued.user for queued in workload)
    served = Counter[str]()
    largest = {queued.user: max(costs[int(queued.user[1:])]) for queued in workload}
    for job_id in drain(scheduler):
        queued = by_id[job_id]
        served[queued.user] += queued.cost
        left[queued.user] -= 1
        waiting = [user for user in left if left[user]]
        for first in waiting:
            for second in waiting:
                gap = served[first] / by_id[f"{first}-0"].weight - served[second] / by_id[f"{second}-0"].weight
                bound = largest[first] / by_id[f"{first}-0"].weight + largest[second] / by_id[f"{second}-0"].weight
                assert gap <= bound


@pytest.mark.parametrize(("heavy", "light"), [(2.0, 1.0), (3.0, 1.0), (4.0, 2.0)])
def test_a_heavier_weight_gets_proportionally_more(heavy: float, light: float) -> None:
    scheduler = make()
    submit_all(scheduler, [job(f"h{i}", "h", weight=heavy) for i in range(100)])
    submit_all(scheduler, [job(f"l{i}", "l", weight=light) for i in range(100)])
    first = drain(scheduler)[:60]
    assert sum(job_id.startswith("h") for job_id in first) == pytest.approx(60 * heavy / (heavy + light), abs=1)


@PROPERTY
@given(
    community_weights=st.tuples(st.sampled_from((1.0, 2.0, 3.0)), st.sampled_from((1.0, 2.0, 3.0))),
    members=st.lists(st.tuples(st.sampled_from(("a", "b")), st.sampled_from(USERS)), min_size=10, max_size=60),
)
def test_communities_share_within_the_sfq_bound(
    community_weights: tuple[float, float], members: list[tuple[str, str]]
) -> None:
    weights = dict(zip(("a", "b"), community_weights, strict=True))
    scheduler = make(communities=True, community_weights=weights)
    submit_all(scheduler, [job(f"{c}-{i}", f"{c}{user}", community=c) for i, (c, user) in enumerate(members)])
    left = Counter(community for community, _ in members)
    served = Counter[str]()
    for job_id in drain(scheduler):
        community = job_id[0]
        served[community] += 1
        left[community] -= 1
        if left["a"] and left["b"]:
            assert abs(served["a"] / weights["a"] - served["b"] / weights["b"]) <= 1 / weights["a"] + 1 / weights["b"]


@PROPERTY
@given(workload=jobs(max_size=40, times=60), max_wait=st.sampled_from((3.0, 8.0, 20.0)), communities=st.booleans())
def test_after_max_wait_only_older_jobs_go_first(workload: list[QueuedJob], max_wait: float, communities: bool) -> None:
    batches = simulate(make(max_wait=max_wait, communities=communities), workload)
    arrival = {queued.job_id: index for index, queued in enumerate(sorted(workload, key=lambda q: q.submitted_at))}
    started = starts(batches)
    longest = max(queued.cost for queued in workload)
    for queued in workload:
        aged_at = queued.submitted_at + max_wait
        overtaking = [(at, other) for at, batch in batches for other in batch if aged_at < at < started[queued.job_id]]
        assert all(arrival[other.job_id] < arrival[queued.job_id] for _, other in overtaking)
        older_work = sum(other.cost for _, other in overtaking)
        assert started[queued.job_id] <= aged_at + longest + older_work


Setup = Callable[[], FairScheduler]


def probe_goes_before(setup: Setup, at: float, target: QueuedJob) -> bool:
    """Whether a job of a new user, submitted once the head alone was taken, could be placed before `target`:
    in no community, in `target`'s, or in a new one."""
    for place in (None, target.community, "new"):
        scheduler = setup()
        scheduler.next_batch(at)
        scheduler.submit(job("probe", "newcomer", community=place, at=at), at)
        positions = scheduler.positions(at)
        if positions["probe"] < positions[target.job_id]:
            return True
    return False


@settings(max_examples=300, deadline=None)
@given(
    before=batchable(max_size=8, times=4),
    after=batchable(max_size=8, times=16),
    taken=st.integers(0, 4),
    running=st.booleans(),
    limits=st.tuples(
        st.integers(1, 5), st.one_of(st.none(), st.integers(1, 10).map(float)), st.one_of(st.none(), st.integers(1, 4))
    ),
    communities=st.booleans(),
)
def test_a_batch_is_the_level_compatible_head_of_the_order(
    before: list[QueuedJob],
    after: list[QueuedJob],
    taken: int,
    running: bool,
    limits: tuple[int, float | None, int | None],
    communities: bool,
) -> None:
    """Against an oracle that knows nothing of tags: some jobs have run (the last perhaps still running) when more
    arrive; a probe job submitted after the head could go before no member of the batch, and before the first job
    left out whenever only that could have left it out."""
    max_jobs, max_cost, max_images = limits
    after = [replace(queued, job_id=f"late{index}") for index, queued in enumerate(after)]
    at = float(max(queued.submitted_at for queued in before + after))

    def setup() -> FairScheduler:
        scheduler = make(max_wait=12.0, communities=communities)
        submit_all(scheduler, before)
        for index in range(taken):
            for queued in scheduler.next_batch(0.0):
                if index < taken - 1 or not running:
                    scheduler.finished(queued.job_id, 0.0)
        submit_all(scheduler, after)
        return scheduler

    scheduler = setup()
    if not len(scheduler):
        return
    positions = scheduler.positions(at)
    order = sorted(positions, key=positions.__getitem__)
    by_id = {queued.job_id: queued for queued in before + after}
    batch = [by_id[queued.job_id] for queued in scheduler.next_batch(at, max_jobs, max_cost, max_images)]
    assert [queued.job_id for queued in batch] == order[: len(batch)]
    assert drain(scheduler, at) == order[len(batch) :]
    head = batch[0]
    images = sum(queued.images for queued in batch)
    limit = min(2 * head.images, max_images or 2 * head.images)
    assert len(batch) <= max_jobs and len({queued.user for queued in batch}) == len(batch)
    if len(batch) > 1:
        assert head.batch_key is not None and all(queued.batch_key == head.batch_key for queued in batch)
        assert images <= limit and (max_cost is None or sum(queued.cost for queued in batch) <= max_cost)
    assert not any(probe_goes_before(setup, at, member) for member in batch[1:])
    if len(batch) < len(order):
        left_out = by_id[order[len(batch)]]
        fits = (
            head.batch_key is not None
            and left_out.batch_key == head.batch_key
            and left_out.user not in {queued.user for queued in batch}
            and len(batch) < max_jobs
            and images + left_out.images <= limit
            and (max_cost is None or sum(queued.cost for queued in batch) + left_out.cost <= max_cost)
        )
        if fits:
            assert probe_goes_before(setup, at, left_out)


def test_a_sum_tree_sums_the_values_below_any_key() -> None:
    rng = random.Random(7)
    tree, values = SumTree(), {}
    for _ in range(2000):
        key = rng.randrange(300)
        if key in values and rng.random() < 0.5:
            tree.remove(key)
            del values[key]
        elif key not in values:
            values[key] = float(rng.randrange(1, 9))
            tree.add(key, values[key])
        probe = rng.randrange(301)
        assert tree.below(probe) == sum(value for other, value in values.items() if other < probe)
    assert len(tree) == len(values) and tree.total == sum(values.values())
    with pytest.raises(KeyError):
        tree.remove(1000)


def test_an_eta_weighs_each_kind_by_its_own_rate() -> None:
    scheduler = make()
    slow = QueuedJob(job_id="slow", user="a", community=None, cost=2.0, kind="inpaint", submitted_at=0.0)
    fast = QueuedJob(job_id="fast", user="b", community=None, cost=3.0, kind="txt2img", submitted_at=0.0)
    last = QueuedJob(job_id="last", user="c", community=None, cost=1.0, kind="txt2img", submitted_at=0.0)
    submit_all(scheduler, [slow, fast, last])
    rates = {"inpaint": 5.0, "txt2img": 1.0}
    assert scheduler.eta("last", 0.0, rates.__getitem__) == 2.0 * 5.0 + 3.0 * 1.0
