"""What someone asked for, before validation: the one input form of every surface (chat, console, CLI).

The prompt parser, Discord's slash options, `/settings` preferences and `easel generate` all produce
`Options`; `build_request` turns an `Ask` into a validated `GenerationRequest` the same way for all of
them, so a request that works in one place works in every other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from generation.config import GenerationDefaults, Limits
from generation.errors import InvalidRequest
from generation.images import AlphaMask, MaskImage, MaskSpec, RegionMask, decode_image, has_alpha
from generation.requests import GenerationRequest, MixInput, Operation, make_request


@dataclass(frozen=True)
class Options:
    """The values a user may name; None means "not named", so the defaults (or another layer) decide."""

    width: int | None = None
    height: int | None = None
    steps: int | None = None
    prior_steps: int | None = None
    guidance_scale: float | None = None
    prior_guidance_scale: float | None = None
    strength: float | None = None
    count: int | None = None
    seed: int | None = None
    negative_prompt: str | None = None
    mask: RegionMask | None = None
    weights: tuple[float, ...] | None = None
    language: str | None = None
    zoom: float | None = None
    pan: str | None = None
    aspect: tuple[int, int] | None = None
    style: str | None = None
    """A named style (the chat core applies it: the engine never sees one)."""

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> Options:
        """Options from plain data (stored preferences); unknown names are a bug of the caller."""
        tuples = {name: tuple(values[name]) for name in ("weights", "aspect") if values.get(name) is not None}
        return cls(**{**values, **tuples})

    def given(self) -> dict[str, Any]:
        """The named values only, as `make_request` keywords."""
        return {item.name: value for item in fields(self) if (value := getattr(self, item.name)) is not None}

    def over(self, base: Options) -> Options:
        """These options where named, `base` for the rest."""
        return replace(base, **self.given())

    def without(self, *names: str) -> Options:
        return replace(self, **dict.fromkeys(names))


@dataclass(frozen=True)
class Ask:
    """An operation, its texts and options, and the raw bytes of its input images as they were sent."""

    operation: str
    prompt: str = ""
    options: Options = Options()
    image: bytes | None = None
    mask_image: bytes | None = None
    """Inpaint: white repaints. Without one, a `region` option or the image's transparent pixels mark the area."""
    mix: tuple[bytes | str, ...] = ()
    shown: str | None = None
    """The prompt as its user knows it, where it differs from the prompt it runs: a reroll of a styled job runs
    the styled prompt it stored and shows the one its user typed."""

    def texts(self) -> list[str]:
        """Every text a person wrote into it: what moderation screens and what language detection reads."""
        items = [self.prompt, self.options.negative_prompt or "", *(t for t in self.mix if isinstance(t, str))]
        return [text for text in items if text]

    @property
    def shown_prompt(self) -> str:
        """The prompt as people see it, for a mix its text items."""
        return self.shown or self.prompt or " + ".join(item for item in self.mix if isinstance(item, str))


def parse_weights(text: str) -> tuple[float, ...]:
    """Mix weights as people type them, `0.5,0.3,0.2`; raises `InvalidRequest` naming the text."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise InvalidRequest("not_a_number", "weights", text, "number_list") from None


def build_request(ask: Ask, *, defaults: GenerationDefaults, limits: Limits) -> GenerationRequest:
    """Decode the inputs and validate; raises `InvalidRequest` or `InvalidImage` naming the bad value."""
    image = decode_image(ask.image, limits.max_input_pixels) if ask.image is not None else None
    mask: MaskSpec | None = ask.options.mask
    if ask.operation == Operation.INPAINT and mask is None and image is not None:
        if ask.mask_image is not None:
            mask = MaskImage(decode_image(ask.mask_image, limits.max_input_pixels))
        elif has_alpha(image):
            mask = AlphaMask()
    mix: list[MixInput] = [
        item if isinstance(item, str) else decode_image(item, limits.max_input_pixels) for item in ask.mix
    ]
    options = ask.options.without("mask").given()
    return make_request(
        ask.operation, ask.prompt, defaults=defaults, limits=limits, image=image, mask=mask, mix=mix, **options
    )
