"""What the application commands, the buttons and the menu call: the handlers the client holds."""

from __future__ import annotations

from dataclasses import dataclass

import discord

from bots.discord.buttons import Buttons
from bots.discord.images import Images
from bots.discord.lookups import Lookups
from bots.discord.moderation import ModerationActions


@dataclass(frozen=True)
class Handlers:
    """What the commands, the buttons and the menu call; the client holds one."""

    images: Images
    buttons: Buttons
    lookups: Lookups
    moderation: ModerationActions


def handlers_of(interaction: discord.Interaction) -> Handlers:
    handlers: Handlers = interaction.client.handlers  # type: ignore[attr-defined]
    return handlers
