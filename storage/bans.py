"""Bans from one community (a Discord guild, a Telegram group); global bans live on the user row."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from storage.columns import as_utc
from storage.models import CommunityBanRow
from storage.records import PERMANENT, CommunityBan
from storage.repository import Repository


class CommunityBans(Repository):
    async def ban_in_community(
        self, community_id: int, user_id: int, until: datetime | None, reason: str, actor_id: int | None = None
    ) -> CommunityBan:
        """Ban until `until`, or for good when it is None; replaces an earlier ban of the same user there."""

        def work(session: Session) -> CommunityBan:
            row = session.get(CommunityBanRow, (community_id, user_id))
            if row is None:
                row = CommunityBanRow(community_id=community_id, user_id=user_id)
                session.add(row)
            row.until = PERMANENT if until is None else as_utc(until)
            row.reason = reason
            row.actor_id = actor_id
            row.created_at = self._now()
            session.flush()
            return row.record()

        return await self._sessions.run(work)

    async def unban_in_community(self, community_id: int, user_id: int) -> bool:
        """Whether there was a ban to lift."""

        def work(session: Session) -> bool:
            result = session.execute(
                delete(CommunityBanRow).where(
                    CommunityBanRow.community_id == community_id, CommunityBanRow.user_id == user_id
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

        return await self._sessions.run(work)

    async def community_ban(self, community_id: int, user_id: int) -> CommunityBan | None:
        def work(session: Session) -> CommunityBan | None:
            row = session.get(CommunityBanRow, (community_id, user_id))
            return None if row is None else row.record()

        return await self._sessions.run(work)
