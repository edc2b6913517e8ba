"""A SQLite file's short transactions, each run whole on a thread of its own: one hop from the event loop.

Through the async engine (aiosqlite) every statement is a cursor, an execute, a fetch and a close, each a round trip
to aiosqlite's thread and back to the event loop: a job's done write took 19 of them, 3 to 10 ms while the event loop
was busy, and the worker's writes and a burst's took their turns one after another on the one connection. Written as
a function of a sync `Session`, the same transaction runs here in one hop. On any other database the function runs
through the async session's `run_sync` (`storage.turns.Sessions.run`), so each is written once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import create_engine, event, make_url
from sqlalchemy.orm import sessionmaker

from storage.engine import begin_immediate, configure_sqlite, sqlite_file

R = TypeVar("R")


class DatabaseThread:
    """The SQLite file of the async `url` (its directory created if missing), opened by the sqlite3 module on one
    thread, which every transaction of the process takes in its turn (`storage.turns`)."""

    def __init__(self, url: str) -> None:
        file = sqlite_file(url)
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
        sync_url = make_url(url).set(drivername="sqlite+pysqlite")
        # public for instrumentation: the tests count its commits
        self.engine = create_engine(sync_url, pool_size=1, max_overflow=0, connect_args={"check_same_thread": False})
        event.listen(self.engine, "connect", configure_sqlite)
        event.listen(self.engine, "begin", begin_immediate)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="easel-sqlite")

    async def run(self, work: Callable[..., R], *args: Any) -> R:
        """`work(session, *args)` in one transaction on the thread. A caller cancelled meanwhile still waits for the
        transaction's end (committed or rolled back), so that the next turn never finds it in progress."""
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._transaction, work, args)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            await asyncio.wait([future])
            raise

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self.engine.dispose)
        self._executor.shutdown()

    def _transaction(self, work: Callable[..., R], args: tuple[Any, ...]) -> R:
        with self._sessions.begin() as session:
            return work(session, *args)
