"""Generation requests: what to make, fully resolved and validated before it reaches the GPU.

`make_request` is the one way in: it fills what the user did not name from the defaults, checks every
value against the limits (refusing, never clamping), fits input images to the output size and picks a
seed, so a request is always reproducible from what it records.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from PIL import Image

from generation.aspect import requested_size
from generation.config import GenerationDefaults, Limits
from generation.errors import InvalidRequest
from generation.images import MaskSpec, build_mask, fit, fitted_size, to_rgb
from generation.outpainting import DEFAULT_ZOOM, MAX_ZOOM, MIN_ZOOM, Pan, canvas, layout

SEED_LIMIT = 2**32
MIN_MIX_ITEMS = 2
MAX_MIX_ITEMS = 4
_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}")


class Operation(StrEnum):
    TXT2IMG = "txt2img"
    IMG2IMG = "img2img"
    INPAINT = "inpaint"
    MIX = "mix"
    OUTPAINT = "outpaint"
    REMIX = "remix"
    DEPTH = "depth"

    @property
    def inpaints(self) -> bool:
        """Whether the inpaint decoder runs it: inpaint, and outpaint (zoom out, pan), which paints a border."""
        return self in (Operation.INPAINT, Operation.OUTPAINT)


IMAGE_OPERATIONS = frozenset(
    {Operation.IMG2IMG, Operation.INPAINT, Operation.OUTPAINT, Operation.REMIX, Operation.DEPTH}
)
STRENGTH_OPERATIONS = frozenset({Operation.IMG2IMG, Operation.REMIX, Operation.DEPTH})
"""Depth takes a strength only when it should start from its image too (without one, it starts from noise)."""


@dataclass(frozen=True, eq=False)
class MixItem:
    """One ingredient of a mix: a text or an image, and its share after normalisation."""

    weight: float
    text: str | None = None
    image: Image.Image | None = None


MixInput = str | Image.Image


@dataclass(frozen=True, eq=False)
class GenerationRequest:
    operation: Operation
    prompt: str
    negative_prompt: str
    width: int
    height: int
    steps: int
    prior_steps: int
    guidance_scale: float
    prior_guidance_scale: float
    count: int
    seed: int
    strength: float | None = None
    image: Image.Image | None = None
    mask: Image.Image | None = None
    mix: tuple[MixItem, ...] = field(default_factory=tuple)
    # The ISO 639-1 code of the texts' language when known; the engine translates all but English.
    language: str | None = None
    # Outpaint: how far it zooms out, or which way it pans (one of the two). `image` is then the source on its
    # canvas and `mask` the border to paint.
    zoom: float | None = None
    pan: Pan | None = None

    @property
    def seeds(self) -> tuple[int, ...]:
        """One seed per image: image i of a request equals a single-image request with seed + i."""
        return tuple((self.seed + index) % SEED_LIMIT for index in range(self.count))

    @property
    def denoising_steps(self) -> int:
        """Decoder steps actually run: img2img (and depth with a strength) skips the part its strength keeps."""
        if self.operation in (Operation.IMG2IMG, Operation.DEPTH) and self.strength is not None:
            return min(int(self.steps * self.strength), self.steps)
        return self.steps

    @property
    def prior_denoising_steps(self) -> int:
        """Prior steps actually run: a remix starts from its image's embedding, partway through the schedule."""
        if self.operation is Operation.REMIX and self.strength is not None:
            return min(int(self.prior_steps * self.strength), self.prior_steps)
        return self.prior_steps

    @property
    def prior_runs(self) -> int:
        """Prior passes: a mix runs the prior once per text item and once for the negative."""
        if self.operation is Operation.MIX:
            return 1 + sum(1 for item in self.mix if item.text is not None)
        return 1

    @property
    def batch_key(self) -> tuple[Any, ...] | None:
        """Requests with equal keys can share one pipeline call; None means never batched.

        Inpaint and outpaint are never batched: diffusers blends every item with the first item's image and mask.
        Mix goes through `interpolate`, which takes one set of ingredients per call; a remix through the prior's
        emb2emb, which is fed one image.
        """
        if self.operation not in (Operation.TXT2IMG, Operation.IMG2IMG):
            return None
        return (
            self.operation,
            self.width,
            self.height,
            self.steps,
            self.prior_steps,
            self.guidance_scale,
            self.prior_guidance_scale,
            self.strength,
            bool(self.negative_prompt),
        )

    def describe(self) -> dict[str, Any]:
        """The parameters as plain data, for logs, storage and reproduction."""
        return {
            "operation": str(self.operation),
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "width": self.width,
            "height": self.height,
            "steps": self.steps,
            "prior_steps": self.prior_steps,
            "guidance_scale": self.guidance_scale,
            "prior_guidance_scale": self.prior_guidance_scale,
            "strength": self.strength,
            "count": self.count,
            "seed": self.seed,
            "mix_weights": [item.weight for item in self.mix],
            "mix_texts": [item.text for item in self.mix],
            "language": self.language,
            "zoom": self.zoom,
            "pan": None if self.pan is None else str(self.pan),
        }


