"""Requests of one kind written in groups: those that wait for the database while one group is written go together
in the next transaction (group commit).

A burst of submissions makes the same few short transactions many times over (a user looked up or created, a job
written, a status message linked), and where the database takes one transaction at a time (a SQLite file) each
waits for all those before it: 50 users at once were answered one after another, the last after 50 rounds of
every kind. Written in groups, a kind of request costs a transaction per group, whatever its size. The first
request that finds nobody writing writes the group: its own item and every item that joined while it waited for
its turn on the database; items that arrive meanwhile wait, and the first of them whose item is still unwritten
writes the next group. Each caller returns only once its group is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from storage.turns import Sessions

GROUP_LIMIT = 32
"""Items in one transaction at most: building and flushing a group runs on the event loop, which the worker shares."""

T = TypeVar("T")
R = TypeVar("R")

Write = Callable[[Session, Sequence[T]], Sequence[R | Exception]]
"""Writes a group within the transaction given: one outcome per item, in order (a result, or the error that item
alone raises; the others are still written)."""


@dataclass(eq=False)
class _Waiting(Generic[T, R]):
    item: T
    written: asyncio.Future[R]


class Grouped(Generic[T, R]):
    """`write` called for groups of items, each group in one transaction.

    When a group of several fails with one of `alone_on` (an error that one bad item raises for all, such as a
    constraint), each of its items is written again in a transaction of its own, so that only the bad one fails.
    Any other failure fails the whole group.
    """

    def __init__(
        self,
        sessions: Sessions,
        write: Write[T, R],
        alone_on: tuple[type[Exception], ...] = (),
        limit: int = GROUP_LIMIT,
    ) -> None:
        self._sessions = sessions
        self._write_group = write
        self._alone_on = alone_on
        self._limit = limit
        self._waiting: list[_Waiting[T, R]] = []
        self._writing = asyncio.Lock()

    async def __call__(self, item: T) -> R:
        waiting: _Waiting[T, R] = _Waiting(item, asyncio.get_running_loop().create_future())
        self._waiting.append(waiting)
        try:
            async with self._writing:
                if not waiting.written.done():
                    with contextlib.suppress(Exception):  # the writer's outcome is in its future, as every item's
                        await self._write()
        except asyncio.CancelledError:
            if waiting in self._waiting:  # not taken into a group yet: nothing is written
                self._waiting.remove(waiting)
            elif waiting.written.done() and not waiting.written.cancelled():
                waiting.written.exception()  # its group's outcome, which nobody else will read
            raise
        return waiting.written.result()

    async def _write(self) -> None:
        group: list[_Waiting[T, R]] = []
        try:
            try:
                async with self._sessions.turns.turn():
                    group, self._waiting = self._waiting[: self._limit], self._waiting[self._limit :]
                    items = [waiting.item for waiting in group]
                    outcomes = list(await self._sessions.run_in_turn(self._write_group, items))
            except self._alone_on:
                if len(group) < 2:
                    raise
                outcomes = [await self._write_alone(waiting.item) for waiting in group]
        except BaseException as error:
            failure = error if isinstance(error, Exception) else RuntimeError(f"the writing was stopped: {error!r}")
            for waiting in group:
                if not waiting.written.done():
                    waiting.written.set_exception(failure)
            raise
        for waiting, outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, Exception):
                waiting.written.set_exception(outcome)
            else:
                waiting.written.set_result(outcome)

    async def _write_alone(self, item: T) -> R | Exception:
        try:
            return (await self._sessions.run(self._write_group, [item]))[0]
        except self._alone_on as error:
            return error
