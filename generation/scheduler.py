"""Fair-share scheduler: which queued job the GPU runs next, and where every other job stands.

Pure logic: no I/O, no asyncio, no clock. The caller passes `now` (seconds on the clock that `submitted_at` uses),
measures throughput, and says when a job it took has finished.

Order: start-time fair queuing (SFQ, Goyal et al. 1996) on two levels.

- Users inside a group. A job's start tag is max(the group's virtual time, the finish tag of its user's previous
  job) and its finish tag is start + cost / weight; jobs run in start-tag order and the virtual time follows the
  start tag of the job taken. A user who was idle starts at the current virtual time, so idleness banks no credit;
  the next job is the one whose owner has used least of their share.
- Groups. With `communities`, each community is a group and all jobs without a community share one more group
  (direct messages act as one community, so a DM user cannot outweigh a whole server); otherwise everyone is in
  one group and this level does nothing. Each arriving job appends a slot of cost / group weight to its group's
  chain by the same rule (start at max(virtual time, chain end)); the slots of all groups run in tag order, and a
  group fills its next slot with its own next job in user order. A slot is sized by the job that made it, not by
  the job that fills it, so with unequal costs a community's share is exact only when it runs dry, and in between
  off by at most the work it has queued; with equal costs it is exact throughout. That is the price of the next
  point.

Every tag is fixed when it is made, so the order of the queued jobs is a merge of sorted lists and a job's position
is three rank look-ups, O(log n). sortedcontainers' SortedList is used rather than heapq because positions need
ranks, which a heap cannot give without a scan, and cancel needs exact removal, which a heap only fakes with
lazy-deletion tombstones that would also falsify the ranks. submit, next_batch (per job), cancel and position are
O(log n); moving a job to the aged queue is amortised into them (each job moves at most once), and a cancel also
re-tags the user's own later jobs, at most the per-user cap. `positions` is one O(n) walk. The work ahead of a job
(its `eta`) is O(log n) per group: each group keeps its jobs' costs in a sum tree (`generation.sums`), and the jobs a
group has ahead of a slot are its first ones.

Cancel gives the charge back: the user's later jobs move up as if the cancelled one had never been submitted, and
its group's chain loses its last slot, so repeated submit-and-cancel cannot push a community back. No other user's
or group's tags change; another job can only be passed by the cancelling user's own later jobs, moving to where
they would have been without the cancelled one (with equal costs, nobody moves back).

Aging: a job queued longer than `max_wait` leaves the fair order for an aged queue that runs first, oldest first.
It keeps its user-level tags (its user still pays for it), and its group is charged when it runs. Aging is an
exception to the fair order, so it does not move virtual time.

Batches: jobs with the same `batch_key` may share one pipeline call, but only jobs that stand at the head of the
order together. A batch is the head and the jobs right behind it, each of a user not yet in the batch and level: no
job submitted now could be placed before it (its start tag at its group's virtual time and, with communities, its
slot at the groups' virtual time; an aged job always is). The first job that is not ends the batch, so a light
user's job is never topped up from someone's backlog; and a batch holds at most twice the head's images. Against
the head run alone and the rest one by one in the same order: a job arriving meanwhile would come after every member
anyway, so it waits no longer; the jobs behind start earlier, since a batch is never slower than its jobs one by
one; and no member finishes more than one job of the head's later, since twice the images never take more than
twice the time. docs/architecture.md ("Fair share") has the measurements behind this.

When a group has nothing queued or running its user tags are dropped, and when the scheduler is idle everything is:
that is SFQ's reset at the end of a busy period, and it also bounds the state kept.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping

from sortedcontainers import SortedList

from generation.errors import QueueFull, UserQueueFull
from generation.fair_queue_records import Batch, Entry, FairKey, Group, QueuedJob, Rate, Running, User, check_positive
from generation.queue_eta import ahead_of, by_kind, running_left
from generation.sums import Costs


class DuplicateJob(ValueError):
    """A job id that is already queued or running: a caller bug, not something to tell the user."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id!r} is already queued or running")


