"""easel's settings: `config.toml` read once, environment overrides applied, validated and frozen.

pydantic-settings merges them: an environment variable `EASEL_<SECTION>__<KEY>` overrides `[section] key`, at any
depth (`EASEL_TIERS__PATRON__WEIGHT=2`), its value read as the setting's type wants it: a string setting keeps
`2024` a string, a number or a flag is parsed (`EASEL_MODEL__CPU_OFFLOAD=true`), a list or a table is written
as JSON (`EASEL_MODERATION__OWNERS='["telegram:1"]'`). A bad value is named with where it came from, the file
or the variable. Secrets such as platform tokens are never in the file: they come from the environment, or from
files (`NAME_FILE`, Docker's secrets; `$CREDENTIALS_DIRECTORY/NAME`, systemd's credentials).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError
from pydantic_settings.sources.utils import parse_env_vars
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bots.config_problems import ENV_PREFIX, describe
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


STYLE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
"""What `--style` takes: one lowercase word, as people type it after the option."""


class StyleSettings(_Section):
    """A named style: `--style NAME` puts the prompt where `{prompt}` stands in `prompt` (or before it, when it has
    none) and adds `negative` to the negative prompt."""

    prompt: str = Field(min_length=1, max_length=500)
    negative: str = Field(default="", max_length=500)


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


class HttpSettings(_Section):
    """easel's own HTTP server in the `easel run` process (/healthz, /metrics); `port` 0: any free one, logged."""

    enabled: bool = False
    host: str = "127.0.0.1"
    """Where it listens: this machine only by default (0.0.0.0: every interface, behind a reverse proxy)."""
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str = ""
    """How others reach it (https://easel.example.org), for the links the bot sends; empty: http://HOST:PORT."""
    max_request_mb: float = Field(default=30.0, gt=0, le=1024)
    """The largest request body, refused (413) from its declared length before it is read."""
    max_upload_mb: float = Field(default=10.0, gt=0, le=1024)
    """The largest image a request may carry."""
    sign_in_attempts_per_minute: int = Field(default=10, ge=1, le=10_000)
    """Failed API tokens and login links one client address may present a minute, before it is refused (429)."""

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


class LoggingSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"
    """json: one object per line (journald, log shippers), a job's id, user, community, operation and durations
    as keys of their own."""


class _Environ(EnvSettingsSource):
    """The environment `load_settings` was given (the process's, or a test's), not always `os.environ`."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


_JSON_HINT = """a list or a table is written as JSON, e.g. EASEL_MODERATION__OWNERS='["telegram:1"]'"""
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("easel_settings_environ", default=None)
"""What `Settings` reads its overrides from while `load_settings` builds it; nothing when code builds one itself."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        frozen=True, extra="forbid", env_prefix=ENV_PREFIX, env_nested_delimiter="__", case_sensitive=False
    )

    model: ModelSettings = ModelSettings()
    defaults: DefaultsSettings = DefaultsSettings()
    limits: Limits = Limits()
    storage: StorageSettings = StorageSettings()
    queue: QueueSettings = QueueSettings()
    worker: WorkerSettings = WorkerSettings()
    tiers: dict[str, TierSettings] = {"default": TierSettings()}
    styles: dict[str, StyleSettings] = {}
    telegram: TelegramSettings = TelegramSettings()
    discord: DiscordSettings = DiscordSettings()
    console: ConsoleSettings = ConsoleSettings()
    moderation: ModerationSettings = ModerationSettings()
    translation: TranslationSettings = TranslationSettings()
    safety: SafetySettings = SafetySettings()
    previews: PreviewSettings = PreviewSettings()
    http: HttpSettings = HttpSettings()
    logging: LoggingSettings = LoggingSettings()

    def tier(self, name: str) -> TierSettings:
        """Unknown tier names (a tier removed from the config) fall back to the default tier."""
        return self.tiers.get(name) or self.tiers["default"]

    @model_validator(mode="after")
    def _default_tier_exists(self) -> Settings:
        if "default" not in self.tiers:
            raise ValueError("tiers.default is required: it applies to every user without a tier")
        return self

    @model_validator(mode="after")
    def _style_names_are_words(self) -> Settings:
        wrong = [name for name in self.styles if not STYLE_NAME.fullmatch(name)]
        if wrong:
            raise ValueError(f"styles.{wrong[0]}: a style's name is lowercase letters, digits, - and _ (1-32)")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The environment over the file (given as init values), each deep-merged into the other."""
        return _Environ(settings_cls, _ENVIRON.get() or {}), init_settings

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
    _check_sections(environ)
    token = _ENVIRON.set(environ)
    try:
        settings = Settings(**data)
    except ValidationError as error:
        raise ConfigError(describe(error, path, environ)) from None
    except SettingsError:
        raise ConfigError(f"invalid configuration: {_not_json(environ)}; {_JSON_HINT}") from None
    finally:
        _ENVIRON.reset(token)
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


def _check_sections(environ: Mapping[str, str]) -> None:
    """A variable that names no section would be ignored: refused, like an unknown section of the file."""
    for name in environ:
        section, nested, _ = name[len(ENV_PREFIX) :].lower().partition("__")
        if name.upper().startswith(ENV_PREFIX) and nested and section not in Settings.model_fields:
            raise ConfigError(f"the environment variable {name} names no section of the settings ({section})")


def _not_json(environ: Mapping[str, str]) -> str:
    """Which variables hold a list or a table that is not JSON (what pydantic-settings could not parse)."""
    bad = []
    for name, value in environ.items():
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        model = Settings.model_fields.get(section) if name.upper().startswith(ENV_PREFIX) else None
        inner = getattr(model.annotation, "model_fields", {}).get(key) if model is not None else None
        if inner is not None and get_origin(inner.annotation) in (list, dict):
            try:
                json.loads(value)
            except ValueError:
                bad.append(f"the environment variable {name} ({value!r}) is not JSON")
    return "; ".join(bad) or "a list or a table of the environment could not be read"