def make_request(
    operation: Operation | str,
    prompt: str = "",
    *,
    defaults: GenerationDefaults,
    limits: Limits,
    negative_prompt: str = "",
    width: int | None = None,
    height: int | None = None,
    steps: int | None = None,
    prior_steps: int | None = None,
    guidance_scale: float | None = None,
    prior_guidance_scale: float | None = None,
    strength: float | None = None,
    count: int = 1,
    seed: int | None = None,
    image: Image.Image | None = None,
    mask: MaskSpec | None = None,
    mix: Sequence[MixInput] = (),
    weights: Sequence[float] | None = None,
    language: str | None = None,
    zoom: float | None = None,
    pan: Pan | str | None = None,
    aspect: tuple[int, int] | None = None,
) -> GenerationRequest:
    """Resolve and validate one request; raises `InvalidRequest` or `InvalidImage` naming the bad value."""
    operation = _operation(operation)
    if language is not None and not _LANGUAGE_CODE.fullmatch(language):
        raise InvalidRequest("unknown", "language", language, "language_code")
    prompt = _text("prompt", prompt, limits)
    negative_prompt = _text("negative_prompt", negative_prompt, limits)
    if operation is Operation.MIX and prompt:
        raise InvalidRequest("unexpected", "prompt", prompt, "mix_texts_as_items")
    if operation is not Operation.MIX and not prompt:
        raise InvalidRequest("required", "prompt", None, "needs_prompt", operation=operation.value)

    source = _input_image(operation, image)
    direction = _outpaint(operation, zoom, pan)
    if aspect is not None:
        area = defaults.width * defaults.height
        width, height = requested_size(aspect, operation is Operation.OUTPAINT, width, height, area, limits)
    placed = None
    if operation is Operation.OUTPAINT:
        assert source is not None
        placed = layout(source.size, zoom, direction, limits)
        if (width, height) not in ((None, None), (placed.width, placed.height)):  # a stored job names its own
            raise InvalidRequest("unexpected", "size", f"{width}x{height}", "outpaint_sized_by_image")
        width, height = placed.width, placed.height
    elif source is not None and width is None and height is None:
        width, height = fitted_size(
            source.size, defaults.width * defaults.height, limits.max_width, limits.max_height, limits.max_pixels
        )
    width = _dimension("width", width if width is not None else defaults.width, limits.max_width)
    height = _dimension("height", height if height is not None else defaults.height, limits.max_height)
    if width * height > limits.max_pixels:
        raise InvalidRequest("out_of_range", "size", f"{width}x{height}", "max_pixels", pixels=limits.max_pixels)

    steps = _int_in("steps", steps if steps is not None else defaults.steps, limits.min_steps, limits.max_steps)
    prior_steps = _int_in(
        "prior_steps",
        prior_steps if prior_steps is not None else defaults.prior_steps,
        limits.min_prior_steps,
        limits.max_prior_steps,
    )
    guidance_scale = _float_in(
        "guidance_scale",
        guidance_scale if guidance_scale is not None else defaults.guidance_scale,
        limits.min_guidance_scale,
        limits.max_guidance_scale,
    )
    prior_guidance_scale = _float_in(
        "prior_guidance_scale",
        prior_guidance_scale if prior_guidance_scale is not None else defaults.prior_guidance_scale,
        limits.min_guidance_scale,
        limits.max_guidance_scale,
    )
    count = _int_in("count", count, 1, limits.max_images)
    seed = secrets.randbelow(SEED_LIMIT) if seed is None else _int_in("seed", seed, 0, SEED_LIMIT - 1)

    resolved_strength = None
    default = {Operation.IMG2IMG: defaults.strength, Operation.REMIX: defaults.remix_strength}.get(operation)
    if operation in STRENGTH_OPERATIONS and (strength is not None or default is not None):
        resolved_strength = _float_in("strength", strength if strength is not None else default, 0.0, 1.0)
        scheduled = prior_steps if operation is Operation.REMIX else steps
        if int(scheduled * resolved_strength) < 1:
            raise InvalidRequest(
                "out_of_range", "strength", resolved_strength, "min_strength", steps=scheduled, strength=1 / scheduled
            )
    elif strength is not None:
        raise InvalidRequest("unexpected", "strength", strength, "strength_img2img_only")

    fitted = mask_image = None
    if placed is not None:
        assert source is not None
        fitted, mask_image = canvas(to_rgb(source), placed)
    elif source is not None:
        fitted = fit(to_rgb(source), width, height)
    if operation is Operation.INPAINT:
        if mask is None:
            raise InvalidRequest("required", "mask", None, "needs_mask")
        assert source is not None
        mask_image = build_mask(mask, source, width, height)
    elif mask is not None:
        raise InvalidRequest("unexpected", "mask", None, "mask_inpaint_only")

    items: tuple[MixItem, ...] = ()
    if operation is Operation.MIX:
        items = _mix_items(mix, weights, limits)
    elif mix:
        raise InvalidRequest("unexpected", "mix", None, "items_mix_only")

    return GenerationRequest(
        operation=operation,
        prompt=prompt,
        negative_prompt=negative_prompt,
        width=width,
        height=height,
        steps=steps,
        prior_steps=prior_steps,
        guidance_scale=guidance_scale,
        prior_guidance_scale=prior_guidance_scale,
        count=count,
        seed=seed,
        strength=resolved_strength,
        image=fitted,
        mask=mask_image,
        mix=items,
        language=language,
        zoom=(zoom if zoom is not None else DEFAULT_ZOOM) if placed is not None and direction is None else None,
        pan=direction,
    )


