"""Validated, frozen settings that the generation engine needs.

The whole-application settings (`bots.config`) embed these sections; `generation/` never reads files
or the environment itself.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Preset = Literal["kandinsky-2.2", "tiny"]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelSettings(_Section):
    """Which weights to load and where to run them."""

    preset: Preset = "kandinsky-2.2"
    prior: str = "kandinsky-community/kandinsky-2-2-prior"
    decoder: str = "kandinsky-community/kandinsky-2-2-decoder"
    inpaint_decoder: str = "kandinsky-community/kandinsky-2-2-decoder-inpaint"
    controlnet_depth_decoder: str = "kandinsky-community/kandinsky-2-2-controlnet-depth"
    depth_estimator: str = "Intel/dpt-hybrid-midas"
    """Any transformers depth-estimation model; DPT-Hybrid MiDaS is what the depth ControlNet's examples use."""
    cache_dir: str | None = None
    local_files_only: bool = False
    device: str = Field(default="auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$")
    dtype: Literal["auto", "float16", "bfloat16", "float32"] = "auto"
    cpu_offload: bool = False
    attention_slicing: bool = False
    # Off until measured on a GPU (benchmarks/gpu.py): their gain on Kandinsky's UNet is not known yet.
    channels_last: bool = False
    compile: bool = False
    preload_inpaint: bool = False
    preload_depth: bool = False
    threads: int = Field(default=0, ge=0)
    tiny_seed: int = Field(default=0, ge=0)


class DefaultsSettings(_Section):
    """What a request gets for each value its user did not name; unset values come from the preset."""

    width: int | None = None
    height: int | None = None
    steps: int | None = None
    prior_steps: int | None = None
    guidance_scale: float | None = None
    prior_guidance_scale: float | None = None
    strength: float | None = None
    remix_strength: float | None = None


class GenerationDefaults(_Section):
    """Fully resolved defaults: the preset's values overlaid with the config's."""

    width: int
    height: int
    steps: int
    prior_steps: int
    guidance_scale: float
    prior_guidance_scale: float
    strength: float
    remix_strength: float
    """How far a remix moves its image's embedding towards the prompt (the prior's emb2emb strength)."""


PRESET_DEFAULTS: dict[str, GenerationDefaults] = {
    "kandinsky-2.2": GenerationDefaults(
        width=768,
        height=768,
        steps=50,
        prior_steps=25,
        guidance_scale=4.0,
        prior_guidance_scale=4.0,
        strength=0.5,
        remix_strength=0.5,
    ),
    # Small enough that the whole bot answers in well under a second on a laptop CPU.
    "tiny": GenerationDefaults(
        width=64,
        height=64,
        steps=4,
        prior_steps=2,
        guidance_scale=4.0,
        prior_guidance_scale=4.0,
        strength=0.5,
        remix_strength=0.5,
    ),
}


def resolve_defaults(preset: Preset, overrides: DefaultsSettings) -> GenerationDefaults:
    named = overrides.model_dump(exclude_none=True)
    return PRESET_DEFAULTS[preset].model_copy(update=named)


class Limits(_Section):
    """What any single request may ask for; a request outside them is refused, never clamped."""

    max_width: int = Field(default=1024, ge=64)
    max_height: int = Field(default=1024, ge=64)
    max_pixels: int = Field(default=1024 * 1024, ge=64 * 64)
    min_steps: int = Field(default=1, ge=1)
    max_steps: int = Field(default=100, ge=1)
    # UnCLIPScheduler spaces its timesteps over (steps - 1) intervals: one prior step is undefined.
    min_prior_steps: int = Field(default=2, ge=2)
    max_prior_steps: int = Field(default=100, ge=2)
    min_guidance_scale: float = Field(default=0.0, ge=0.0)
    max_guidance_scale: float = Field(default=20.0, gt=0.0)
    max_images: int = Field(default=4, ge=1, le=4)
    max_prompt_length: int = Field(default=1000, ge=1)
    max_grid_cells: int = Field(default=12, ge=2, le=20)
    """A grid's cells at most (`/grid`): each is a job; 20 keeps a button per cell within Discord's 25."""
    # Pillow refuses more than twice its MAX_IMAGE_PIXELS (178,956,970) however it is asked.
    max_input_pixels: int = Field(default=50_000_000, ge=64 * 64, le=178_956_970)

    @model_validator(mode="after")
    def _ranges_are_ordered(self) -> Limits:
        for low, high in (
            ("min_steps", "max_steps"),
            ("min_prior_steps", "max_prior_steps"),
            ("min_guidance_scale", "max_guidance_scale"),
        ):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"{low} ({getattr(self, low)}) is greater than {high} ({getattr(self, high)})")
        return self


