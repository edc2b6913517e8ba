"""easel's settings: `config.toml` read once, environment overrides applied, validated and frozen.

An environment variable `EASEL_<SECTION>__<KEY>` overrides `[section] key`, its value read as a TOML
value where it parses as one (`EASEL_MODEL__CPU_OFFLOAD=true`) and as a string otherwise
(`EASEL_MODEL__PRESET=tiny`). Secrets such as platform tokens are never in the file.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bots.moderation.matching import BannedPattern, InvalidPattern, validate
from generation.config import (
    DefaultsSettings,
    GenerationDefaults,
    Limits,
    ModelSettings,
    PreviewSettings,
    SafetySettings,
    TranslationSettings,
    defaults_problems,
    resolve_defaults,
)
from generation.errors import EaselError

ENV_PREFIX = "EASEL_"
_OWNER = re.compile(r"[a-z][a-z0-9_-]*:\S+")
DEFAULT_CONFIG = Path("config.toml")


class ConfigError(EaselError):
    """The configuration cannot be used; the message says which setting and why."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


DATABASE_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
_DATABASE_URLS = "easel takes sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST/DATABASE"


class StorageSettings(_Section):
    """Relative paths are taken from the directory of the config file."""

    database_url: str = "sqlite+aiosqlite:///data/easel.db"
    outputs_dir: Path = Path("data/files")
    shared_outputs_dir: bool = False
    """True where every process on a PostgreSQL database sees the same `outputs_dir` (a network filesystem): the
    files of jobs are then not carried through the database. One process on SQLite never carries them."""
    run_dir: Path | None = None
    """Where easel processes claim the platform tokens they serve; None: the user's runtime directory, which
    all their processes on the machine share."""
    keep_days: int = Field(default=0, ge=0)
    """Days after a job ends before its images and uploads are deleted (by `easel run`, daily); 0 keeps them."""
    community_keep_days: dict[str, int] = {}
    """A community's own keep_days, by "platform:id" (a Discord guild's id, a Telegram group's chat id)."""

    @field_validator("community_keep_days")
    @classmethod
    def _communities_named(cls, days: dict[str, int]) -> dict[str, int]:
        for name, value in days.items():
            if not _OWNER.fullmatch(name):
                raise ValueError(f"{name!r} is not platform:id, e.g. telegram:-1001234567890 or discord:123456789")
            if value < 0:
                raise ValueError(f"{name}: {value} days; 0 keeps everything, more deletes after that many days")
        return days

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        """easel's storage is async: a URL of another driver would fail later, deep in SQLAlchemy."""
        try:
            driver = make_url(url).drivername
        except ArgumentError:
            raise ValueError(f"not a database URL; {_DATABASE_URLS}") from None
        if driver not in DATABASE_DRIVERS:
            raise ValueError(f"{driver} is not a driver easel speaks; {_DATABASE_URLS}")
        return url


class QueueSettings(_Section):
    max_pending_per_user: int = Field(default=5, ge=1)
    max_queue: int = Field(default=200, ge=1)
    max_wait_seconds: float = Field(default=900.0, gt=0)
    max_batch_images: int = Field(default=4, ge=1, le=16)
    fair_communities: bool = False
    position_interval_seconds: float = Field(default=30.0, ge=0)
    position_chat_interval_seconds: float = Field(default=10.0, ge=0)
    position_updates_per_second: float = Field(default=5.0, gt=0)


class WorkerSettings(_Section):
    """Who runs the jobs. On PostgreSQL the queue is shared: `easel worker` processes on any host take jobs from
    it, and a front end may leave the GPU to them (`local = false`). A worker that stops renewing its lease for
    `lease_seconds` (its process or host died) loses its jobs to the others."""

    local: bool = True
    lease_seconds: float = Field(default=30.0, ge=1)
    poll_seconds: float = Field(default=5.0, gt=0)


