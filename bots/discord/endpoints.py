"""Point discord.py at the configured REST and gateway addresses, so a REST proxy or a test fake can stand in.

discord.py has no public setting for them: `Route.BASE` is read whenever a request is built and
`DiscordWebSocket.DEFAULT_GATEWAY` whenever the gateway connects. Both are checked before they are set, so a
discord.py upgrade that drops them fails here, loudly, instead of quietly talking to discord.com.
"""

from __future__ import annotations

import discord.gateway
import discord.http
import yarl

from bots.config import DiscordSettings


def point_at(settings: DiscordSettings) -> None:
    for owner, name in ((discord.http.Route, "BASE"), (discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY")):
        if not hasattr(owner, name):
            raise RuntimeError(f"discord.py {discord.__version__} has no {owner.__name__}.{name}; see bots/discord")
    discord.http.Route.BASE = settings.api_base_url.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.gateway_url)
