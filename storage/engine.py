"""The async engine, with SQLite set up for a long-running service.

Every SQLite connection gets WAL (readers never block the writer), foreign keys (off by default in
SQLite), and synchronous=FULL (each commit is on disk before it returns, so a job or a delivery mark
survives a power loss too; NORMAL would save one fsync per commit). SQLAlchemy, not the sqlite3 module,
begins transactions, with BEGIN IMMEDIATE: a transaction that reads and then writes cannot fail
half-way because another process wrote in between. A running process uses a SQLite file through one
connection, on its `DatabaseThread` (`storage.database_thread`), which its coroutines take in turns
(`storage.turns`: the worker's writes first, then the oldest request's), each `Database` call being one short
transaction, so they never wait on file locks; the async engine opens the file only to migrate it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from storage.errors import DatabaseUnavailable

SQLITE_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA foreign_keys=ON", "PRAGMA synchronous=FULL")


@contextlib.asynccontextmanager
async def opening(url: str) -> AsyncIterator[None]:
    """What goes wrong in opening the database at `url`, said in one `DatabaseUnavailable`; a wrong URL, a missing
    driver and a server that does not answer are an operator's to fix, not a traceback to read."""
    where = _shown(url)
    try:
        yield
    except ImportError as error:
        raise DatabaseUnavailable(
            where, f"its driver is not installed ({error}); PostgreSQL's comes with pip install 'easel[postgres]'"
        ) from None
    except (ArgumentError, NoSuchModuleError, ValueError) as error:
        raise DatabaseUnavailable(where, f"easel cannot open a database at this URL ({error})") from None
    except DBAPIError as error:
        raise DatabaseUnavailable(where, f"the database refused the connection ({error.orig})") from None
    except (OSError, TimeoutError) as error:
        raise DatabaseUnavailable(where, f"the database cannot be reached ({error})") from None


def lost_connection(error: BaseException) -> bool:
    """Whether `error` means the database could not be reached (a server restarting, a network cut, a connection
    it ended), rather than a refusal of the statement: what is worth trying again."""
    if isinstance(error, DBAPIError):
        return error.connection_invalidated
    return isinstance(error, OSError | TimeoutError)


@contextlib.asynccontextmanager
async def reaching(url: str) -> AsyncIterator[None]:
    """A lost connection inside the block raised as `DatabaseUnavailable`; every other error as it is."""
    try:
        yield
    except Exception as error:
        if not lost_connection(error):
            raise
        raise DatabaseUnavailable(_shown(url), f"the connection to the database was lost ({error})") from error


def _shown(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return repr(url)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database at `url`; None for another database, an in-memory one or a URI."""
    parsed = make_url(url)
    database = parsed.database or ":memory:"
    if parsed.get_backend_name() != "sqlite" or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def single_connection(url: str) -> bool:
    """Whether the engine for `url` has one connection, which its transactions take in turns: any SQLite database."""
    return make_url(url).get_backend_name() == "sqlite"


def open_engine(url: str) -> AsyncEngine:
    """An engine for `url`; for a SQLite file, its directory is created if missing."""
    if make_url(url).get_backend_name() != "sqlite":
        # A pooled connection that a server restart ended is found out (and replaced) before it is used.
        return create_async_engine(url, pool_pre_ping=True)
    file = sqlite_file(url)
    pool: dict[str, Any] = {}
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        pool = {"pool_size": 1, "max_overflow": 0}
    engine = create_async_engine(url, **pool)
    event.listen(engine.sync_engine, "connect", configure_sqlite)
    event.listen(engine.sync_engine, "begin", begin_immediate)
    return engine


def configure_sqlite(dbapi_connection: Any, _record: object) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")
