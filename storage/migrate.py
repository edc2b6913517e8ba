"""Schema upgrades: Alembic, configured in code, so it runs from any directory and from an installed package.

To write a new migration, autogenerate it against a database at head and clean it by hand:

    alembic.command.revision(alembic_config(url), "what changes", autogenerate=True, rev_id="0002")
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from storage.engine import open_engine, opening
from storage.errors import DatabaseUnavailable

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", _escaped(str(MIGRATIONS)))
    config.set_main_option("sqlalchemy.url", _escaped(url))
    config.set_main_option("path_separator", "os")
    return config


async def upgrade_database(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision`, creating it (and a SQLite file's directory) if needed."""
    async with opening(url):  # a migration's own error is raised as it is: only the connecting is the URL's
        engine = open_engine(url)
    try:
        async with opening(url):
            connection = await engine.connect()
        try:
            async with connection.begin():
                await connection.run_sync(_upgrade, alembic_config(url), revision)
        finally:
            await connection.close()
    finally:
        await engine.dispose()


def _upgrade(connection: Connection, config: Config, revision: str) -> None:
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
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _shown(connection: Connection) -> str:
    return connection.engine.url.render_as_string(hide_password=True)


def _escaped(value: str) -> str:
    """Alembic's options go through configparser, where % starts an interpolation."""
    return value.replace("%", "%%")
