"""Schema upgrades: Alembic, configured in code, so it runs from any directory and from an installed package.

To write a new migration, autogenerate it against a database at head and clean it by hand:

    alembic.command.revision(alembic_config(url), "what changes", autogenerate=True, rev_id="0002")
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from storage.backup import before_migration
from storage.engine import open_engine, opening
from storage.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", _escaped(str(MIGRATIONS)))
    config.set_main_option("sqlalchemy.url", _escaped(url))
    config.set_main_option("path_separator", "os")
    return config


async def upgrade_database(url: str, revision: str = "head") -> Path | None:
    """Bring the database at `url` to `revision`, creating it (and a SQLite file's directory) if needed. A SQLite
    database whose schema this changes is first copied beside itself (`storage.backup`): the copy's path, or None."""
    async with opening(url):  # a migration's own error is raised as it is: only the connecting is the URL's
        engine = open_engine(url)
    try:
        async with opening(url):
            connection = await engine.connect()
        try:
            async with connection.begin():
                return await connection.run_sync(_upgrade, alembic_config(url), revision)
        finally:
            await connection.close()
    finally:
        await engine.dispose()


def _upgrade(connection: Connection, config: Config, revision: str) -> Path | None:
    """A schema at a revision these migrations do not know was made by a newer easel: migrating it back is not
    this code's to guess, so it is refused by name."""
    current = MigrationContext.configure(connection).get_current_revision()
    script = ScriptDirectory.from_config(config)
    if current is not None and current not in {known.revision for known in script.walk_revisions()}:
        raise DatabaseUnavailable(
            _shown(connection),
            f"its schema is at revision {current}, which this easel does not know (its newest is "
            f"{script.get_current_head()}): a newer easel has migrated it",
        )
    target = script.get_current_head() if revision == "head" else revision
    copy = None
    if current is not None and current != target:
        copy = before_migration(connection.engine.url.render_as_string(hide_password=False), current)
        if copy is not None:
            log.info("the database was copied to %s before its schema moves from %s to %s", copy, current, target)
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
    return copy


def _shown(connection: Connection) -> str:
    return connection.engine.url.render_as_string(hide_password=True)


def _escaped(value: str) -> str:
    """Alembic's options go through configparser, where % starts an interpolation."""
    return value.replace("%", "%%")
