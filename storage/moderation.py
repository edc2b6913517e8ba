"""The moderation log: who did what to whom, where and why; entries are only ever added."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import ModerationRow
from storage.records import ModerationEntry
from storage.repository import Repository


class ModerationLog(Repository):
    async def log_moderation(
        self,
        action: str,
        target: str,
        *,
        community_id: int | None = None,
        actor_id: int | None = None,
        reason: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> ModerationEntry:
        """Add an entry; `actor_id` None means easel itself acted (an automatic filter, say)."""

        def work(session: Session) -> ModerationEntry:
            row = ModerationRow(
                community_id=community_id,
                actor_id=actor_id,
                action=action,
                target=target,
                reason=reason,
                details=dict(details or {}),
                created_at=self._now(),
            )
            session.add(row)
            session.flush()
            return row.record()

        return await self._sessions.run(work)

    async def moderation_log(self, community_id: int | None, limit: int = 50) -> list[ModerationEntry]:
        """Newest first; `community_id` None gives the entries made outside any community."""

        def work(session: Session) -> list[ModerationEntry]:
            rows = session.scalars(
                select(ModerationRow)
                .where(ModerationRow.community_id == community_id)
                .order_by(ModerationRow.created_at.desc(), ModerationRow.id.desc())
                .limit(limit)
            )
            return [row.record() for row in rows]

        return await self._sessions.run(work)
