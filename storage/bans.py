"""Bans from one community (a Discord guild, a Telegram group); global bans live on the user row."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete

from storage.columns import as_utc
from storage.models import CommunityBanRow
from storage.records import PERMANENT, CommunityBan
from storage.repository import Repository


class CommunityBans(Repository):
    async def ban_in_community(
        self, community_id: int, user_id: int, until: datetime | None, reason: str, actor_id: int | None = None
    ) -> CommunityBan:
        """Ban until `until`, or for good when it is None; replaces an earlier ban of the same user there."""
        async with self._sessions.begin() as session:
            row = await session.get(CommunityBanRow, (community_id, user_id))
            if row is None:
                row = CommunityBanRow(community_id=community_id, user_id=user_id)
                session.add(row)
            row.until = PERMANENT if until is None else as_utc(until)
            row.reason = reason
            row.actor_id = actor_id
            row.created_at = self._now()
            await session.flush()
            return row.record()

    async def unban_in_community(self, community_id: int, user_id: int) -> bool:
        """Whether there was a ban to lift."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(CommunityBanRow).where(
                    CommunityBanRow.community_id == community_id, CommunityBanRow.user_id == user_id
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def community_ban(self, community_id: int, user_id: int) -> CommunityBan | None:
        async with self._sessions() as session:
            row = await session.get(CommunityBanRow, (community_id, user_id))
            return None if row is None else row.record()