def _operation(value: Operation | str) -> Operation:
    try:
        return Operation(value)
    except ValueError:
        allowed = ", ".join(op.value for op in Operation)
        raise InvalidRequest("unknown", "operation", value, "one_of", choices=allowed) from None


def _text(name: str, value: str, limits: Limits) -> str:
    value = value.strip()
    if len(value) > limits.max_prompt_length:
        raise InvalidRequest("too_long", name, len(value), "max_characters", limit=limits.max_prompt_length)
    return value


def _outpaint(operation: Operation, zoom: float | None, pan: Pan | str | None) -> Pan | None:
    """The pan's direction, once zoom and pan are checked: outpaint's alone, and never both."""
    if operation is not Operation.OUTPAINT:
        if zoom is not None or pan is not None:
            raise InvalidRequest("unexpected", "zoom" if zoom is not None else "pan", None, "outpaint_only")
        return None
    if zoom is not None and pan is not None:
        raise InvalidRequest("unexpected", "pan", str(pan), "zoom_or_pan")
    if zoom is not None:
        _float_in("zoom", zoom, MIN_ZOOM, MAX_ZOOM)
    if pan is None:
        return None
    try:
        return Pan(pan)
    except ValueError:
        raise InvalidRequest("unknown", "pan", pan, "one_of", choices=", ".join(p.value for p in Pan)) from None


def _input_image(operation: Operation, image: Image.Image | None) -> Image.Image | None:
    needs_image = operation in IMAGE_OPERATIONS
    if needs_image and image is None:
        raise InvalidRequest("required", "image", None, "needs_image", operation=operation.value)
    if not needs_image and image is not None:
        raise InvalidRequest("unexpected", "image", None, "image_operations_only")
    return image


def _dimension(name: str, value: int, maximum: int) -> int:
    value = _int_in(name, value, 64, maximum)
    if value % 64:
        raise InvalidRequest("not_multiple", name, value, "multiple_of_64", high=maximum)
    return value


def _int_in(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest("not_a_number", name, value, "whole_number", low=low, high=high)
    if not low <= value <= high:
        raise InvalidRequest("out_of_range", name, value, "whole_number", low=low, high=high)
    return value


def _float_in(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidRequest("not_a_number", name, value, "number", low=low, high=high)
    if not low <= value <= high:
        raise InvalidRequest("out_of_range", name, value, "number", low=low, high=high)
    return float(value)


def _mix_items(mix: Sequence[MixInput], weights: Sequence[float] | None, limits: Limits) -> tuple[MixItem, ...]:
    if not MIN_MIX_ITEMS <= len(mix) <= MAX_MIX_ITEMS:
        raise InvalidRequest("out_of_range", "mix", len(mix), "mix_count", low=MIN_MIX_ITEMS, high=MAX_MIX_ITEMS)
    if weights is None:
        weights = [1.0] * len(mix)
    if len(weights) != len(mix):
        raise InvalidRequest("mismatch", "weights", list(weights), "weight_each", count=len(mix))
    for weight in weights:
        _float_in("weight", weight, 0.0, math.inf)
    total = sum(weights)
    if total <= 0:
        raise InvalidRequest("out_of_range", "weights", list(weights), "positive_weight")
    items = []
    for item, weight in zip(mix, weights, strict=True):
        share = weight / total
        if isinstance(item, str):
            text = _text("mix text", item, limits)
            if not text:
                raise InvalidRequest("required", "mix text", None, "text_not_empty")
            items.append(MixItem(weight=share, text=text))
        else:
            items.append(MixItem(weight=share, image=to_rgb(item)))
    return tuple(items)