class TierSettings(_Section):
    """A class of users: their share of the GPU and their daily quota."""

    weight: float = Field(default=1.0, gt=0)
    images_per_day: int = Field(default=100, ge=0)
    gpu_seconds_per_day: float = Field(default=1800.0, ge=0)
    discord_roles: list[str] = []
    """Discord roles (names or ids) whose members are in this tier, unless an owner put them in another."""
    telegram_users: list[int] = []
    """Telegram user ids in this tier, unless an owner put them in another."""


class _PlatformSection(_Section):
    """What every chat platform's section has: how long to wait between tries to reach it while it cannot be
    reached (random waits up to `reconnect_first_seconds`, doubling up to `reconnect_longest_seconds`)."""

    reconnect_first_seconds: float = Field(default=1.0, gt=0)
    reconnect_longest_seconds: float = Field(default=60.0, gt=0)


class TelegramSettings(_PlatformSection):
    """The Telegram adapter. The token comes only from the environment variable named by `token_env`."""

    enabled: bool = True
    token_env: str = "TELEGRAM_BOT_TOKEN"
    api_base_url: str = "https://api.telegram.org/bot"
    file_base_url: str = "https://api.telegram.org/file/bot"
    local_mode: bool = False
    group_trigger: Literal["mention", "command", "all"] = "mention"
    max_download_mb: float = Field(default=20.0, gt=0)
    album_wait_seconds: float = Field(default=1.5, gt=0)
    progress_interval_seconds: float = Field(default=2.0, ge=0)
    messages_per_second: float = Field(default=30.0, ge=0)
    group_messages_per_minute: float = Field(default=20.0, ge=0)
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str = ""
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    webhook_secret_env: str = "TELEGRAM_WEBHOOK_SECRET"

    @model_validator(mode="after")
    def _webhook_has_an_address(self) -> TelegramSettings:
        if self.mode == "webhook" and not self.webhook_url:
            raise ValueError("telegram.mode is webhook: set telegram.webhook_url to the public HTTPS address")
        return self


class DiscordSettings(_PlatformSection):
    """The Discord adapter. The token comes only from the environment variable named by `token_env`."""

    enabled: bool = True
    token_env: str = "DISCORD_BOT_TOKEN"
    api_base_url: str = "https://discord.com/api/v10"
    gateway_url: str = "wss://gateway.discord.gg/"
    guild_ids: list[int] = []
    sync_commands: bool = False
    max_download_mb: float = Field(default=25.0, gt=0)
    progress_interval_seconds: float = Field(default=2.0, ge=0)


class ModerationSettings(_Section):
    """What holds everywhere: the bot's owners, global banned words, and the default NSFW policy."""

    owners: list[str] = []
    """Platform accounts that may do everything everywhere, as "telegram:<user id>" or "discord:<user id>"."""
    banned_words: list[str] = []
    banned_patterns: list[str] = []
    """Regular expressions, matched like banned words after normalisation."""
    nsfw_policy: Literal["blocked", "nsfw_channels", "spoiler"] = "blocked"
    moderator_role: str = "easel-moderator"
    """A Discord role whose members moderate the bot in their server, besides those with Manage Server."""
    admin_cache_seconds: float = Field(default=60.0, ge=0)
    """How long a Telegram chat's administrator list is trusted before it is asked again."""

    @model_validator(mode="after")
    def _owners_and_patterns_are_usable(self) -> ModerationSettings:
        for owner in self.owners:
            if not _OWNER.fullmatch(owner):
                raise ValueError(f"moderation.owners: {owner!r} is not platform:user id, e.g. telegram:123456789")
        for text, regex in [(word, False) for word in self.banned_words] + [(p, True) for p in self.banned_patterns]:
            try:
                validate(BannedPattern(text, regex))
            except InvalidPattern as error:
                raise ValueError(f"moderation: {error}") from None
        return self


class ConsoleSettings(_Section):
    """The operator's console."""

    language: str = ""
    """The language it answers in; empty: the system locale (LC_ALL, LC_MESSAGES, LANG), else English."""


class LoggingSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"
    """json: one object per line (journald, log shippers), a job's id, user, community, operation and durations
    as keys of their own."""


class Settings(_Section):
    model: ModelSettings = ModelSettings()
    defaults: DefaultsSettings = DefaultsSettings()
    limits: Limits = Limits()
    storage: StorageSettings = StorageSettings()
    queue: QueueSettings = QueueSettings()
    worker: WorkerSettings = WorkerSettings()
    tiers: dict[str, TierSettings] = {"default": TierSettings()}
    telegram: TelegramSettings = TelegramSettings()
    discord: DiscordSettings = DiscordSettings()
    console: ConsoleSettings = ConsoleSettings()
    moderation: ModerationSettings = ModerationSettings()
    translation: TranslationSettings = TranslationSettings()
    safety: SafetySettings = SafetySettings()
    previews: PreviewSettings = PreviewSettings()
    logging: LoggingSettings = LoggingSettings()

    def tier(self, name: str) -> TierSettings:
        """Unknown tier names (a tier removed from the config) fall back to the default tier."""
        return self.tiers.get(name) or self.tiers["default"]

    @model_validator(mode="after")
    def _default_tier_exists(self) -> Settings:
        if "default" not in self.tiers:
            raise ValueError("tiers.default is required: it applies to every user without a tier")
        return self

    @property
    def generation_defaults(self) -> GenerationDefaults:
        return resolve_defaults(self.model.preset, self.defaults)

    @model_validator(mode="after")
    def _defaults_fit_the_limits(self) -> Settings:
        problems = defaults_problems(self.generation_defaults, self.limits)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read `path` (or ./config.toml when it exists) and the environment into validated settings."""
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    if path is None and DEFAULT_CONFIG.is_file():
        path = DEFAULT_CONFIG
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    _apply_environment(data, environ)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_describe(error, path)) from None
    return _resolve_paths(settings, path.parent if path is not None else Path.cwd())


def _resolve_paths(settings: Settings, base: Path) -> Settings:
    storage = settings.storage
    url = storage.database_url
    prefix = "sqlite+aiosqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        url = prefix + str((base / url[len(prefix) :]).resolve())
    outputs = storage.outputs_dir if storage.outputs_dir.is_absolute() else (base / storage.outputs_dir).resolve()
    run_dir = storage.run_dir if storage.run_dir is None else (base / storage.run_dir).resolve()
    resolved = storage.model_copy(update={"database_url": url, "outputs_dir": outputs, "run_dir": run_dir})
    return settings.model_copy(update={"storage": resolved})


def _apply_environment(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        data.setdefault(section, {})[key] = _env_value(raw)


def _env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        return raw


def _describe(error: ValidationError, path: Path | None) -> str:
    where = f" in {path}" if path else ""
    lines = []
    for problem in error.errors():
        if problem["loc"]:
            setting = ".".join(str(part) for part in problem["loc"])
            shown = "" if setting.endswith("database_url") else f" (got {problem.get('input')!r})"  # a password
            lines.append(f"{setting}: {problem['msg']}{shown}")
        else:
            lines.append(str(problem["ctx"]["error"]) if "error" in problem.get("ctx", {}) else problem["msg"])
    return f"invalid configuration{where}: " + "; ".join(lines)


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
        return (environ.get(name) or "").strip() or None if enabled else None

    raw = next((text for name in ("LC_ALL", "LC_MESSAGES", "LANG") if (text := environ.get(name))), "")
    locale = raw.split(".")[0]
    return Environment(
        telegram_token=value(settings.telegram.token_env, settings.telegram.enabled),
        discord_token=value(settings.discord.token_env, settings.discord.enabled),
        telegram_webhook_secret=value(settings.telegram.webhook_secret_env, settings.telegram.enabled),
        locale=None if locale in ("", "C", "POSIX") else locale,
    )
