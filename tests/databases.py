"""The databases the storage, service and queue tests run on: a SQLite file, and (the PostgreSQL tier,
tests/postgres_tier.py) a PostgreSQL database of the test's own, so that tests never see each other's rows.

Each PostgreSQL test gets a new database copied from a template migrated once per session (`CREATE DATABASE ...
TEMPLATE`, a file copy on the server, much faster than running the migrations again), dropped after the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import postgres_tier
import pytest
from sqlalchemy import make_url

from storage.migrate import upgrade_database

BACKENDS = ("sqlite", pytest.param("postgresql", marks=pytest.mark.postgres))
"""`@pytest.fixture(params=BACKENDS)`: a test of both backends, the second in the PostgreSQL tier."""


def sqlite_url(root: Path) -> str:
    return f"sqlite+aiosqlite:///{root / 'data' / 'easel.db'}"


HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
"""In the databases' names, so that a run cleans up after only the dead runs of its own machine."""


class PostgresDatabases:
    """Databases on the tier's server, named for this machine and process; the template is made on first use,
    after the databases that runs killed on this machine left behind are dropped."""

    def __init__(self, server_url: str) -> None:
        self._server = make_url(server_url).set(drivername="postgresql+asyncpg")
        self._prefix = f"easel_test_{HOST}_{os.getpid()}"
        self._template: str | None = None

    def url_of(self, name: str) -> str:
        return self._server.set(database=name).render_as_string(hide_password=False)

    @contextlib.contextmanager
    def fresh(self, migrated: bool = True) -> Iterator[str]:
        """A new database, at the schema's head or empty, dropped afterwards."""
        if not migrated:
            with self._new("template0") as url:
                yield url
            return
        if self._template is None:
            self._drop_the_dead_runs()
            template = f"{self._prefix}_template"
            self._admin(f'DROP DATABASE IF EXISTS "{template}"', f'CREATE DATABASE "{template}"')
            asyncio.run(upgrade_database(self.url_of(template)))
            self._template = template
        with self._new(self._template) as url:
            yield url

    @contextlib.contextmanager
    def _new(self, template: str) -> Iterator[str]:
        name = f"{self._prefix}_{uuid.uuid4().hex[:12]}"
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        try:
            yield self.url_of(name)
        finally:
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        if self._template is not None:
            self._admin(f'DROP DATABASE IF EXISTS "{self._template}" WITH (FORCE)')

    def _drop_the_dead_runs(self) -> None:
        names = self._admin("SELECT datname FROM pg_database WHERE datname LIKE 'easel\\_test\\_%'")
        for name in names:
            host, _, pid = name.removeprefix("easel_test_").partition("_")
            pid = pid.partition("_")[0]
            if host == HOST and pid.isdigit() and not _alive(int(pid)):
                self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _admin(self, *statements: str) -> list[str]:
        import asyncpg

        dsn = self._server.set(drivername="postgresql").render_as_string(hide_password=False)

        async def run() -> list[str]:
            """The first column of the last statement's rows."""
            connection = await asyncpg.connect(dsn)
            try:
                rows = []
                for statement in statements:
                    rows = await connection.fetch(statement)
                return [row[0] for row in rows]
            finally:
                await connection.close()

        return asyncio.run(run())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases(postgres_tier.url())
    yield databases
    databases.close()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of the test's own on each backend: SQLite's not created yet, PostgreSQL's at the schema's head
    (`Database.upgrade` makes both ready)."""
    yield from _database(request, tmp_path, migrated=True)


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of the test's own on each backend, without any table."""
    yield from _database(request, tmp_path, migrated=False)


def _database(request: pytest.FixtureRequest, tmp_path: Path, migrated: bool) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    with databases.fresh(migrated) as url:
        yield url
