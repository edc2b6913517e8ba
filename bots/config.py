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

from pydantic import BaseModel, ConfigDict, ValidationError

from generation.config import DefaultsSettings, GenerationDefaults, Limits, ModelSettings, resolve_defaults

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
    _check_consistency(settings)
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
        setting = ".".join(str(part) for part in problem["loc"])
        lines.append(f"{setting}: {problem['msg']} (got {problem.get('input')!r})")
    return f"invalid configuration{where}: " + "; ".join(lines)


def _check_consistency(settings: Settings) -> None:
    """The defaults must themselves be a valid request under the limits."""
    defaults, limits = settings.generation_defaults, settings.limits
    problems = []
    if not 64 <= defaults.width <= limits.max_width or defaults.width % 64:
        problems.append(f"defaults.width {defaults.width} must be a multiple of 64 up to limits.max_width {limits.max_width}")
    if not 64 <= defaults.height <= limits.max_height or defaults.height % 64:
        problems.append(f"defaults.height {defaults.height} must be a multiple of 64 up to limits.max_height {limits.max_height}")
    if defaults.width * defaults.height > limits.max_pixels:
        problems.append(f"defaults.width x height exceeds limits.max_pixels {limits.max_pixels}")
    if not limits.min_steps <= defaults.steps <= limits.max_steps:
        problems.append(f"defaults.steps {defaults.steps} is outside limits {limits.min_steps}-{limits.max_steps}")
    if not limits.min_prior_steps <= defaults.prior_steps <= limits.max_prior_steps:
        problems.append(
            f"defaults.prior_steps {defaults.prior_steps} is outside limits {limits.min_prior_steps}-{limits.max_prior_steps}"
        )
    for name in ("guidance_scale", "prior_guidance_scale"):
        value = getattr(defaults, name)
        if not limits.min_guidance_scale <= value <= limits.max_guidance_scale:
            problems.append(f"defaults.{name} {value} is outside limits {limits.min_guidance_scale}-{limits.max_guidance_scale}")
    if not 0.0 < defaults.strength <= 1.0:
        problems.append(f"defaults.strength {defaults.strength} must be above 0 and at most 1")
    if problems:
        raise ConfigError("invalid configuration: " + "; ".join(problems))
