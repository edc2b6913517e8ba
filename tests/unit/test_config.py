from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from bots.config import ConfigError, load_settings
from bots.environment import read_environment
from generation.models import pick_device, pick_dtype

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_config_is_valid_and_uses_the_real_model() -> None:
    settings = load_settings(REPO / "config.toml", environ={})
    assert settings.model.preset == "kandinsky-2.2"
    assert settings.model.prior == "kandinsky-community/kandinsky-2-2-prior"
    assert settings.model.device == "auto"
    defaults = settings.generation_defaults
    assert (defaults.width, defaults.height, defaults.steps, defaults.prior_steps) == (768, 768, 50, 25)


def test_the_tiny_preset_brings_its_own_small_defaults() -> None:
    settings = load_settings(REPO / "config.toml", environ={"EASEL_MODEL__PRESET": "tiny"})
    defaults = settings.generation_defaults
    assert (defaults.width, defaults.height, defaults.steps, defaults.prior_steps) == (64, 64, 4, 2)


def test_the_unet_speed_settings_are_off_until_measured_and_can_be_turned_on(tmp_path: Path) -> None:
    shipped = load_settings(REPO / "config.toml", environ={}).model
    assert (shipped.channels_last, shipped.compile) == (False, False)
    named = load_settings(write(tmp_path, "[model]\nchannels_last = true\ncompile = true\n"), environ={}).model
    assert (named.channels_last, named.compile) == (True, True)


def test_named_defaults_win_over_the_preset(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, '[model]\npreset = "tiny"\n[defaults]\nwidth = 128\n'), environ={})
    assert settings.generation_defaults.width == 128
    assert settings.generation_defaults.height == 64


def test_environment_overrides_are_read_as_the_settings_types(tmp_path: Path) -> None:
    environ = {
        "EASEL_MODEL__CPU_OFFLOAD": "true",
        "EASEL_LIMITS__MAX_IMAGES": "2",
        "EASEL_MODEL__DECODER": "/srv/models/decoder",
        "UNRELATED": "1",
    }
    settings = load_settings(write(tmp_path, "[model]\ncpu_offload = false\n"), environ=environ)
    assert settings.model.cpu_offload is True
    assert settings.limits.max_images == 2
    assert settings.model.decoder == "/srv/models/decoder"


def test_settings_are_frozen() -> None:
    settings = load_settings(None, environ={})
    with pytest.raises(ValidationError, match="frozen"):
        settings.model.preset = "tiny"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('[model]\npreset = "sdxl"\n', "model.preset"),
        ('[model]\ndevice = "gpu"\n', "model.device"),
        ("[model]\nunknown_key = 1\n", "model.unknown_key"),
        ("[limits]\nmax_images = 9\n", "limits.max_images"),
        ("[limits]\nmin_steps = 50\nmax_steps = 10\n", "min_steps"),
        ("[defaults]\nwidth = 100\n", "defaults.width"),
        ("[defaults]\nsteps = 500\n", "defaults.steps"),
        ("[defaults]\nstrength = 0\n", "defaults.strength"),
        ("[defaults]\nremix_strength = 1.5\n", "defaults.remix_strength"),
        ("[model\npreset = 1", "not valid TOML"),
        ("[storage]\nkeep_days = -1\n", "storage.keep_days"),
        ('[storage]\ncommunity_keep_days = { "1234" = 7 }\n', "storage.community_keep_days"),
        ('[storage]\ncommunity_keep_days = { "telegram:-100" = -2 }\n', "storage.community_keep_days"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_settings(write(tmp_path, text), environ={})


def test_a_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_device_is_picked_automatically(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto") == torch.device("cuda")
    assert pick_device("cuda:1") == torch.device("cuda:1")


def test_half_precision_only_on_cuda() -> None:
    assert pick_dtype("auto", torch.device("cuda")) is torch.float16
    assert pick_dtype("auto", torch.device("cpu")) is torch.float32
    assert pick_dtype("auto", torch.device("mps")) is torch.float32
    assert pick_dtype("bfloat16", torch.device("cpu")) is torch.bfloat16


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"EASEL_MODERATION__OWNERS": '["bob"]'}, "moderation.owners"),
        ({"EASEL_MODERATION__BANNED_PATTERNS": '["(x"]'}, "'(x' cannot be banned"),
        ({"EASEL_MODERATION__BANNED_WORDS": '[" "]'}, "cannot be banned: empty"),
        ({"EASEL_MODERATION__NSFW_POLICY": "sometimes"}, "moderation.nsfw_policy"),
    ],
)
def test_moderation_settings_are_checked_at_start(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ)
    assert named in str(caught.value)


