"""`/token` and `/web`, the same on every surface: a new personal API token shown once to its owner alone (the
earlier one stops working), or `/token revoke`; a one-use sign-in link to the web pages, which also opens a
community's moderation pages when one of its moderators asks there. Adapters only make sure the answer is
private."""

from __future__ import annotations

from bots.core.access import LOGIN_MINUTES, MODERATOR_HOURS, Access
from bots.kit.context import Context
from bots.moderation.policy import Moderator, Role

REVOKE = frozenset({"revoke", "off", "delete"})


async def token_reply(access: Access, context: Context, rest: str) -> str:
    if rest.strip().lower() in REVOKE:
        revoked = await access.revoke_api_token(context.actor)
        return context.text("token.revoked" if revoked else "token.none")
    token = await access.api_token(context.actor)
    return context.text("token.created", token=token, url=f"{access.base_url}/api/v1")


async def web_reply(access: Access, context: Context, moderator: Moderator | None = None) -> str:
    link = await access.login_link(context.actor, context.place, moderator)
    if moderator is not None and moderator.community_id is not None and moderator.role >= Role.MODERATOR:
        community = context.place.community_name or moderator.community_id
        return context.text(
            "web.link_moderator", url=link, minutes=LOGIN_MINUTES, community=community, hours=MODERATOR_HOURS
        )
    return context.text("web.link", url=link, minutes=LOGIN_MINUTES)
