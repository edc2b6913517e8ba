"""`/token`, the same on every surface: a new personal API token shown once to its owner alone (the earlier one
stops working), or `/token revoke`. Adapters only make sure the answer is private."""

from __future__ import annotations

from bots.core.access import Access
from bots.kit.context import Context

REVOKE = frozenset({"revoke", "off", "delete"})


async def token_reply(access: Access, context: Context, rest: str) -> str:
    if rest.strip().lower() in REVOKE:
        revoked = await access.revoke_api_token(context.actor)
        return context.text("token.revoked" if revoked else "token.none")
    token = await access.api_token(context.actor)
    return context.text("token.created", token=token, url=f"{access.base_url}/api/v1")
