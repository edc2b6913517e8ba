"""Who reads the web pages: the session cookie a sign-in link set, and the CSRF token every form carries.

The cookie is HttpOnly (no script reads it), SameSite=Lax (no other site's form or image sends it), limited to
/web, and Secure where the server is reached over https. A form's token is derived from the session's secret
(`csrf_token`) and checked in constant time, so a page of another site cannot post a form as the user.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import Request, Response

from bots.core.access import Caller, csrf_token
from bots.core.facade import Core
from bots.errors import UserError

COOKIE = "easel_session"
PATH = "/web"


@dataclass(frozen=True)
class Viewer:
    caller: Caller
    session: str

    @property
    def csrf(self) -> str:
        return csrf_token(self.session)

    @property
    def language(self) -> str | None:
        return self.caller.actor.language


class SignInNeeded(Exception):
    """No session, or an ended one: the page sends its reader to sign in."""


async def viewer(core: Core, request: Request) -> Viewer:
    session = request.cookies.get(COOKIE, "")
    caller = await core.access.session_caller(session) if session else None
    if caller is None:
        raise SignInNeeded
    return Viewer(Caller(core.speaking(caller.actor), caller.user, caller.moderator), session)


def check_form(viewer: Viewer, token: str) -> None:
    if not hmac.compare_digest(viewer.csrf.encode(), token.encode()):
        raise UserError("web.expired_form")


def set_session(response: Response, session: str, secure: bool, max_age: int) -> None:
    response.set_cookie(COOKIE, session, max_age=max_age, path=PATH, secure=secure, httponly=True, samesite="lax")


def clear_session(response: Response, secure: bool) -> None:
    response.delete_cookie(COOKIE, path=PATH, secure=secure, httponly=True, samesite="lax")
