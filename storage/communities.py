"""Communities: Discord guilds and Telegram group chats, with their settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.errors import NotFound
from storage.models import CommunityRow
from storage.records import Community
from storage.repository import Repository


class Communities(Repository):
    async def get_or_create_community(self, platform: str, platform_id: str, name: str | None = None) -> Community:
        """The community for a guild or chat id, created on first sight; a given name replaces the stored one."""
        try:
            return await self._get_or_create_community(platform, platform_id, name)
        except IntegrityError:
            # Another process created the same community between our read and our insert: it exists now.
            return await self._get_or_create_community(platform, platform_id, name)

    async def get_community(self, community_id: int) -> Community | None:
        def work(session: Session) -> Community | None:
            row = session.get(CommunityRow, community_id)
            return None if row is None else row.record()

        return await self._sessions.run(work)

    async def find_community(self, platform: str, platform_id: str) -> Community | None:
        """The community if it was ever seen; unlike `get_or_create_community`, never creates it."""

        def work(session: Session) -> Community | None:
            row = session.scalar(
                select(CommunityRow).where(CommunityRow.platform == platform, CommunityRow.platform_id == platform_id)
            )
            return None if row is None else row.record()

        return await self._sessions.run(work)

    async def update_community_settings(self, community_id: int, changes: Mapping[str, Any]) -> Community:
        """Merge `changes` into the settings (top-level keys replaced) in one transaction, so concurrent
        changes to different keys do not undo each other."""

        def work(session: Session) -> Community:
            row = session.get(CommunityRow, community_id, with_for_update=True)
            if row is None:
                raise NotFound("community", community_id)
            row.settings = {**row.settings, **changes}
            return row.record()

        return await self._sessions.run(work)

    async def _get_or_create_community(self, platform: str, platform_id: str, name: str | None) -> Community:
        def work(session: Session) -> Community:
            row = session.scalar(
                select(CommunityRow).where(CommunityRow.platform == platform, CommunityRow.platform_id == platform_id)
            )
            if row is None:
                row = CommunityRow(
                    platform=platform, platform_id=platform_id, name=name, settings={}, created_at=self._now()
                )
                session.add(row)
                session.flush()
            elif name is not None and name != row.name:
                row.name = name
            return row.record()

        return await self._sessions.run(work)
