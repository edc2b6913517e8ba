"""Aspect ratios: the size `--ar` stands for, and how it is refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from PIL import Image

from bots.errors import UserError
from bots.parsing import parse_prompt
from generation.aspect import aspect_size
from generation.config import PRESET_DEFAULTS, Limits
from generation.errors import InvalidRequest
from generation.requests import GenerationRequest, make_request

REAL = PRESET_DEFAULTS["kandinsky-2.2"]


@pytest.mark.parametrize(
    ("ratio", "size"),
    [
        ((1, 1), (768, 768)),
        ((16, 9), (1024, 576)),
        ((9, 16), (576, 1024)),
        ((4, 3), (832, 640)),
        ((3, 2), (960, 640)),
        ((21, 9), (1024, 448)),
        ((4, 1), (1024, 256)),
    ],
)
def test_a_ratio_is_the_closest_size_in_multiples_of_64_near_the_default_area(
    ratio: tuple[int, int], size: tuple[int, int]
) -> None:
    assert aspect_size(ratio, REAL.width * REAL.height, Limits()) == size


def test_the_size_stays_within_a_communitys_smaller_limits() -> None:
    limits = Limits(max_width=512, max_height=512, max_pixels=512 * 512)
    width, height = aspect_size((16, 9), REAL.width * REAL.height, limits)
    assert (width, height) == (448, 256)  # 1.75:1; 512x320 would be larger but 1.6:1


def test_ar_in_a_prompt_sets_the_size_of_the_request() -> None:
    parsed = parse_prompt("a beach at noon --ar 16:9")
    assert (parsed.prompt, parsed.options.aspect) == ("a beach at noon", (16, 9))
    request = make_request("txt2img", parsed.prompt, defaults=REAL, limits=Limits(), **parsed.options.given())
    assert (request.width, request.height) == (1024, 576)
    assert parse_prompt("x --aspect 2/3").options.aspect == (2, 3)


@pytest.mark.parametrize("text", ["16x9", "16:0", "wide", "16:9:1", "99999:1"])
def test_a_ratio_that_is_not_one_is_refused_by_the_parser(text: str) -> None:
    with pytest.raises(UserError) as refused:
        parse_prompt(f"a beach --ar {text}")
    assert refused.value.key == "request.bad_option" and refused.value.values["option"] == "--ar"


@pytest.mark.parametrize(
    ("options", "rule"),
    [
        ({"aspect": (16, 9), "width": 512}, "size_or_aspect"),
        ({"aspect": (5, 1)}, "aspect_range"),
    ],
)
def test_a_ratio_beside_a_size_or_past_4_to_1_is_refused(
    request_for: Callable[..., GenerationRequest], options: dict[str, object], rule: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        request_for("txt2img", "a beach", **options)
    assert refused.value.rule == rule and refused.value.field == "aspect"


def test_an_outpaint_takes_no_ratio(request_for: Callable[..., GenerationRequest]) -> None:
    with pytest.raises(InvalidRequest) as refused:
        request_for("outpaint", "a beach", image=Image.new("RGB", (64, 64)), aspect=(16, 9))
    assert refused.value.rule == "outpaint_sized_by_image"


def test_img2img_is_fitted_to_the_ratio(request_for: Callable[..., GenerationRequest]) -> None:
    request = request_for("img2img", "a beach", image=Image.new("RGB", (64, 64)), aspect=(4, 1))
    assert request.image is not None and request.image.size == (request.width, request.height) == (256, 64)
