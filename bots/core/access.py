"""Who calls from outside the chats: personal API tokens, the bot's one-use login links, and web sessions.

Each secret is 32 random bytes, shown once and kept only as its SHA-256 (a slow hash adds nothing to a secret
that cannot be guessed). A presented secret is hashed and looked up by that hash, so no comparison ever runs
over the secret itself; the stored hash is then compared once more with `hmac.compare_digest`, in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from bots.core.accounts import Accounts, now
from bots.core.types import Actor
from storage.database import Database
from storage.records import User

API = "api"
LOGIN = "login"
SESSION = "session"
API_PREFIX = "easel_"
"""Marks an API token for what it is (secret scanners, a reader of a leaked log)."""
LOGIN_MINUTES = 10
SESSION_DAYS = 7


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_token(session: str) -> str:
    """The form token of a web session: derived from its secret, so it needs no storage, and useless without it."""
    return hmac.new(session.encode(), b"csrf", hashlib.sha256).hexdigest()


def actor_of(user: User, language: str | None = None) -> Actor:
    """The chat user a secret stands for, answered in `language` (the caller's Accept-Language) or else theirs."""
    return Actor(user.platform, user.platform_user_id, user.display_name, language or user.language)


@dataclass(frozen=True)
class Caller:
    actor: Actor
    user: User


class Access:
    def __init__(self, db: Database, accounts: Accounts, base_url: str) -> None:
        self.db = db
        self.accounts = accounts
        self.base_url = base_url.rstrip("/")
        """Where the web pages are (`[http] public_url`, else the address the server listens on)."""

    async def api_token(self, actor: Actor) -> str:
        """A new personal API token, shown once: the user's earlier one stops working in the same write."""
        user = await self.accounts.user(actor)
        token = API_PREFIX + secrets.token_urlsafe(32)
        await self.db.issue_token(user.id, API, digest(token), None, only=True)
        return token

    async def revoke_api_token(self, actor: Actor) -> bool:
        """Whether there was a token to revoke."""
        user = await self.accounts.user(actor)
        return await self.db.revoke_tokens(user.id, API) > 0

    async def login_link(self, actor: Actor) -> str:
        """A link to the web pages that signs its first opener in as `actor`, for LOGIN_MINUTES."""
        user = await self.accounts.user(actor)
        secret = secrets.token_urlsafe(32)
        await self.db.issue_token(user.id, LOGIN, digest(secret), now() + timedelta(minutes=LOGIN_MINUTES))
        return f"{self.base_url}/web/login?token={quote(secret)}"

    async def caller(self, token: str, language: str | None = None) -> Caller | None:
        """The user an API token stands for, or None (unknown, revoked, or a banned user's: refused as a ban)."""
        return await self._holder(token, API, language)

    async def open_session(self, login: str) -> str | None:
        """A login link used: a new session's secret (for a cookie), or None when the link is spent or old."""
        user = await self.db.take_token(digest(login), LOGIN, now())
        if user is None:
            return None
        session = secrets.token_urlsafe(32)
        await self.db.issue_token(user.id, SESSION, digest(session), now() + timedelta(days=SESSION_DAYS))
        return session

    async def session_caller(self, session: str, language: str | None = None) -> Caller | None:
        return await self._holder(session, SESSION, language)

    async def end_session(self, caller: Caller, session: str) -> None:
        await self.db.revoke_tokens(caller.user.id, SESSION, digest(session))

    async def _holder(self, secret: str, kind: str, language: str | None) -> Caller | None:
        hashed = digest(secret)
        found = await self.db.token_user(hashed, kind, now())
        if found is None or not hmac.compare_digest(found[0].token_hash, hashed):
            return None
        actor = actor_of(found[1], language)
        return Caller(actor, await self.accounts.user(actor))
