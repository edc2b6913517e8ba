"""Where zoom out and pan put an image, and what they ask the inpaint decoder to paint."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from generation.config import Limits
from generation.errors import InvalidRequest
from generation.outpainting import Pan, canvas, layout
from generation.requests import GenerationRequest

LIMITS = Limits()


@pytest.mark.parametrize(
    ("zoom", "pan", "expected"),
    [
        (2.0, None, (256, 256, 64, 64)),
        (1.5, None, (192, 192, 32, 32)),
        (None, None, (256, 256, 64, 64)),
        (None, Pan.LEFT, (192, 128, 64, 0)),
        (None, Pan.RIGHT, (192, 128, 0, 0)),
        (None, Pan.UP, (128, 192, 0, 64)),
        (None, Pan.DOWN, (128, 192, 0, 0)),
    ],
)
def test_the_source_keeps_its_size_where_the_canvas_fits(
    zoom: float | None, pan: Pan | None, expected: tuple[int, int, int, int]
) -> None:
    placed = layout((128, 128), zoom, pan, LIMITS)
    assert (placed.width, placed.height, placed.left, placed.top) == expected
    assert (placed.source_width, placed.source_height) == (128, 128)


def test_a_canvas_past_the_limits_shrinks_with_its_source_by_one_factor() -> None:
    placed = layout((768, 768), 2.0, None, LIMITS)
    assert (placed.width, placed.height) == (1024, 1024)
    assert (placed.source_width, placed.source_height) == (512, 512)
    assert (placed.left, placed.top) == (256, 256)


def test_odd_sizes_round_the_canvas_up_to_multiples_of_64() -> None:
    placed = layout((100, 70), None, Pan.RIGHT, LIMITS)
    assert (placed.width % 64, placed.height % 64) == (0, 0)
    assert placed.width >= 150 and placed.height >= 70
    assert (placed.source_width, placed.source_height) == (100, 70)


def test_the_canvas_holds_the_source_unchanged_and_the_mask_marks_the_rest() -> None:
    source = Image.effect_noise((64, 64), 60).convert("RGB")
    placed = layout(source.size, None, Pan.LEFT, LIMITS)
    filled, mask = canvas(source, placed)
    box = (placed.left, placed.top, placed.left + 64, placed.top + 64)
    assert np.array_equal(np.asarray(filled.crop(box)), np.asarray(source))
    kept = np.asarray(mask) == 0
    assert kept.sum() == 64 * 64 and np.asarray(mask.crop(box)).max() == 0
    assert np.asarray(mask).max() == 255


def test_outpaint_requests_are_sized_by_their_image(request_for: Callable[..., GenerationRequest]) -> None:
    source = Image.new("RGB", (64, 64), (10, 200, 10))
    request = request_for("outpaint", "a field", image=source, pan="up")
    assert (request.width, request.height, request.pan, request.zoom) == (64, 128, Pan.UP, None)
    assert request.mask is not None and request.image is not None
    assert request_for("outpaint", "a field", image=source).zoom == 2.0
    assert request_for("outpaint", "a field", image=source, width=64, height=128, pan="up").height == 128


@pytest.mark.parametrize(
    ("options", "rule"),
    [
        ({"zoom": 1.5, "pan": "left"}, "zoom_or_pan"),
        ({"zoom": 3.0}, "number"),
        ({"zoom": 1.0}, "number"),
        ({"pan": "sideways"}, "one_of"),
        ({"width": 512, "height": 512}, "outpaint_sized_by_image"),
    ],
)
def test_bad_zooms_and_pans_are_refused_by_rule(
    request_for: Callable[..., GenerationRequest], options: dict[str, object], rule: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        request_for("outpaint", "a field", image=Image.new("RGB", (64, 64)), **options)
    assert refused.value.rule == rule


@pytest.mark.parametrize("operation", ["txt2img", "img2img"])
def test_only_outpaint_zooms_or_pans(request_for: Callable[..., GenerationRequest], operation: str) -> None:
    image = Image.new("RGB", (64, 64)) if operation == "img2img" else None
    with pytest.raises(InvalidRequest) as refused:
        request_for(operation, "a field", image=image, pan="left")
    assert refused.value.rule == "outpaint_only"


def test_outpaint_needs_an_image(request_for: Callable[..., GenerationRequest]) -> None:
    with pytest.raises(InvalidRequest) as refused:
        request_for("outpaint", "a field", zoom=2.0)
    assert refused.value.rule == "needs_image"


def test_remix_takes_a_strength_that_runs_at_least_one_prior_step(
    request_for: Callable[..., GenerationRequest],
) -> None:
    image = Image.new("RGB", (64, 64))
    request = request_for("remix", "in watercolour", image=image, prior_steps=10, strength=0.3)
    assert (request.strength, request.prior_denoising_steps, request.denoising_steps) == (0.3, 3, request.steps)
    assert request_for("remix", "in watercolour", image=image).strength == 0.5
    with pytest.raises(InvalidRequest) as refused:
        request_for("remix", "in watercolour", image=image, prior_steps=4, strength=0.1)
    assert refused.value.rule == "min_strength" and refused.value.values["steps"] == 4
    with pytest.raises(InvalidRequest) as refused:
        request_for("remix", "in watercolour")
    assert refused.value.rule == "needs_image"