class FairScheduler:
    """Weighted fair queue over users, optionally over communities first, with caps, aging and cancellation.

    Time never runs backwards here: a `now` earlier than one already seen counts as the latest.
    Jobs taken by `next_batch` are running until `finished` is called for each of them. `max_pending_per_user`
    counts a user's queued jobs, `max_queue` all queued jobs; running jobs count in neither.
    """

    def __init__(
        self,
        *,
        max_pending_per_user: int,
        max_queue: int,
        max_wait: float,
        communities: bool = False,
        community_weights: Mapping[str | None, float] | None = None,
    ) -> None:
        _check_settings(max_pending_per_user, max_queue, max_wait, communities, community_weights)
        self._max_pending_per_user = max_pending_per_user
        self._max_queue = max_queue
        self._max_wait = max_wait
        self._communities = communities
        self._community_weights = dict(community_weights or {})
        self._now = -math.inf
        self._vtime = 0.0  # group-level virtual time
        self._seq = 0
        self._groups: dict[str | None, Group] = {}
        self._entries: dict[str, Entry] = {}  # queued jobs by id
        self._pending: dict[str, int] = {}  # queued jobs per user, across groups
        self._running: dict[str, Running] = {}
        self._slots: SortedList = SortedList()  # (tag, seq, group key) of every group's slots
        self._by_time: SortedList = SortedList()  # TimeKey of the jobs in the fair order: who ages next
        self._aged: SortedList = SortedList()  # TimeKey of the aged jobs, oldest first
        self._aged_costs = Costs()  # their costs by kind, by TimeKey

    def __len__(self) -> int:
        """Queued jobs (not counting running ones)."""
        return len(self._entries)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._entries

    def check_capacity(self, user: str | None) -> None:
        """Raise `UserQueueFull` or `QueueFull` if a job of this user would be refused now (before storing it); a
        job that holds no place of its user's cap (`QueuedJob.counted`) is checked with `user` None."""
        if user is not None and self._pending.get(user, 0) >= self._max_pending_per_user:
            raise UserQueueFull(self._max_pending_per_user)
        if len(self._entries) >= self._max_queue:
            raise QueueFull(self._max_queue)

    def submit(self, job: QueuedJob, now: float) -> int:
        """Queue a job and return its position; raises `QueueRefused` or `DuplicateJob`.

        It ages from `job.submitted_at`, which may be earlier than `now` (a job re-queued at start-up).
        """
        if job.job_id in self._entries or job.job_id in self._running:
            raise DuplicateJob(job.job_id)
        self.check_capacity(job.user if job.counted else None)
        self._now = max(self._now, now)
        group = self._group(job.community if self._communities else None)
        user = group.users.setdefault(job.user, User())
        entry = Entry(job, self._seq, group, user, floor=group.vtime, start=max(group.vtime, user.finish()))
        self._seq += 1
        tag = max(self._vtime, group.chain_end)
        size = job.cost / group.weight
        group.chain_end = tag + size
        group.slots.add((tag, entry.seq, size))
        self._slots.add((tag, entry.seq, group.key))
        group.jobs.add(entry.fair_key)
        group.costs.add(entry.fair_key, job.kind, job.cost)
        self._by_time.add(entry.time_key)
        group.queued += 1
        user.pending.append(entry)
        self._entries[job.job_id] = entry
        if job.counted:
            self._pending[job.user] = self._pending.get(job.user, 0) + 1
        self._promote()
        return self._position(entry)

    def next_batch(
        self, now: float, max_jobs: int = 1, max_cost: float | None = None, max_images: int | None = None
    ) -> list[QueuedJob]:
        """Take the head of the order and the jobs that stand at the head together with it (see the module's doc).

        A job right behind joins while it shares the head's non-None `batch_key`, its user has none in the batch,
        and it is level: no job submitted now could be placed before it. The first that does not stops the batch,
        as do `max_jobs`, a total cost above `max_cost`, and more images than `max_images` or twice the head's.
        The head is always taken; the jobs come in fair order. Returns an empty list when nothing is queued.
        """
        if max_jobs < 1:
            raise ValueError(f"max_jobs {max_jobs!r} is not allowed: at least 1")
        self._advance(now)
        if not self._entries:
            return []
        batch = [self._take()]
        first = batch[0].job
        users, cost, images = {first.user}, first.cost, first.images
        limit = 2 * images if max_images is None else min(max_images, 2 * images)
        while first.batch_key is not None and len(batch) < max_jobs and self._entries:
            head = self._head()
            job = head.job
            if (
                job.batch_key != first.batch_key
                or job.user in users
                or not self._level(head)
                or (max_cost is not None and cost + job.cost > max_cost)
                or images + job.images > limit
            ):
                break
            batch.append(self._take())
            users.add(job.user)
            cost += job.cost
            images += job.images
        running = Batch(started_at=self._now, cost=cost, jobs=tuple(entry.job for entry in batch))
        for entry in batch:
            self._running[entry.job.job_id] = Running(entry.group, running)
        return [entry.job for entry in batch]

    def finished(self, job_id: str, now: float) -> None:
        """A job taken by `next_batch` is done (or failed, or was stopped); raises KeyError if it is not running."""
        group = self._running.pop(job_id).group
        self._advance(now)
        group.running -= 1
        self._settle(group)

    def cancel(self, job_id: str) -> bool:
        """Remove a queued job; False if it is not queued (unknown, or already running: the engine stops those)."""
        entry = self._entries.pop(job_id, None)
        if entry is None:
            return False
        if entry.aged:
            self._aged.remove(entry.time_key)
            self._aged_costs.remove(entry.time_key, entry.job.kind)
        else:
            self._by_time.remove(entry.time_key)
            self._leave_fair_order(entry)
        pending = entry.user.pending
        index = pending.index(entry)
        previous = pending[index - 1].finish if index else entry.user.settled
        self._unqueue(entry)
        self._refund(entry, pending[index:], previous)
        self._settle(entry.group)
        return True

    def position(self, job_id: str, now: float) -> int:
        """1-based place in the order at `now`, aged jobs first; later arrivals and aging may still change it."""
        self._advance(now)
        return self._position(self._entries[job_id])

    def positions(self, now: float) -> dict[str, int]:
        """Every queued job's position, in one pass."""
        self._advance(now)
        return {entry.job.job_id: place for place, entry in enumerate(self._in_order(), start=1)}

    def head(self, now: float, count: int) -> list[str]:
        """The ids of the first `count` queued jobs in order: O(count + groups)."""
        self._advance(now)
        return [entry.job.job_id for entry in itertools.islice(self._in_order(), count)]

    def eta(self, job_id: str, now: float, seconds_per_cost: Rate) -> float:
        """Seconds until the job starts: what is running, then the work ahead of it; O(log n) per group.

        `seconds_per_cost` is one rate for all jobs, or a function giving each kind's own (`QueuedJob.kind`).
        """
        self._advance(now)
        return running_left(self._running, self._now, seconds_per_cost) + ahead_of(
            self._entries[job_id], self._groups, self._aged_costs, by_kind(seconds_per_cost)
        )

    def etas(self, now: float, seconds_per_cost: Rate) -> dict[str, float]:
        """Every queued job's `eta`."""
        return {job_id: self.eta(job_id, now, seconds_per_cost) for job_id in list(self._entries)}

    def _group(self, key: str | None) -> Group:
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = Group(key, self._community_weights.get(key, 1.0))
        return group

    def _advance(self, now: float) -> None:
        self._now = max(self._now, now)
        self._promote()

    def _promote(self) -> None:
        """Move every job queued longer than `max_wait` from the fair order to the aged queue."""
        cutoff = self._now - self._max_wait
        while self._by_time and self._by_time[0][0] < cutoff:
            key = self._by_time.pop(0)
            entry = self._entries[key[2]]
            self._leave_fair_order(entry)
            entry.aged = True
            self._aged.add(key)
            self._aged_costs.add(key, entry.job.kind, entry.job.cost)

    def _leave_fair_order(self, entry: Entry) -> None:
        """Take a job out of the fair order; its group gives back its last slot, and each job behind it moves up."""
        group = entry.group
        group.jobs.remove(entry.fair_key)
        group.costs.remove(entry.fair_key, entry.job.kind)
        tag, seq, size = group.slots.pop()
        self._slots.remove((tag, seq, group.key))
        group.chain_end -= size

    def _head(self) -> Entry:
        if self._aged:
            return self._entries[self._aged[0][2]]
        group = self._groups[self._slots[0][2]]
        return self._entries[group.jobs[0][2]]

    def _level(self, entry: Entry) -> bool:
        """Whether the next job is as far ahead as one submitted now could be: aged, or at the virtual time of its
        group's users and (with communities) of the groups."""
        if entry.aged:
            return True
        return entry.start <= entry.group.vtime and (not self._communities or self._slots[0][0] <= self._vtime)

    def _take(self) -> Entry:
        if self._aged:
            entry = self._entries[self._aged.pop(0)[2]]
            self._aged_costs.remove(entry.time_key, entry.job.kind)
            group = entry.group
            group.chain_end = max(group.chain_end, self._vtime) + entry.job.cost / group.weight
        else:
            tag, _, key = self._slots.pop(0)
            group = self._groups[key]
            group.slots.pop(0)
            self._vtime = tag
            entry = self._entries[group.jobs.pop(0)[2]]
            group.costs.remove(entry.fair_key, entry.job.kind)
            # A refund may leave a start tag behind the virtual time, which must not go back.
            group.vtime = max(group.vtime, entry.start)
            self._by_time.remove(entry.time_key)
        del self._entries[entry.job.job_id]
        self._unqueue(entry)
        entry.user.settled = max(entry.user.settled, entry.finish)
        group.running += 1
        return entry

    def _unqueue(self, entry: Entry) -> None:
        entry.user.pending.remove(entry)
        entry.group.queued -= 1
        if not entry.job.counted:
            return
        left = self._pending[entry.job.user] - 1
        if left:
            self._pending[entry.job.user] = left
        else:
            del self._pending[entry.job.user]

    def _refund(self, cancelled: Entry, later: list[Entry], previous: float) -> None:
        """Re-tag the user's later jobs as if `cancelled` had never been submitted.

        Each moves up by the cancelled cost / weight, but never below the virtual time it arrived at, nor before
        the finish of the job ahead of it (a gap of idleness absorbs the shift).
        """
        shift = cancelled.job.cost / cancelled.job.weight
        jobs = cancelled.group.jobs
        for entry in later:
            start = max(entry.floor, entry.start - shift, previous)
            if entry.aged:
                entry.start = start
            else:
                jobs.remove(entry.fair_key)
                cancelled.group.costs.remove(entry.fair_key, entry.job.kind)
                entry.start = start
                jobs.add(entry.fair_key)
                cancelled.group.costs.add(entry.fair_key, entry.job.kind, entry.job.cost)
            previous = entry.finish

    def _settle(self, group: Group) -> None:
        """End a busy period: of the whole scheduler, or of one group."""
        if group.queued or group.running:
            return
        if not self._entries and not self._running:
            self._groups.clear()
            self._vtime = 0.0
            return
        group.users.clear()
        group.vtime = 0.0
        if group.chain_end <= self._vtime:
            del self._groups[group.key]

    def _position(self, entry: Entry) -> int:
        if entry.aged:
            return self._aged.index(entry.time_key) + 1
        group = entry.group
        tag, seq, _ = group.slots[group.jobs.index(entry.fair_key)]
        return len(self._aged) + self._slots.index((tag, seq, group.key)) + 1

    def _in_order(self) -> Iterator[Entry]:
        for _, _, job_id in self._aged:
            yield self._entries[job_id]
        cursors: dict[str | None, Iterator[FairKey]] = {}
        for _, _, key in self._slots:
            cursor = cursors.get(key)
            if cursor is None:
                cursor = cursors[key] = iter(self._groups[key].jobs)
            yield self._entries[next(cursor)[2]]


def _check_settings(
    max_pending_per_user: int,
    max_queue: int,
    max_wait: float,
    communities: bool,
    community_weights: Mapping[str | None, float] | None,
) -> None:
    for name, limit in (("max_pending_per_user", max_pending_per_user), ("max_queue", max_queue)):
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"{name} {limit!r} is not allowed: a whole number of at least 1")
    if not max_wait > 0:
        raise ValueError(f"max_wait {max_wait!r} is not allowed: seconds above 0 (math.inf turns aging off)")
    if community_weights and not communities:
        raise ValueError("community_weights are given but communities is off")
    for community, weight in (community_weights or {}).items():
        check_positive(f"weight of community {community!r}", weight)
