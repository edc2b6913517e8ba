"""The database: one engine, and the query methods of every table group (one mixin module each)."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import Session, configure_mappers

from storage.access_tokens import AccessTokens
from storage.bans import CommunityBans
from storage.blobs import FileBlobs
from storage.communities import Communities
from storage.database_thread import DatabaseThread
from storage.engine import open_engine, opening, single_connection, sqlite_file
from storage.grid_jobs import GridJobs
from storage.groups import Grouped
from storage.inbox import Inbox
from storage.jobs import Jobs
from storage.messages import MessageLinks, write_links
from storage.migrate import upgrade_database
from storage.moderation import ModerationLog
from storage.new_jobs import NewJobs
from storage.notifications import Notifying
from storage.queue_log import QueueLog
from storage.quotas import Quotas
from storage.repository import Clock, utc_now
from storage.retention import Retention
from storage.turns import Sessions, Turns
from storage.users import Users


class Database(
    Users,
    Communities,
    CommunityBans,
    Jobs,
    GridJobs,
    MessageLinks,
    Quotas,
    ModerationLog,
    Inbox,
    QueueLog,
    Notifying,
    FileBlobs,
    Retention,
    AccessTokens,
):
    """easel's database at `url`, e.g. `sqlite+aiosqlite:///data/easel.db`.

    Its methods come from one module per table group; they work once `connect` has run. `clock` stamps
    creations (users, communities, jobs, quota reservations, moderation entries); later job changes take
    `now` explicitly, because the caller knows when the event happened.
    """

    def __init__(self, url: str, clock: Clock = utc_now) -> None:
        self.url = url
        self._clock = clock
        self._engine: AsyncEngine | None = None
        self._sessions = Sessions(async_sessionmaker(expire_on_commit=False), Turns(None), url)
        self._new_jobs = NewJobs(self._sessions, self._now)
        # A group that one bad item fails (a user another process created meanwhile, a link to a missing job) is
        # written again item by item.
        self._user_groups = Grouped(self._sessions, self._get_or_create_users, alone_on=(IntegrityError,))
        self._link_groups = Grouped(self._sessions, write_links, alone_on=(IntegrityError,))

    async def upgrade(self) -> Path | None:
        """Migrate the schema to the newest revision; safe to run at every start. A SQLite file whose schema this
        changes is copied first: the copy's path, or None."""
        return await upgrade_database(self.url)

    async def connect(self) -> None:
        """Open the database and check that it answers, so a wrong URL fails at start-up. A SQLite file is opened on
        its own thread (`DatabaseThread`), every other database through the async engine."""
        if self._engine is not None or self._sessions.thread is not None:
            return
        async with opening(self.url):
            if sqlite_file(self.url) is not None:
                thread = DatabaseThread(self.url)
                try:
                    await thread.run(_answers)
                except BaseException:
                    await thread.close()
                    raise
                self._sessions.thread = thread
            else:
                engine = open_engine(self.url)
                try:
                    async with engine.connect() as connection:
                        await connection.execute(text("SELECT 1"))
                except BaseException:
                    await engine.dispose()
                    raise
                self._engine = engine
                self._sessions.factory.configure(bind=engine)
        self._sessions.turns = Turns(1 if single_connection(self.url) else None)
        # The mappers' relationships are worked out here, not on the first user's request (40 ms of its transaction).
        configure_mappers()

    async def ping(self) -> None:
        """One round trip to the database; raises what the driver raises when it does not answer."""
        await self._sessions.run(_answers)

    async def close(self) -> None:
        if self._sessions.thread is not None:
            await self._sessions.thread.close()
            self._sessions.thread = None
        if self._engine is not None:
            self._sessions.factory.configure(bind=None)
            await self._engine.dispose()
            self._engine = None

    async def __aenter__(self) -> Database:
        await self.connect()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()


def _answers(session: Session) -> None:
    session.execute(text("SELECT 1"))