def test_logging_takes_a_level_and_a_format_and_refuses_others(tmp_path: Path) -> None:
    settings = load_settings(None, environ={"EASEL_LOGGING__LEVEL": "debug", "EASEL_LOGGING__FORMAT": "json"})
    assert (settings.logging.level, settings.logging.format) == ("debug", "json")
    with pytest.raises(ConfigError, match="logging.format"):
        load_settings(None, environ={"EASEL_LOGGING__FORMAT": "xml"})


def test_environment_overrides_reach_any_depth_and_merge_with_the_file(tmp_path: Path) -> None:
    config = write(tmp_path, "[tiers.default]\n[tiers.patron]\nweight = 3.0\nimages_per_day = 300\n")
    environ = {"EASEL_TIERS__PATRON__WEIGHT": "2", "EASEL_TIERS__GOLD__IMAGES_PER_DAY": "900"}
    settings = load_settings(config, environ=environ)
    assert (settings.tiers["patron"].weight, settings.tiers["patron"].images_per_day) == (2.0, 300)
    assert settings.tiers["gold"].images_per_day == 900 and settings.tiers["gold"].weight == 1.0


def test_a_string_setting_keeps_a_value_that_looks_like_a_number_and_lists_are_json() -> None:
    environ = {
        "EASEL_MODERATION__MODERATOR_ROLE": "2024",
        "EASEL_MODERATION__OWNERS": '["telegram:1", "discord:2"]',
        "EASEL_DISCORD__GUILD_IDS": "[10, 20]",
        "EASEL_TIERS__PATRON__TELEGRAM_USERS": "[42]",
    }
    settings = load_settings(None, environ=environ)
    assert settings.moderation.moderator_role == "2024"
    assert settings.moderation.owners == ["telegram:1", "discord:2"] and settings.discord.guild_ids == [10, 20]
    assert settings.tiers["patron"].telegram_users == [42]


@pytest.mark.parametrize(
    ("environ", "said"),
    [
        ({"EASEL_QUEUE__MAX_QUEUE": "many"}, "queue.max_queue: Input should be a valid integer"),
        ({"EASEL_TIERS__PATRON__WEIGHT": "-1"}, "from the environment variable EASEL_TIERS__PATRON__WEIGHT"),
        ({"EASEL_MODEL__PRESTE": "tiny"}, "model.preste: Extra inputs are not permitted"),
        ({"EASEL_MODERATION__OWNERS": "telegram:1"}, "EASEL_MODERATION__OWNERS ('telegram:1') is not JSON"),
        ({"EASEL_MODELS__PRESET": "tiny"}, "EASEL_MODELS__PRESET names no section of the settings (models)"),
    ],
)
def test_a_bad_value_names_the_variable_it_came_from(environ: dict[str, str], said: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(said)):
        load_settings(None, environ=environ)


def test_a_bad_value_of_the_file_names_the_file(tmp_path: Path) -> None:
    config = write(tmp_path, "[queue]\nmax_queue = 0\n")
    with pytest.raises(
        ConfigError,
        match=re.escape(f"queue.max_queue: Input should be greater than or equal to 1 (got 0), in {config}"),
    ):
        load_settings(config, environ={"EASEL_QUEUE__MAX_BATCH_IMAGES": "2"})


def test_tokens_come_from_the_variable_a_file_it_names_or_systemds_credentials(tmp_path: Path) -> None:
    settings = load_settings(None, environ={})
    (tmp_path / "telegram").write_text("123:from-a-file\n")
    (tmp_path / "credentials").mkdir()
    (tmp_path / "credentials" / "DISCORD_BOT_TOKEN").write_text("from-credentials")
    environ = {
        "TELEGRAM_BOT_TOKEN_FILE": str(tmp_path / "telegram"),
        "CREDENTIALS_DIRECTORY": str(tmp_path / "credentials"),
    }
    read = read_environment(settings, environ)
    assert (read.telegram_token, read.discord_token) == ("123:from-a-file", "from-credentials")
    assert read_environment(settings, {**environ, "TELEGRAM_BOT_TOKEN": "direct"}).telegram_token == "direct"
    with pytest.raises(ConfigError, match="TELEGRAM_BOT_TOKEN: the file /nowhere cannot be read"):
        read_environment(settings, {"TELEGRAM_BOT_TOKEN_FILE": "/nowhere"})
