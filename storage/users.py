"""Users: one row per platform account, with language, tier and ban.

Looking up (or creating) the user behind an account is the first thing every request does, so the look-ups that wait
for the database while one group is written go together in the next transaction (`storage.groups`): a burst of
first contacts takes a few transactions, not one each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.errors import NotFound
from storage.groups import Grouped
from storage.models import UserRow
from storage.records import PERMANENT, User
from storage.repository import Repository

DEFAULT_TIER = "default"


@dataclass(frozen=True)
class Account:
    """A platform account as a request names it, with what a new user is created with."""

    platform: str
    platform_user_id: str
    display_name: str | None
    language: str | None


class Users(Repository):
    _user_groups: Grouped[Account, User]

    async def get_or_create_user(
        self, platform: str, platform_user_id: str, display_name: str | None = None, language: str | None = None
    ) -> User:
        """The user behind a platform account, created on first sight.

        A known user's display name follows the platform; `language` only seeds a new user (their own choice
        is `set_user_language`).
        """
        account = Account(platform, platform_user_id, display_name, language)
        try:
            return await self._user_groups(account)
        except IntegrityError:
            # Another process created the same user between our read and our insert: it exists now.
            return await self._user_groups(account)

    async def get_user(self, user_id: int) -> User | None:
        def work(session: Session) -> User | None:
            row = session.get(UserRow, user_id)
            return None if row is None else row.record()

        return await self._sessions.run(work)

    async def set_user_language(self, user_id: int, language: str | None) -> User:
        """The language the user chose to be answered in; None returns them to their platform's."""
        return await self._update_user(user_id, chosen_language=language)

    async def chosen_languages(self) -> dict[tuple[str, str], str]:
        """Every user's own choice of language, by (platform, platform user id): few users make one, and every
        event needs it before its first reply."""

        def work(session: Session) -> dict[tuple[str, str], str]:
            rows = session.execute(
                select(UserRow.platform, UserRow.platform_user_id, UserRow.chosen_language).where(
                    UserRow.chosen_language.is_not(None)
                )
            )
            return {(platform, user_id): language for platform, user_id, language in rows if language is not None}

        return await self._sessions.run(work)

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

    def _get_or_create_users(self, session: Session, accounts: Sequence[Account]) -> list[User]:
        """A group's users in one read of each platform's accounts and one insert of the new ones."""
        rows: dict[tuple[str, str], UserRow] = {}
        for platform in {account.platform for account in accounts}:
            ids = {account.platform_user_id for account in accounts if account.platform == platform}
            found = session.scalars(
                select(UserRow).where(UserRow.platform == platform, UserRow.platform_user_id.in_(ids))
            )
            rows.update(((row.platform, row.platform_user_id), row) for row in found)
        created = []
        for account in accounts:
            key = (account.platform, account.platform_user_id)
            row = rows.get(key)
            if row is None:
                rows[key] = row = UserRow(
                    platform=account.platform,
                    platform_user_id=account.platform_user_id,
                    display_name=account.display_name,
                    language=account.language,
                    tier=DEFAULT_TIER,
                    preferences={},
                    created_at=self._now(),
                )
                created.append(row)
            elif account.display_name is not None and account.display_name != row.display_name:
                row.display_name = account.display_name
        session.add_all(created)
        session.flush()
        return [rows[(account.platform, account.platform_user_id)].record() for account in accounts]

    async def _update_user(self, user_id: int, **values: Any) -> User:
        def work(session: Session) -> User:
            row = session.scalar(update(UserRow).where(UserRow.id == user_id).values(**values).returning(UserRow))
            if row is None:
                raise NotFound("user", user_id)
            return row.record()

        return await self._sessions.run(work)
