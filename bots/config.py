"""easel's settings: `config.toml` read once, environment overrides applied, validated and frozen.

An environment variable `EASEL_<SECTION>__<KEY>` overrides `[section] key`, its value read as a TOML
value where it parses as one (`EASEL_MODEL__CPU_OFFLOAD=true`) and as a string otherwise
(`EASEL_MODEL__PRESET=tiny`). Secrets such as platform tokens are never in the file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from generation.config import (
    DefaultsSettings,
    GenerationDefaults,
    Limits,
    ModelSettings,
    defaults_problems,
    resolve_defaults,
)

ENV_PREFIX = "EASEL_"
DEFAULT_CONFIG = Path("config.toml")


class ConfigError(Exception):
    """The configuration cannot be used; the message says which setting and why."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ModelSettings = ModelSettings()
    defaults: DefaultsSettings = DefaultsSettings()
    limits: Limits = Limits()

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
    return settings


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
            lines.append(f"{setting}: {problem['msg']} (got {problem.get('input')!r})")
        else:
            lines.append(str(problem["ctx"]["error"]) if "error" in problem.get("ctx", {}) else problem["msg"])
    return f"invalid configuration{where}: " + "; ".join(lines)
