"""Files carried through the database, for hosts that share it but no disk.

A file is named by its content (`FileStore`), so writing one that is there already changes nothing, and two
hosts writing the same file at once both succeed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import FileBlobRow
from storage.repository import Repository


class FileBlobs(Repository):
    async def put_blobs(self, files: Mapping[str, bytes]) -> None:
        """Keep the bytes of `files` (path: bytes); paths kept already are left as they are."""
        if files:
            await self._sessions.run(_put, dict(files), self._now())

    async def replace_blob(self, path: str, data: bytes) -> None:
        """Keep `data` under `path`, in place of what was kept there (a running job's latest preview)."""
        await self._sessions.run(_replace, path, data, self._now())

    async def get_blobs(self, paths: Iterable[str]) -> dict[str, bytes]:
        """The bytes of those of `paths` that are kept: a path that is not is missing from the answer."""
        wanted = sorted(set(paths))
        if not wanted:
            return {}

        def work(session: Session) -> dict[str, bytes]:
            rows = session.execute(select(FileBlobRow.path, FileBlobRow.data).where(FileBlobRow.path.in_(wanted)))
            return {path: bytes(data) for path, data in rows}

        return await self._sessions.run(work)

    async def delete_blobs(self, paths: Iterable[str]) -> None:
        doomed = sorted(set(paths))
        if doomed:

            def work(session: Session) -> None:
                session.execute(delete(FileBlobRow).where(FileBlobRow.path.in_(doomed)))

            await self._sessions.run(work)


def _put(session: Session, files: dict[str, bytes], now: datetime) -> None:
    rows = [{"path": path, "data": data, "created_at": now} for path, data in sorted(files.items())]
    session.execute(_insert(session).values(rows).on_conflict_do_nothing(index_elements=["path"]))


def _replace(session: Session, path: str, data: bytes, now: datetime) -> None:
    added = _insert(session).values(path=path, data=data, created_at=now)
    session.execute(added.on_conflict_do_update(index_elements=["path"], set_={"data": data, "created_at": now}))


def _insert(session: Session) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into `file_blobs` in the dialect's own form, which has ON CONFLICT."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(FileBlobRow)
    return sqlite.insert(FileBlobRow)
