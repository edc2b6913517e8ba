"""Schema upgrades: Alembic, configured in code, so it runs from any directory and from an installed package.

To write a new migration, autogenerate it against a database at head and clean it by hand:

    alembic.command.revision(alembic_config(url), "what changes", autogenerate=True, rev_id="0002")
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

from storage.engine import open_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", _escaped(str(MIGRATIONS)))
    config.set_main_option("sqlalchemy.url", _escaped(url))
    config.set_main_option("path_separator", "os")
    return config


async def upgrade_database(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision`, creating it (and a SQLite file's directory) if needed."""
    engine = open_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade, alembic_config(url), revision)
    finally:
        await engine.dispose()


def _upgrade(connection: Connection, config: Config, revision: str) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _escaped(value: str) -> str:
    """Alembic's options go through configparser, where % starts an interpolation."""
    return value.replace("%", "%%")
