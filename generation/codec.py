"""The stored form of a request: one versioned encoding, so a job can be run again after a restart, rerolled,
or taken by another process, exactly as it was asked for.

A stored job keeps the resolved values (`GenerationRequest.describe`) and references to its input images;
`decode` gives back the `Ask` that `build_request` turns into the same request. Rows written before the
version field existed are version 1, the same layout.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from generation.asks import Ask, Options
from generation.errors import EaselError
from generation.images import RegionMask
from generation.requests import GenerationRequest

CODEC_VERSION = 1
_RESOLVED = ("width", "height", "steps", "prior_steps", "guidance_scale", "prior_guidance_scale", "count")

Store = Callable[[bytes], str]
"""Keeps an input image and returns its reference (a content-addressed path)."""
Read = Callable[[str], bytes]


class UnknownCodec(EaselError, ValueError):
    """A stored job written by a newer easel than this one."""


def encode(request: GenerationRequest, ask: Ask, store: Store) -> dict[str, Any]:
    """The request's resolved values and the references of the inputs `store` kept."""
    inputs: dict[str, Any] = {}
    if ask.image is not None:
        inputs["image"] = store(ask.image)
    if ask.mask_image is not None and request.mask is not None and ask.options.mask is None:
        inputs["mask_image"] = store(ask.mask_image)
    if ask.mix:
        inputs["mix"] = [{"text": item} if isinstance(item, str) else {"image": store(item)} for item in ask.mix]
    region = ask.options.mask
    if region is not None:
        inputs["region"] = [region.x, region.y, region.width, region.height]
    return {**request.describe(), "codec": CODEC_VERSION, "inputs": inputs}


def stored_paths(parameters: Mapping[str, Any]) -> list[str]:
    """The references of the input images a stored request reads."""
    stored = parameters.get("inputs", {})
    paths = [stored[key] for key in ("image", "mask_image") if key in stored]
    return paths + [item["image"] for item in stored.get("mix", ()) if "image" in item]


def decode(parameters: Mapping[str, Any], seed: int, read: Read) -> Ask:
    """The stored request as an `Ask` again, every resolved value included, so building it repeats it."""
    version = parameters.get("codec", 1)
    if version != CODEC_VERSION:
        raise UnknownCodec(f"stored request version {version!r}; this easel reads version {CODEC_VERSION}")
    stored = parameters.get("inputs", {})
    region = stored.get("region")
    mix: tuple[bytes | str, ...] = ()
    if "mix" in stored:
        mix = tuple(item["text"] if "text" in item else read(item["image"]) for item in stored["mix"])
    options = Options(
        **{key: parameters[key] for key in _RESOLVED},
        seed=seed,
        negative_prompt=parameters.get("negative_prompt", ""),
        language=parameters.get("language"),
        strength=parameters.get("strength"),
        mask=RegionMask(*region) if region is not None else None,
        weights=tuple(parameters["mix_weights"]) if mix else None,
        zoom=parameters.get("zoom"),
        pan=parameters.get("pan"),
    )
    return Ask(
        operation=parameters["operation"],
        prompt=parameters.get("prompt", ""),
        options=options,
        image=read(stored["image"]) if "image" in stored else None,
        mask_image=read(stored["mask_image"]) if "mask_image" in stored else None,
        mix=mix,
    )