def defaults_problems(defaults: GenerationDefaults, limits: Limits) -> list[str]:
    """What would make the defaults themselves an invalid request under the limits."""
    ranges = {
        "width": (64, limits.max_width),
        "height": (64, limits.max_height),
        "steps": (limits.min_steps, limits.max_steps),
        "prior_steps": (limits.min_prior_steps, limits.max_prior_steps),
        "guidance_scale": (limits.min_guidance_scale, limits.max_guidance_scale),
        "prior_guidance_scale": (limits.min_guidance_scale, limits.max_guidance_scale),
    }
    problems = [
        f"defaults.{name} {getattr(defaults, name)} is outside {low}-{high} allowed by [limits]"
        for name, (low, high) in ranges.items()
        if not low <= getattr(defaults, name) <= high
    ]
    problems += [
        f"defaults.{name} must be a multiple of 64" for name in ("width", "height") if getattr(defaults, name) % 64
    ]
    if defaults.width * defaults.height > limits.max_pixels:
        problems.append(f"defaults.width x defaults.height exceeds limits.max_pixels {limits.max_pixels}")
    for name in ("strength", "remix_strength"):
        if not 0.0 < getattr(defaults, name) <= 1.0:
            problems.append(f"defaults.{name} {getattr(defaults, name)} must be above 0 and at most 1")
    return problems


class TranslationSettings(_Section):
    """Prompt translation into English, the only language Kandinsky 2.2's text encoders understand.

    `preset = "auto"` follows `[model] preset`: the tiny image model gets the tiny translator, so an
    offline `easel run` works; "real" loads `model`, "tiny" always builds the random-weight one.
    """

    enabled: bool = True
    preset: Literal["auto", "real", "tiny"] = "auto"
    model: str = "facebook/m2m100_418M"
    cache_dir: str | None = None
    local_files_only: bool = False
    cache_size: int = Field(default=1024, ge=0)
    batch_size: int = Field(default=16, ge=1)
    max_input_tokens: int = Field(default=256, ge=8)
    max_new_tokens: int = Field(default=256, ge=8)
    num_beams: int = Field(default=4, ge=1)
    tiny_seed: int = Field(default=0, ge=0)


class SafetySettings(_Section):
    """The image safety classifier that scores outputs and input images; each community's policy acts on the scores.

    `preset = "auto"` follows `[model] preset`: the tiny image model gets the tiny classifier, so an offline
    `easel run` works; "real" loads `model`, "tiny" always builds the random-weight one, whose scores
    `tiny_bias` sets (about 1 / (1 + exp(-tiny_bias)) for every image).
    """

    enabled: bool = True
    preset: Literal["auto", "real", "tiny"] = "auto"
    model: str = "Falconsai/nsfw_image_detection"
    cache_dir: str | None = None
    local_files_only: bool = False
    threshold: float = Field(default=0.8, ge=0.0, le=1.0)
    nsfw_labels: list[str] = Field(default=["nsfw"], min_length=1)
    tiny_seed: int = Field(default=0, ge=0)
    tiny_bias: float = -4.0


class PreviewSettings(_Section):
    """Live previews of running jobs: a small picture every `interval_seconds` of a job's GPU time.

    Each costs a MoVQ decode of about `size` pixels (and a safety score when a classifier is loaded), so its share
    of the GPU is about that cost over the interval (`benchmarks/engine.py` reports it as `preview_share`).
    """

    enabled: bool = True
    interval_seconds: float = Field(default=3.0, gt=0)
    size: int = Field(default=256, ge=32, le=1024)


def uses_tiny(preset: str, model_settings: ModelSettings) -> bool:
    """Whether a helper model (translation, safety) is the tiny one: asked for, or following the tiny image model."""
    return preset == "tiny" or (preset == "auto" and model_settings.preset == "tiny")
