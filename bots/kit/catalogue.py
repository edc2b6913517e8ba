"""The catalogue of commands: what easel offers, once, for every adapter.

Each adapter serves exactly the catalogue's commands that its platform can show (`commands_for`), spelled
its own way (`/banwords` on Telegram is `/mod banword list` on Discord), and checks at start-up that it
serves each of them and nothing else, so a command added here appears on every adapter that can show it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bots.parsing import parse_grid, parse_prompt


class Audience(StrEnum):
    EVERYONE = "everyone"
    MODERATORS = "moderators"
    """Shown to moderators; the core checks the role of whoever calls, whatever the platform shows."""


class Capability(StrEnum):
    COMMUNITIES = "communities"
    """Groups or servers with members to moderate (not a console)."""
    CHANNELS = "channels"
    """Several channels in one community, which an admin may open or close to the bot (a Telegram group is one)."""


@dataclass(frozen=True)
class Command:
    name: str
    use_case: str
    """The core call it leads to, as `Core.<method>` (or `moderation.<method>`)."""
    audience: Audience = Audience.EVERYONE
    parser: Callable[[str], Any] | None = None
    """What reads its free text, when it takes any."""
    needs: frozenset[Capability] = frozenset()


def _user(name: str, use_case: str, parser: Callable[[str], Any] | None = None) -> Command:
    return Command(name, use_case, Audience.EVERYONE, parser)


def _moderation(name: str, use_case: str, *needs: Capability) -> Command:
    return Command(name, use_case, Audience.MODERATORS, None, frozenset({Capability.COMMUNITIES, *needs}))


CATALOGUE: tuple[Command, ...] = (
    _user("imagine", "submit", parse_prompt),
    _user("edit", "submit", parse_prompt),
    _user("outpaint", "submit", parse_prompt),
    _user("remix", "submit", parse_prompt),
    _user("depth", "submit", parse_prompt),
    _user("inpaint", "submit", parse_prompt),
    _user("mix", "submit", parse_prompt),
    _user("grid", "grid", parse_grid),
    _user("history", "history"),
    _user("queue", "queue"),
    _user("quota", "quota"),
    _user("cancel", "cancel"),
    _user("settings", "set_preferences", parse_prompt),
    _user("styles", "styles"),
    _user("language", "choose_language"),
    _user("token", "access.api_token"),
    _user("web", "access.login_link"),
    _user("help", "help"),
    _moderation("mod.help", "help"),
    _moderation("mod.banword.add", "moderation.add_word"),
    _moderation("mod.banword.remove", "moderation.remove_word"),
    _moderation("mod.banword.list", "moderation.words"),
    _moderation("mod.ban", "moderation.ban"),
    _moderation("mod.unban", "moderation.unban"),
    _moderation("mod.nsfw", "moderation.set_nsfw"),
    _moderation("mod.limits", "moderation.set_limits"),
    _moderation("mod.channels", "moderation.set_channels", Capability.CHANNELS),
    _moderation("mod.log", "moderation.log"),
    _moderation("mod.export", "moderation.log_csv"),
    _moderation("mod.delete", "delete"),
    _moderation("mod.purge", "purge"),
    _moderation("mod.tier", "moderation.set_tier"),
    _moderation("mod.style.add", "moderation.add_style"),
    _moderation("mod.style.remove", "moderation.remove_style"),
    _moderation("mod.negative", "moderation.set_negative"),
)


def commands_for(capabilities: Collection[Capability], audience: Audience | None = None) -> list[Command]:
    """The catalogue's commands a platform with `capabilities` can show (for `audience`, or for everyone)."""
    return [
        command for command in CATALOGUE if command.needs <= set(capabilities) and audience in (None, command.audience)
    ]


def bind(owner: object, commands: Iterable[Command]) -> dict[str, Any]:
    """Each command's handler, keyed by its catalogue name: `owner`'s method named after it (`_imagine` for
    `imagine`, `_banword_add` for `mod.banword.add`), so no command can lack a handler."""
    handlers = {}
    for command in commands:
        method = getattr(owner, "_" + command.name.removeprefix("mod.").replace(".", "_"), None)
        if method is None:
            raise RuntimeError(f"{type(owner).__name__} has no handler for the command {command.name}")
        handlers[command.name] = method
    return handlers


def check_served(surface: str, capabilities: Collection[Capability], served: Mapping[str, object]) -> None:
    """An adapter's commands, keyed by catalogue name, against the catalogue: none missing, none of its own."""
    wanted = {command.name for command in commands_for(capabilities)}
    missing, extra = sorted(wanted - set(served)), sorted(set(served) - wanted)
    if missing or extra:
        raise RuntimeError(f"{surface} serves commands unlike the catalogue: missing {missing}, not in it {extra}")
