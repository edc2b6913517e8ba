"""One process per database and per platform token.

Two processes on one SQLite database would each take the other's running jobs for abandoned ones and run them
twice, and two on one bot token fight over its updates (Telegram answers 409 Conflict). So before it opens the
database, `easel run` claims the database and every token it serves, and holds the claims for its lifetime:
- a SQLite database: an exclusive `flock` on `<database>.lock` beside it (a PostgreSQL one is shared: its queue
  lives in the database, and front ends and workers on any number of hosts take turns at it);
- a platform token: a `flock` on `<platform>-<hash>.lock` in the run directory, named by a hash of the token
  (never the token); with PostgreSQL, where front ends on several hosts share the database, also an advisory
  lock keyed by the same hash.
The kernel (or the database server, once the connection drops) releases a claim however the process ends, so a
killed process never blocks the next start. A claim held by another process refuses the start with one line
that names it. Lock files stay in place: removing one while another process opens it would let two processes
hold two different files.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from bots.config import ConfigError, Settings
from generation.errors import EaselError
from storage.engine import sqlite_file
from storage.locks import AdvisoryLocks, supports_advisory_locks

HOST = socket.gethostname()


class AlreadyServed(EaselError):
    """Another process serves this database or token; the message names it."""


def token_key(platform: str, token: str) -> int:
    """A 63-bit key for a platform's token: it names the token's locks and reveals nothing of the token."""
    digest = hashlib.sha256(f"easel:{platform}:{token}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def run_dir(settings: Settings, environ: Mapping[str, str] = os.environ) -> Path:
    """`storage.run_dir`, else this user's runtime directory, which all their easel processes on this machine
    share (so that two installations with one token meet there); created if missing."""
    chosen = settings.storage.run_dir
    runtime = environ.get("XDG_RUNTIME_DIR")
    default = Path(runtime) / "easel" if runtime else Path(tempfile.gettempdir()) / f"easel-{os.getuid()}"
    path = chosen or default
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot create the run directory {path}: {error.strerror} (storage.run_dir)") from None
    if chosen is None and path.stat().st_uid != os.getuid():
        raise ConfigError(f"{path} belongs to another user: set storage.run_dir to a directory of your own")
    return path


class Claims:
    """The claims this process holds; `release` gives them up (so does the end of the process)."""

    def __init__(self) -> None:
        self._files: list[int] = []
        self._locks: AdvisoryLocks | None = None

    def database(self, url: str) -> None:
        """A SQLite database file; other databases take part in no claim."""
        file = sqlite_file(url)
        if file is None:
            return
        file.parent.mkdir(parents=True, exist_ok=True)
        holder = self._lock_file(file.with_name(file.name + ".lock"))
        if holder is not None:
            raise AlreadyServed(
                f"another easel process ({holder}) serves the database {file}: stop it first, "
                "or give this one another storage.database_url"
            )

    def token(self, platform: str, token: str, token_env: str, directory: Path) -> None:
        holder = self._lock_file(directory / f"{platform}-{token_key(platform, token):016x}.lock")
        if holder is not None:
            raise _token_served(platform, token_env, holder)

    async def token_in_database(self, url: str, platform: str, token: str, token_env: str) -> None:
        """Front ends on several hosts share a PostgreSQL database: there the token is claimed for all of them."""
        holder = await self._take_in_database(url, token_key(platform, token))
        if holder is not None:
            raise _token_served(platform, token_env, holder)

    async def _take_in_database(self, url: str, key: int) -> str | None:
        """Take the advisory lock `key`; when another session holds it, that session's process, described."""
        if self._locks is None:
            self._locks = AdvisoryLocks(url, f"easel {_holder_record().strip()}")
        if await self._locks.take(key):
            return None
        holder = await self._locks.holder_of(key) or ""
        return _described(holder.removeprefix("easel "), always_host=True)

    async def release(self) -> None:
        for fd in self._files:
            os.close(fd)
        self._files.clear()
        if self._locks is not None:
            await self._locks.close()
            self._locks = None

    def _lock_file(self, path: Path) -> str | None:
        """Lock `path` and write this process into it; when another process holds it, that process, described."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise ConfigError(f"cannot open the lock file {path}: {error.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            record = os.pread(fd, 256, 0).decode(errors="replace")
            os.close(fd)
            return _described(record)
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, _holder_record().encode(), 0)
        self._files.append(fd)
        return None


@asynccontextmanager
async def claimed(settings: Settings, tokens: Mapping[str, str]) -> AsyncIterator[None]:
    """The database (a SQLite file) and the `tokens` (by platform) claimed for the length of the block."""
    claims = Claims()
    try:
        url = settings.storage.database_url
        claims.database(url)
        if tokens:
            directory = run_dir(settings)
            token_envs = {"telegram": settings.telegram.token_env, "discord": settings.discord.token_env}
            for platform, token in tokens.items():
                claims.token(platform, token, token_envs[platform], directory)
                if supports_advisory_locks(url):
                    await claims.token_in_database(url, platform, token, token_envs[platform])
        yield
    finally:
        await claims.release()


def _holder_record() -> str:
    return f"pid {os.getpid()} on {HOST}\n"


def _described(record: str, *, always_host: bool = False) -> str:
    """'pid 1234', with the host where it is another one (or always, for holders across a network)."""
    pid, _, host = record.strip().removeprefix("pid ").partition(" on ")
    if not pid.isdigit():
        return "pid unknown"
    return f"pid {pid}" if not host or (host == HOST and not always_host) else f"pid {pid} on {host}"


def _token_served(platform: str, token_env: str, holder: str) -> AlreadyServed:
    return AlreadyServed(
        f"another easel process ({holder}) serves the {platform} bot token in {token_env}: "
        "a token is served by one process at a time"
    )
