"""PostgreSQL's LISTEN/NOTIFY: how processes that share a database wake each other without polling.

A notification is a hint, never the record: it can be lost with a connection, so after every (re)connection the
listener is told (`on_connect`) to catch up from the database, and its users poll now and then all the same.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from storage.repository import Repository

if TYPE_CHECKING:
    import asyncpg  # type: ignore[import-untyped]

log = logging.getLogger(__name__)

Handler = Callable[[str], None]
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)


def listens(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


class Notifying(Repository):
    async def notify(self, channel: str, payload: str) -> None:
        """Sent when the transaction commits; nothing on a database that has no notifications (SQLite)."""
        if listens(self._sessions.url):
            await self._sessions.run(_notify, channel, payload)


def _notify(session: Any, channel: str, payload: str) -> None:
    session.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload})


class Listener:
    """One connection of its own that LISTENs on `handlers`' channels, reconnected with backoff when lost."""

    def __init__(self, url: str, handlers: Mapping[str, Handler], on_connect: Callable[[], None]) -> None:
        address = make_url(url).set(drivername="postgresql")
        self._dsn = address.render_as_string(hide_password=False)
        self._handlers = dict(handlers)
        self._on_connect = on_connect
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="easel-listen")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _listen(self) -> None:
        import asyncpg  # the postgres extra's driver: only a PostgreSQL database has a listener

        failures = 0
        while True:
            try:
                connection = await asyncpg.connect(self._dsn)
            except (OSError, asyncpg.PostgresError) as error:
                delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                if failures == 0:
                    log.warning("notifications wait for the database (%s); polling meanwhile", error)
                failures += 1
                await asyncio.sleep(delay)
                continue
            try:
                await self._serve(connection)
            finally:
                self.connected.clear()
                connection.terminate()
            failures = 0

    async def _serve(self, connection: asyncpg.Connection) -> None:
        import asyncpg

        lost = asyncio.Event()
        connection.add_termination_listener(lambda _: lost.set())
        for channel, handler in self._handlers.items():
            await connection.add_listener(channel, _calling(handler))
        self.connected.set()
        self._on_connect()
        while not lost.is_set():
            try:
                await asyncio.wait_for(lost.wait(), 5.0)
            except TimeoutError:
                try:
                    await asyncio.wait_for(connection.execute("SELECT 1"), 5.0)
                except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    return
        log.warning("the notifications' connection was lost; reconnecting")


def _calling(handler: Handler) -> Callable[[Any, int, str, str], None]:
    def call(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            handler(payload)
        except Exception:
            log.exception("a notification's handler failed")

    return call
