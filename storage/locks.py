"""PostgreSQL session advisory locks, held on a connection of their own for as long as a process lives.

Processes on several hosts that share one database can agree through it that only one of them does something.
The server releases a session lock when its connection ends, also when the process is killed (its socket
closes), so a lock never outlives its holder. Each holder names itself in `application_name`, so that a process
refused a lock can say which one holds it.
"""

from __future__ import annotations

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from storage.engine import opening

KEY_BITS = 63
"""Keys are PostgreSQL bigints; non-negative ones keep pg_locks' two 32-bit halves simple to match."""

_HOLDER = text(
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.classid::bigint = :high AND l.objid::bigint = :low"
)


def supports_advisory_locks(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


class AdvisoryLocks:
    """Locks taken by one process on the database at `url`, under the name `holder`."""

    def __init__(self, url: str, holder: str) -> None:
        self.url = url
        self.holder = holder
        self._engine: AsyncEngine | None = None
        self._connection: AsyncConnection | None = None

    async def take(self, key: int) -> bool:
        """Take the lock `key` (0 <= key < 2**63) unless another session holds it; True when taken."""
        if not 0 <= key < 1 << KEY_BITS:
            raise ValueError(f"advisory lock key {key} is out of range")
        connection = await self._connect()
        result = await connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
        return bool(result.scalar_one())

    async def holder_of(self, key: int) -> str | None:
        """The name of the session that holds `key`, if any holds it."""
        connection = await self._connect()
        result = await connection.execute(_HOLDER, {"high": key >> 32, "low": key & 0xFFFFFFFF})
        return result.scalars().first()

    async def close(self) -> None:
        """Release every lock (the session ends)."""
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def _connect(self) -> AsyncConnection:
        if self._connection is None:
            self._engine = create_async_engine(self.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
            async with opening(self.url):
                self._connection = await self._engine.connect()
            await self._connection.execute(
                text("SELECT set_config('application_name', :holder, false)"), {"holder": self.holder}
            )
        return self._connection
