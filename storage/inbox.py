"""The inbox: updates a platform has handed over, written before the platform is told they arrived.

A platform that delivers each update until it is confirmed (Telegram's `getUpdates` offset, a webhook's answer)
may be confirmed once the update is here, and one that delivers it once (Discord) acknowledged: a kill before its
handling ends leaves the row unhandled, and the next start handles it again. Handled rows stay a while, so that
an update delivered again (confirmed too late, before a kill) is recognised by its id and not handled twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from storage.models import InboxRow
from storage.repository import Repository


class Inbox(Repository):
    async def receive_update(self, source: str, update_id: int, payload: str) -> bool:
        """Keep an update from `source` (a platform and account); False when it was already received."""
        return await self._sessions.run(_receive, source, update_id, payload, self._now())

    async def updates_handled(self, source: str, update_ids: Iterable[int]) -> None:
        await self._sessions.run(mark_handled, source, list(update_ids), self._now())

    async def unhandled_updates(self, source: str) -> list[tuple[int, str]]:
        """The updates whose handling never ended, oldest first: (update id, payload)."""

        def work(session: Session) -> list[tuple[int, str]]:
            rows = session.scalars(
                select(InboxRow)
                .where(InboxRow.source == source, InboxRow.handled_at.is_(None))
                .order_by(InboxRow.update_id)
            )
            return [(row.update_id, row.payload) for row in rows]

        return await self._sessions.run(work)

    async def prune_updates(self, source: str, kept: timedelta) -> int:
        """Forget updates handled longer than `kept` ago; how many were forgotten."""
        handled_before = self._now() - kept

        def work(session: Session) -> int:
            result = session.execute(
                delete(InboxRow).where(InboxRow.source == source, InboxRow.handled_at < handled_before)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

        return await self._sessions.run(work)


def mark_handled(session: Session, source: str, update_ids: Iterable[int], now: datetime) -> None:
    """Within the caller's transaction: a job's, so that the job and its update's handling are one."""
    session.execute(
        update(InboxRow)
        .where(InboxRow.source == source, InboxRow.update_id.in_(list(update_ids)), InboxRow.handled_at.is_(None))
        .values(handled_at=now)
    )


def _receive(session: Session, source: str, update_id: int, payload: str, now: datetime) -> bool:
    if session.get(InboxRow, (source, update_id)) is not None:
        return False
    session.add(InboxRow(source=source, update_id=update_id, payload=payload, received_at=now))
    return True
