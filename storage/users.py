"""Users: one row per platform account, with language, tier and ban."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from storage.errors import NotFound
from storage.models import UserRow
from storage.records import PERMANENT, User
from storage.repository import Repository

DEFAULT_TIER = "default"


class Users(Repository):
    async def get_or_create_user(
        self, platform: str, platform_user_id: str, display_name: str | None = None, language: str | None = None
    ) -> User:
        """The user behind a platform account, created on first sight.

        A known user's display name follows the platform; their language does not, because it may be their
        own choice (`set_user_language`), so `language` only seeds a new user.
        """
        try:
            return await self._get_or_create_user(platform, platform_user_id, display_name, language)
        except IntegrityError:
            # Another process created the same user between our read and our insert: it exists now.
            return await self._get_or_create_user(platform, platform_user_id, display_name, language)

    async def get_user(self, user_id: int) -> User | None:
        async with self._sessions() as session:
            row = await session.get(UserRow, user_id)
            return None if row is None else row.record()

    async def set_user_language(self, user_id: int, language: str | None) -> User:
        return await self._update_user(user_id, language=language)

    async def set_user_preferences(self, user_id: int, preferences: dict[str, Any]) -> User:
        """Replace the user's request defaults."""
        return await self._update_user(user_id, preferences=preferences)

    async def set_user_tier(self, user_id: int, tier: str) -> User:
        return await self._update_user(user_id, tier=tier)

    async def ban_user(self, user_id: int, until: datetime | None, reason: str) -> User:
        """Ban until `until`, or for good (`banned_until` is `PERMANENT`) when it is None; replaces an earlier ban."""
        return await self._update_user(user_id, banned_until=PERMANENT if until is None else until, ban_reason=reason)

    async def unban_user(self, user_id: int) -> User:
        return await self._update_user(user_id, banned_until=None, ban_reason=None)

    async def _get_or_create_user(
        self, platform: str, platform_user_id: str, display_name: str | None, language: str | None
    ) -> User:
        async with self._sessions.begin() as session:
            row = await session.scalar(
                select(UserRow).where(UserRow.platform == platform, UserRow.platform_user_id == platform_user_id)
            )
            if row is None:
                row = UserRow(
                    platform=platform,
                    platform_user_id=platform_user_id,
                    display_name=display_name,
                    language=language,
                    tier=DEFAULT_TIER,
                    preferences={},
                    created_at=self._now(),
                )
                session.add(row)
                await session.flush()
            elif display_name is not None and display_name != row.display_name:
                row.display_name = display_name
            return row.record()

    async def _update_user(self, user_id: int, **values: Any) -> User:
        async with self._sessions.begin() as session:
            row = await session.scalar(update(UserRow).where(UserRow.id == user_id).values(**values).returning(UserRow))
            if row is None:
                raise NotFound("user", user_id)
            return row.record()
