"""Who asks, as easel knows them: the stored user (refused while banned everywhere) and their community."""

from __future__ import annotations

from datetime import UTC, datetime

from bots.core.types import Actor, Place
from bots.errors import UserError
from storage.database import Database
from storage.records import Community, User


class Accounts:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def user(self, actor: Actor) -> User:
        """The actor's user row, created on first contact; a global ban refuses every use case here."""
        user = await self.db.get_or_create_user(actor.platform, actor.user_id, actor.display_name, actor.language)
        return self.admitted(user)

    @staticmethod
    def admitted(user: User) -> User:
        """`user`, unless banned everywhere: then the refusal that says until when and why."""
        if user.is_banned(now()):
            assert user.banned_until is not None
            if user.banned_permanently:
                raise UserError("user.banned", reason=user.ban_reason or "-")
            raise UserError(
                "user.banned_until", until=f"{user.banned_until:%Y-%m-%d %H:%M}", reason=user.ban_reason or "-"
            )
        return user

    async def community(self, place: Place) -> Community | None:
        if place.community_id is None:
            return None
        return await self.db.get_or_create_community(place.platform, place.community_id, place.community_name)

    async def community_by_id(self, community_id: int | None) -> Community | None:
        return await self.db.get_community(community_id) if community_id is not None else None


def now() -> datetime:
    return datetime.now(UTC)
