"""What easel takes from the environment besides settings, read once at start-up: the platform tokens and the
webhook secret (never in the file, never logged), and the system's language.

A secret named `NAME` (a setting's `token_env`) is read from the variable `NAME`, else from the file that
`NAME_FILE` names (Docker's and compose's secrets convention), else from `$CREDENTIALS_DIRECTORY/NAME` (systemd's
`LoadCredential=NAME:...`), so that it need not sit in the environment of the process.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bots.config import ConfigError, Settings


@dataclass(frozen=True)
class Environment:
    """What easel takes from the environment besides settings, read once at start-up: the platform tokens
    and the webhook secret (never in the file, never logged), and the system's language."""

    telegram_token: str | None = field(default=None, repr=False)
    discord_token: str | None = field(default=None, repr=False)
    telegram_webhook_secret: str | None = field(default=None, repr=False)
    locale: str | None = None


def read_environment(settings: Settings, environ: Mapping[str, str] | None = None) -> Environment:
    """Tokens of disabled platforms are not read: a disabled adapter never starts."""
    environ = os.environ if environ is None else environ

    def value(name: str, enabled: bool = True) -> str | None:
        return secret(name, environ) if enabled else None

    raw = next((text for name in ("LC_ALL", "LC_MESSAGES", "LANG") if (text := environ.get(name))), "")
    locale = raw.split(".")[0]
    return Environment(
        telegram_token=value(settings.telegram.token_env, settings.telegram.enabled),
        discord_token=value(settings.discord.token_env, settings.discord.enabled),
        telegram_webhook_secret=value(settings.telegram.webhook_secret_env, settings.telegram.enabled),
        locale=None if locale in ("", "C", "POSIX") else locale,
    )


def secret(name: str, environ: Mapping[str, str]) -> str | None:
    """The secret `name` from its variable, its `_FILE` variable's file, or systemd's credentials directory."""
    given = (environ.get(name) or "").strip()
    if given:
        return given
    where = environ.get(f"{name}_FILE")
    credentials = environ.get("CREDENTIALS_DIRECTORY")
    if not where and credentials and (Path(credentials) / name).is_file():
        where = str(Path(credentials) / name)
    if not where:
        return None
    try:
        return Path(where).read_text(encoding="utf-8").strip() or None
    except OSError as error:
        raise ConfigError(f"{name}: the file {where} cannot be read: {error.strerror}") from None
