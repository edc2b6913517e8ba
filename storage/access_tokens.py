"""The secrets that stand for a user outside the chats, by their hash: what was shown once is never stored."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from storage.columns import as_utc
from storage.models import AccessTokenRow, UserRow
from storage.records import AccessToken, User
from storage.repository import Repository


class AccessTokens(Repository):
    async def issue_token(
        self,
        user_id: int,
        kind: str,
        token_hash: str,
        expires_at: datetime | None,
        *,
        only: bool = False,
        grant: tuple[str, int] | None = None,
    ) -> AccessToken:
        """Keep a new secret's hash, with the moderation it grants (a community's platform id, a role); with `only`,
        every earlier one of the same kind is revoked in the same transaction (a new API token replaces the old).
        Secrets of any user that have expired go too."""
        created = self._now()

        def work(session: Session) -> AccessToken:
            session.execute(delete(AccessTokenRow).where(AccessTokenRow.expires_at <= created))
            if only:
                session.execute(
                    delete(AccessTokenRow).where(AccessTokenRow.user_id == user_id, AccessTokenRow.kind == kind)
                )
            expires = None if expires_at is None else as_utc(expires_at)
            row = AccessTokenRow(
                token_hash=token_hash,
                kind=kind,
                user_id=user_id,
                created_at=created,
                expires_at=expires,
                community_id=grant[0] if grant else None,
                role=grant[1] if grant else None,
            )
            session.add(row)
            session.flush()
            return row.record()

        return await self._sessions.run(work)

    async def token_user(self, token_hash: str, kind: str, now: datetime) -> tuple[AccessToken, User] | None:
        """The secret and its user, while it has not expired."""

        def work(session: Session) -> tuple[AccessToken, User] | None:
            found = session.execute(
                select(AccessTokenRow, UserRow)
                .join(UserRow, UserRow.id == AccessTokenRow.user_id)
                .where(AccessTokenRow.token_hash == token_hash, AccessTokenRow.kind == kind)
            ).first()
            if found is None:
                return None
            token, user = found[0].record(), found[1].record()
            if token.expires_at is not None and as_utc(now) >= token.expires_at:
                return None
            return token, user

        return await self._sessions.run(work)

    async def take_token(self, token_hash: str, kind: str, now: datetime) -> tuple[AccessToken, User] | None:
        """A one-use secret and its user, and the secret gone: of two requests with the same link, one gets them."""

        def work(session: Session) -> tuple[AccessToken, User] | None:
            row = session.get(AccessTokenRow, token_hash)
            if row is None or row.kind != kind:
                return None
            expired = row.expires_at is not None and as_utc(now) >= row.expires_at
            removed = session.execute(delete(AccessTokenRow).where(AccessTokenRow.token_hash == token_hash))
            if expired or not removed.rowcount:  # type: ignore[attr-defined]
                return None
            user = session.get(UserRow, row.user_id)
            return None if user is None else (row.record(), user.record())

        return await self._sessions.run(work)

    async def revoke_tokens(self, user_id: int, kind: str, token_hash: str | None = None) -> int:
        """How many of the user's secrets of `kind` (or the one named by `token_hash`) were revoked."""

        def work(session: Session) -> int:
            query = delete(AccessTokenRow).where(AccessTokenRow.user_id == user_id, AccessTokenRow.kind == kind)
            if token_hash is not None:
                query = query.where(AccessTokenRow.token_hash == token_hash)
            return int(session.execute(query).rowcount)  # type: ignore[attr-defined]

        return await self._sessions.run(work)
