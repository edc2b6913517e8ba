"""The same commands on Telegram, Discord and the console: each serves exactly the catalogue's commands its
platform can show, read from what it really registers (Telegram's routes and menus, Discord's command tree,
the console's handlers)."""

from __future__ import annotations

from typing import Any

from discord import app_commands

import bots.console.adapter as console
import bots.discord.spellings as discord_spellings
import bots.telegram.commands as telegram
from bots.config import load_settings
from bots.discord.commands import build_commands
from bots.kit.catalogue import CATALOGUE, Audience, Capability, commands_for

EVERYONE = {command.name for command in CATALOGUE if command.audience is Audience.EVERYONE}
MODERATION = {command.name for command in CATALOGUE if command.audience is Audience.MODERATORS}


def names(capabilities: frozenset[Capability]) -> set[str]:
    return {command.name for command in commands_for(capabilities)}


def test_every_platform_offers_every_users_command() -> None:
    assert set(telegram.SPELLINGS) >= EVERYONE
    assert set(discord_spellings.SPELLINGS) >= EVERYONE
    assert names(console.CAPABILITIES) == EVERYONE, "a terminal has no community to moderate"


def test_chat_platforms_offer_the_same_moderation_but_what_a_telegram_group_cannot_have() -> None:
    discord_moderation = set(discord_spellings.SPELLINGS) & MODERATION
    telegram_moderation = set(telegram.SPELLINGS) & MODERATION
    assert discord_moderation == MODERATION
    assert telegram_moderation == MODERATION - {"mod.channels"}, "a Telegram group is one channel"


def test_each_spelling_table_is_the_catalogue_for_its_capabilities() -> None:
    assert set(telegram.SPELLINGS) == names(telegram.CAPABILITIES)
    assert set(discord_spellings.SPELLINGS) == names(discord_spellings.CAPABILITIES)


def test_telegram_routes_and_menus_come_from_its_spellings() -> None:
    async def handler(*_: Any) -> None:
        return None

    routes = telegram.Routes(dict.fromkeys(telegram.SPELLINGS, handler))
    for spelling in telegram.SPELLINGS.values():
        command, _, rest = spelling.partition(" ")
        assert routes.find(command, rest) is not None, spelling
    general, administrators = telegram.menus("en")
    published = {entry.command for entry in administrators}
    assert {entry.command for entry in general} == {telegram.SPELLINGS[name] for name in EVERYONE}
    assert published == {spelling.split()[0] for spelling in telegram.SPELLINGS.values()}


def test_discord_registers_exactly_its_spellings() -> None:
    registered: set[str] = set()
    for command in build_commands(load_settings(None, environ={})):
        if isinstance(command, app_commands.Group):
            leaves = (sub for sub in command.walk_commands() if isinstance(sub, app_commands.Command))
            registered |= {f"/{sub.qualified_name}" for sub in leaves}
        elif isinstance(command, app_commands.Command):
            registered.add(f"/{command.qualified_name}")
    slash = {spelling for spelling in discord_spellings.SPELLINGS.values() if spelling.startswith("/")}
    assert all(any(name == s or name.startswith(s + " ") for name in registered) for s in slash), slash
    assert all(any(name == s or name.startswith(s + " ") for s in slash) for name in registered), registered


def test_the_console_serves_the_catalogues_commands_for_everyone() -> None:
    assert console.CAPABILITIES == frozenset()
    assert {name for name in vars(console.ConsoleAdapter) if name.startswith("_") and name[1:] in EVERYONE} == {
        f"_{name}" for name in EVERYONE
    }
