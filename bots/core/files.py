"""The files of jobs (uploads kept as inputs, the images made) on this host, and between hosts.

Every process keeps files in its own `FileStore`. Processes that share a PostgreSQL database may share no disk
(a GPU host, a front end on another machine): then each file a job needs or makes is also written to the
database before the job that refers to it is, and a process that lacks one fetches it before using it. An
operator whose hosts do share `outputs_dir` turns this off (`storage.shared_outputs_dir`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from pathlib import Path

from storage import Database, FileStore, StoredFile

log = logging.getLogger(__name__)


class Files:
    def __init__(self, store: FileStore, carrier: Database | None = None) -> None:
        """`carrier`: the database that carries files between hosts; None where they share a disk or only one
        process uses the store."""
        self.store = store
        self._carrier = carrier

    @property
    def carried(self) -> bool:
        return self._carrier is not None

    def put(self, data: bytes, suffix: str, kind: str = "outputs") -> StoredFile:
        return self.store.put(data, suffix, kind)

    def read(self, relative: str) -> bytes:
        return self.store.read(relative)

    def path_of(self, relative: str) -> Path:
        return self.store.path_of(relative)

    async def share(self, paths: Iterable[str]) -> None:
        """Make files of this host's store readable by the others: before a row that names them is written."""
        if self._carrier is None:
            return
        wanted = sorted(set(paths))
        if wanted:
            data = await asyncio.to_thread(lambda: {path: self.store.read(path) for path in wanted})
            await self._carrier.put_blobs(data)

    async def fetch(self, paths: Iterable[str]) -> None:
        """Bring the files another host made into this host's store, before they are read or sent. A file that
        is nowhere stays missing: reading it fails as it would have without a carrier, and is logged here."""
        if self._carrier is None:
            return
        missing = await asyncio.to_thread(lambda: sorted({path for path in paths if not self.store.holds(path)}))
        if not missing:
            return
        found = await self._carrier.get_blobs(missing)
        await asyncio.to_thread(self._restore, found)
        lost = [path for path in missing if path not in found]
        if lost:
            log.error("file(s) %s are neither on this host nor in the database", ", ".join(lost))

    async def remove(self, paths: Iterable[str]) -> None:
        doomed = sorted(set(paths))
        await asyncio.to_thread(self._unlink, doomed)
        if self._carrier is not None:
            await self._carrier.delete_blobs(doomed)

    def _restore(self, found: dict[str, bytes]) -> None:
        for path, data in found.items():
            self.store.restore(path, data)

    def _unlink(self, paths: list[str]) -> None:
        for path in paths:
            self.store.path_of(path).unlink(missing_ok=True)
