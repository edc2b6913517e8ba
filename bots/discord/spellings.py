"""The catalogue's commands as Discord shows them, and the help that lists them with their descriptions."""

from __future__ import annotations

from bots.kit.catalogue import Audience, Capability, commands_for
from bots.texts import render

CAPABILITIES = frozenset({Capability.COMMUNITIES, Capability.CHANNELS})

SPELLINGS: dict[str, str] = {
    "imagine": "/imagine",
    "edit": "/edit",
    "outpaint": "/outpaint",
    "remix": "/remix",
    "depth": "/depth",
    "inpaint": "/inpaint",
    "mix": "/mix",
    "grid": "/grid",
    "history": "/history",
    "queue": "/queue",
    "quota": "/quota",
    "cancel": "/cancel",
    "settings": "/settings",
    "styles": "/styles",
    "language": "/language",
    "token": "/token",
    "web": "/web",
    "help": "/help",
    "mod.help": "/mod help",
    "mod.banword.add": "/mod banword add",
    "mod.banword.remove": "/mod banword remove",
    "mod.banword.list": "/mod banword list",
    "mod.ban": "/mod ban",
    "mod.unban": "/mod unban",
    "mod.nsfw": "/mod nsfw",
    "mod.limits": "/mod limits",
    "mod.channels": "/mod channels",
    "mod.log": "/mod log",
    "mod.export": "/mod export",
    "mod.delete": "Delete button",
    "mod.purge": "/mod purge",
    "mod.tier": "/mod tier",
    "mod.style.add": "/mod style add",
    "mod.style.remove": "/mod style remove",
    "mod.negative": "/mod negative",
}
"""Catalogue name -> how Discord shows it: a slash command (a group stands for its subcommands), or a button."""


def description_key(name: str) -> str:
    """`imagine` -> `discord.command.imagine`, `mod.banword.add` -> `discord.mod.command.banword_add`: the texts
    that describe the commands in Discord's menu, and in the help."""
    if name.startswith("mod."):
        return "discord.mod.command." + name.removeprefix("mod.").replace(".", "_")
    return f"discord.command.{name}"


def help_text(audience: Audience, language: str | None) -> str:
    """The commands for `audience`, one a line, in the catalogue's order."""
    return "\n".join(
        f"**{SPELLINGS[command.name]}** — {render(description_key(command.name), language)}"
        for command in commands_for(CAPABILITIES)
        if command.audience is audience
    )
