"""Where waiting users stand: told when their place changes meaningfully, within a message budget, at a cost that
does not grow with the queue.

Telling every waiting user their new place whenever a batch starts costs a walk of the queue and one message per
waiting job per batch: about n^2/8 messages to drain a queue of n, far beyond what a chat platform lets a bot send
(Telegram: about 30 a second in all). Instead each waiting job has one check in a heap, due when about half of its
wait should have passed since its user was last told, and no sooner than `position_interval_seconds`. A check asks
the worker for the job's place and wait (O(log n) each) and tells the user when the place has halved or doubled
since; either way the job is checked again later. When a batch starts, the jobs right behind it, whose places
can have halved at once, are checked at once. At most `position_updates_per_second` users are told in all, and
one per `position_chat_interval_seconds` in any one chat: a job whose chat was told too recently waits for the
chat's next turn. A job is checked O(log(wait / interval)) times, each check O(log n), so draining a queue costs
O(n log n) in all, however long it is, and nothing of it runs on the worker's path.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bots.config import QueueSettings
from bots.core.announcer import Announcer
from bots.core.types import EventKind
from generation.worker import Worker

log = logging.getLogger(__name__)

CHECKS_PER_ROUND = 200
"""Checks in one go, so that many falling due together (after a restart) never hold the event loop for long."""

Chat = tuple[str, str]
"""A platform and a channel."""


@dataclass(eq=False, slots=True)
class _Waiting:
    chat: Chat
    told: int | None
    """The place the user was last told; None: not told yet (a job recovered after a restart)."""
    due: float = 0.0
    """When its check is due; the heap's other entries for the job are stale."""
    shown_as: str | None = None
    """The job its user knows it by: a grid, for its first cell."""
    after_seconds: float = 0.0
    """What its user waits for beyond it: the rest of a grid's cells."""


class Positions:
    def __init__(
        self,
        worker: Worker,
        announcer: Announcer,
        settings: QueueSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.worker = worker
        self.announcer = announcer
        self.interval = settings.position_interval_seconds
        self.chat_interval = settings.position_chat_interval_seconds
        self.rate = settings.position_updates_per_second
        self._clock = clock
        self._waiting: dict[str, _Waiting] = {}
        self._checks: list[tuple[float, int, str]] = []  # (when, order, job id)
        self._order = itertools.count()
        self._chats: dict[Chat, float] = {}  # when each chat may be told next
        self._tokens = max(1.0, self.rate)
        self._refilled = clock()
        self._wake = asyncio.Event()
        self._sleeping_until = float("inf")

    def track(
        self,
        job_id: str,
        chat: Chat,
        told: int | None,
        eta_seconds: float | None,
        *,
        shown_as: str | None = None,
        after_seconds: float = 0.0,
    ) -> None:
        """A job joined the queue and its user was told `told` (None: nothing yet, checked at once). A grid is
        tracked by its first cell, `shown_as` the grid, its wait the cell's plus `after_seconds`."""
        self._waiting[job_id] = _Waiting(chat, told, shown_as=shown_as, after_seconds=after_seconds)
        now = self._clock()
        self._check_at(job_id, now if told is None else self._next_check(now, eta_seconds))

    def forget(self, job_ids: Sequence[str]) -> None:
        """These jobs left the queue for the GPU: no more checks (their heap entries are skipped when due)."""
        for job_id in job_ids:
            self._waiting.pop(job_id, None)

    def moved(self, started: int) -> None:
        """A batch of `started` jobs left the queue: the jobs right behind them, whose places may have halved,
        are checked at once (the rest of the queue moved by less than half)."""
        now = self._clock()
        for job_id in self.worker.head(2 * started):
            if job_id in self._waiting:
                self._check_at(job_id, now)

    async def run(self) -> None:
        """Tell users their places until cancelled."""
        while True:
            for job_id, place, eta in self.due():
                await self.announcer.emit(EventKind.POSITION, job_id, position=place, eta_seconds=eta)
            self._wake.clear()
            delay = 0.0 if self._checks and self._checks[0][0] <= self._clock() and self._tokens >= 1 else self._delay()
            self._sleeping_until = self._clock() + delay
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                pass

    def due(self) -> list[tuple[str, int, float | None]]:
        """The checks due now, within the budget: the users to tell, with their places and waits."""
        now = self._clock()
        self._refill(now)
        tell = []
        checks = 0
        while self._checks and self._checks[0][0] <= now and self._tokens >= 1 and checks < CHECKS_PER_ROUND:
            checks += 1
            when, _, job_id = heapq.heappop(self._checks)
            waiting = self._waiting.get(job_id)
            if waiting is None or waiting.due != when:
                continue
            place = self.worker.position(job_id)
            if place is None:  # started, cancelled or ended meanwhile
                del self._waiting[job_id]
                continue
            eta = self.worker.eta(job_id)
            if eta is not None:
                eta += waiting.after_seconds
            if not _meaningful(waiting.told, place):
                self._check_at(job_id, self._next_check(now, eta))
                continue
            chat_turn = self._chats.get(waiting.chat, now)
            if chat_turn > now:
                self._check_at(job_id, chat_turn)
                continue
            self._chats[waiting.chat] = now + self.chat_interval
            self._tokens -= 1
            waiting.told = place
            tell.append((waiting.shown_as or job_id, place, eta))
            self._check_at(job_id, self._next_check(now, eta))
        if len(self._chats) > 2 * len(self._waiting) + 64:
            self._chats = {chat: turn for chat, turn in self._chats.items() if turn > now}
        return tell

    def _next_check(self, now: float, eta_seconds: float | None) -> float:
        return now + max(self.interval, (eta_seconds or 0.0) / 2)

    def _check_at(self, job_id: str, when: float) -> None:
        self._waiting[job_id].due = when
        heapq.heappush(self._checks, (when, next(self._order), job_id))
        if when < self._sleeping_until:
            self._wake.set()

    def _refill(self, now: float) -> None:
        self._tokens = min(max(1.0, self.rate), self._tokens + (now - self._refilled) * self.rate)
        self._refilled = now

    def _delay(self) -> float:
        """Seconds until the next check is due and the budget allows it."""
        if not self._checks:
            return 3600.0
        now = self._clock()
        budget = 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate
        return max(self._checks[0][0] - now, budget, 0.001)


def _meaningful(told: int | None, place: int) -> bool:
    """Worth a message: the first place told, or a place that halved or doubled since the last one told."""
    return told is None or 2 * place <= told or place >= 2 * told
