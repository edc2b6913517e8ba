"""The catalogue's commands as Telegram spells them: the one table that routing and the menus come from.

A Telegram group is one channel, so the catalogue's channel commands are not served. A spelling of two
words is a subcommand: `/modlog csv` leads to `mod.export`, `/modlog` alone to `mod.log`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping

from telegram import BotCommand, Message

from bots.kit.catalogue import Audience, Capability, commands_for
from bots.kit.context import Context
from bots.texts import render

CAPABILITIES = frozenset({Capability.COMMUNITIES})
SPELLINGS: dict[str, str] = {
    "imagine": "imagine",
    "edit": "edit",
    "outpaint": "outpaint",
    "remix": "remix",
    "depth": "depth",
    "inpaint": "inpaint",
    "mix": "mix",
    "grid": "grid",
    "history": "history",
    "queue": "queue",
    "quota": "quota",
    "cancel": "cancel",
    "settings": "settings",
    "styles": "styles",
    "language": "language",
    "token": "token",
    "web": "web",
    "help": "help",
    "mod.help": "modhelp",
    "mod.banword.add": "banword",
    "mod.banword.remove": "unbanword",
    "mod.banword.list": "banwords",
    "mod.ban": "ban",
    "mod.unban": "unban",
    "mod.nsfw": "nsfw",
    "mod.limits": "limits",
    "mod.log": "modlog",
    "mod.export": "modlog csv",
    "mod.delete": "delete",
    "mod.purge": "purge",
    "mod.tier": "tier",
    "mod.style.add": "addstyle",
    "mod.style.remove": "removestyle",
    "mod.negative": "negative",
}
"""Catalogue name -> Telegram command."""
ALIASES = {"start": "help"}
"""Telegram commands that lead where another one does: /start is what a new user's client sends first."""

_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]{3,64}))?(?:\s+|$)(.*)$", re.DOTALL)

Handler = Callable[[Context, Message, str], Awaitable[None]]
"""A command's handling: the update's context, the message that carries the command, and its free text."""


def parse_command(text: str) -> tuple[str, str | None, str] | None:
    """`/name@bot rest` as (name, bot or None, rest), or None when `text` is not a command."""
    match = _COMMAND.match(text.strip())
    return None if match is None else (match.group(1), match.group(2), match.group(3))


class Routes:
    """Telegram commands (and their subcommands) to the handlers of the catalogue's commands."""

    def __init__(self, handlers: Mapping[str, Handler]) -> None:
        self._table: dict[str, dict[str, Handler]] = {}
        for name, handler in handlers.items():
            command, _, subcommand = SPELLINGS[name].partition(" ")
            self._table.setdefault(command, {})[subcommand] = handler

    def find(self, command: str, rest: str) -> tuple[Handler, str] | None:
        """The handler of `/command rest`, with the text left for it; None for a command easel does not serve."""
        command = command.lower()
        subcommands = self._table.get(ALIASES.get(command, command))
        if subcommands is None:
            return None
        words = rest.split(maxsplit=1)
        if words and words[0].lower() in subcommands:
            return subcommands[words[0].lower()], words[1] if len(words) > 1 else ""
        handler = subcommands.get("")
        return None if handler is None else (handler, rest)


def menus(language: str | None) -> tuple[list[BotCommand], list[BotCommand]]:
    """Everyone's command menu, and group administrators' (everyone's, then the moderation commands), in
    `language`; a subcommand is reached through its command's menu entry."""
    general: list[BotCommand] = []
    moderation: list[BotCommand] = []
    for command in commands_for(CAPABILITIES):
        spelling = SPELLINGS[command.name]
        if " " in spelling:
            continue
        if command.audience is Audience.MODERATORS:
            moderation.append(BotCommand(spelling, render(f"telegram.mod.command.{spelling}", language)))
        else:
            general.append(BotCommand(spelling, render(f"telegram.command.{spelling}", language)))
    return general, general + moderation
