"""Who calls from outside the chats: personal API tokens, the bot's one-use login links, and web sessions.

A login link that a moderator asks for in their community grants that community's moderation pages, with the
role the platform gave them when they asked, for MODERATOR_HOURS: the web has no platform to ask again, so a
moderator who loses the role loses the pages with their session.

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
from bots.core.types import Actor, Place
from bots.moderation.policy import Moderator, Role
from storage.database import Database
from storage.records import User

API = "api"
LOGIN = "login"
SESSION = "session"
API_PREFIX = "easel_"
"""Marks an API token for what it is (secret scanners, a reader of a leaked log)."""
LOGIN_MINUTES = 10
SESSION_DAYS = 7
MODERATOR_HOURS = 12


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_token(session: str) -> str:
    """The form token of a web session: derived from its secret, so it needs no storage, and useless without it."""
    return hmac.new(session.encode(), b"csrf", hashlib.sha256).hexdigest()


def actor_of(user: User, language: str | None = None) -> Actor:
    """The chat user a secret stands for, answered in `language` (the caller's Accept-Language, which then wins
    over a language chosen in the chat) or else in theirs."""
    if language is not None:
        return Actor(user.platform, user.platform_user_id, user.display_name, language, chose_language=True)
    return Actor(user.platform, user.platform_user_id, user.display_name, user.language)


@dataclass(frozen=True)
class Caller:
    actor: Actor
    user: User
    moderator: Moderator | None = None
    """The moderation a web session grants (from a link asked for in a community by one of its moderators)."""


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

    async def login_link(self, actor: Actor, place: Place, moderator: Moderator | None = None) -> str:
        """A link to the web pages that signs its first opener in as `actor`, valid for LOGIN_MINUTES; asked for
        by a moderator in their community (`place`), it grants that community's moderation too."""
        user = await self.accounts.user(actor)
        secret = secrets.token_urlsafe(32)
        grant = None
        if moderator is not None and moderator.community_id is not None and moderator.role >= Role.MODERATOR:
            grant = (moderator.community_id, int(moderator.role))
            await self.accounts.community(place)  # known by its name on the pages
        expires = now() + timedelta(minutes=LOGIN_MINUTES)
        await self.db.issue_token(user.id, LOGIN, digest(secret), expires, grant=grant)
        return f"{self.base_url}/web/login?token={quote(secret)}"

    async def caller(self, token: str, language: str | None = None) -> Caller | None:
        """The user an API token stands for, or None (unknown, revoked, or a banned user's: refused as a ban)."""
        return await self._holder(token, API, language)

    async def open_session(self, login: str) -> str | None:
        """A login link used: a new session's secret (for a cookie), or None when the link is spent or old."""
        taken = await self.db.take_token(digest(login), LOGIN, now())
        if taken is None:
            return None
        link, user = taken
        grant = (link.community_id, link.role) if link.community_id is not None and link.role is not None else None
        lasts = timedelta(hours=MODERATOR_HOURS) if grant else timedelta(days=SESSION_DAYS)
        session = secrets.token_urlsafe(32)
        await self.db.issue_token(user.id, SESSION, digest(session), now() + lasts, grant=grant)
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
        token, user = found
        actor = actor_of(user, language)
        moderator = None
        if token.community_id is not None and token.role is not None:
            role = Role(token.role)
            moderator = Moderator(user.platform, user.platform_user_id, token.community_id, role, user.display_name)
        return Caller(actor, self.accounts.admitted(user), moderator)
