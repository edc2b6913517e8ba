"""A consistent copy of a SQLite database while it is in use, and one before a migration changes its schema.

SQLite's online backup API (`sqlite3.Connection.backup`) copies the database through a connection of its own, in
one step, so within one read transaction: the copy is the database as of one moment, and in WAL mode (easel's)
writers go on meanwhile. Copied in several steps it would start over whenever easel wrote between two of them, so a
large database under steady use might never be copied. A plain file copy of a database in WAL mode can miss what
is still in its `-wal` file, or catch a transaction half written. A PostgreSQL server has its own tool (`pg_dump`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from pathlib import Path

from storage.engine import sqlite_file


class NotSQLite(ValueError):
    """The database is not a SQLite file, which only SQLite's own backup can copy."""


def back_up(url: str, target: Path, *, replace: bool = False) -> int:
    """Copy the SQLite database at `url` to `target`, written whole or not at all; its size in bytes. An existing
    `target` is refused (`FileExistsError`) unless `replace`, so that a backup is never overwritten by mistake."""
    source = sqlite_file(url)
    if source is None:
        raise NotSQLite(url)
    if not source.is_file():
        raise FileNotFoundError(f"{source} does not exist")
    if target.exists() and not replace:
        raise FileExistsError(f"{target} exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(descriptor)
    temporary = Path(name)
    try:
        with contextlib.closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)) as reading:
            with contextlib.closing(sqlite3.connect(temporary)) as writing:
                reading.backup(writing)
                writing.execute("PRAGMA journal_mode=DELETE")  # one file, whatever the source's mode
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        if replace:
            os.replace(temporary, target)
        else:
            os.link(temporary, target)  # fails if `target` appeared meanwhile
            temporary.unlink()
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target.stat().st_size


def before_migration(url: str, revision: str) -> Path | None:
    """A copy of the SQLite database at `url`, whose schema is at `revision`, beside it, before a migration changes
    it: `easel.db.before-<revision>.bak`. None for another database."""
    source = sqlite_file(url)
    if source is None:
        return None
    target = source.with_name(f"{source.name}.before-{revision}.bak")
    back_up(url, target, replace=True)
    return target
