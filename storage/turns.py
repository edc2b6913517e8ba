"""Whose transaction goes next where the database takes one at a time (a SQLite file: one connection).

Taken in arrival order, a burst of requests and the worker's writes interleave: each request's few short
transactions queue behind everyone else's, so the worker's "running" write waits behind the whole burst, and every
request of the burst is answered near its end. So a turn goes first to the transactions marked `urgent` (the
worker's state writes), then to the task that first asked for one earliest: a burst is answered one request after
another, and the worker's writes wait for no more than the transaction in progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import itertools
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar, TypeVarTuple

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from storage.database_thread import DatabaseThread
from storage.engine import reaching

Ts = TypeVarTuple("Ts")
R = TypeVar("R")

_URGENT: contextvars.ContextVar[bool] = contextvars.ContextVar("easel_storage_urgent", default=False)


@contextlib.contextmanager
def urgent() -> Iterator[None]:
    """The transactions of this block (and of tasks it starts) take their turn before any other waiting one."""
    token = _URGENT.set(True)
    try:
        yield
    finally:
        _URGENT.reset(token)


class Turns:
    """At most `slots` transactions at once, the waiting ones in the order above; None: no limit (a server
    database, whose pool of connections serves concurrent transactions)."""

    def __init__(self, slots: int | None) -> None:
        self._free = slots
        self._waiting: list[tuple[int, float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._first_asked: weakref.WeakKeyDictionary[asyncio.Task[object], float] = weakref.WeakKeyDictionary()

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        if self._free is None:
            yield
            return
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        asked = self._first_asked.setdefault(task, loop.time()) if task is not None else loop.time()
        if self._free > 0 and not self._waiting:
            self._free -= 1
        else:
            await self._wait(asked)
        try:
            yield
        finally:
            self._release()

    async def _wait(self, asked: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (0 if _URGENT.get() else 1, asked, next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release()  # the turn came in the same instant: pass it on
            raise

    def _release(self) -> None:
        while self._waiting:
            future = heapq.heappop(self._waiting)[3]
            if not future.done():
                future.set_result(None)
                return
        assert self._free is not None
        self._free += 1


class Sessions:
    """How `Database` runs a transaction: a function of a sync session, in its turn (see above), on a SQLite file's
    `DatabaseThread` where there is one, else through the async session's `run_sync`."""

    def __init__(self, factory: async_sessionmaker[AsyncSession], turns: Turns, url: str) -> None:
        self.factory = factory
        self.turns = turns
        self.url = url
        self.thread: DatabaseThread | None = None

    async def run(self, work: Callable[[Session, *Ts], R], *args: *Ts) -> R:
        """`work(session, *args)` in one transaction, in its turn."""
        async with self.turns.turn():
            return await self.run_in_turn(work, *args)

    async def run_in_turn(self, work: Callable[[Session, *Ts], R], *args: *Ts) -> R:
        """As `run`, for a caller that holds its turn already."""
        if self.thread is not None:
            return await self.thread.run(work, *args)
        async with reaching(self.url), self.factory.begin() as session:
            return await session.run_sync(work, *args)
