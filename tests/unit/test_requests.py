from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image

from generation.errors import InvalidImage, InvalidRequest
from generation.images import AlphaMask, RegionMask
from generation.requests import SEED_LIMIT, GenerationRequest, Operation

Build = Callable[..., GenerationRequest]


def test_unnamed_values_come_from_the_defaults(request_for: Build) -> None:
    request = request_for("txt2img")
    assert (request.width, request.height, request.steps, request.prior_steps) == (64, 64, 4, 2)
    assert request.guidance_scale == 4.0 and request.strength is None and request.count == 1


def test_a_missing_seed_is_drawn_and_recorded(request_for: Build) -> None:
    seeds = {request_for("txt2img").seed for _ in range(20)}
    assert len(seeds) > 1
    assert all(0 <= seed < SEED_LIMIT for seed in seeds)


def test_each_image_has_its_own_seed_following_the_first(request_for: Build) -> None:
    assert request_for("txt2img", seed=SEED_LIMIT - 2, count=3).seeds == (SEED_LIMIT - 2, SEED_LIMIT - 1, 0)


def test_text_is_trimmed(request_for: Build) -> None:
    request = request_for("txt2img", "  a cat \n", negative_prompt=" blur ")
    assert (request.prompt, request.negative_prompt) == ("a cat", "blur")


# (operation, options, field, value named in the message, allowed range named in the message)
BAD_VALUES: list[tuple[str, dict[str, Any], str, str, str]] = [
    ("txt2img", {"width": 100}, "width", "100", "multiple of 64"),
    ("txt2img", {"height": 2048}, "height", "2048", "from 64 to 1024"),
    ("txt2img", {"width": 32}, "width", "32", "from 64 to 1024"),
    ("txt2img", {"width": 1024, "height": 1088}, "height", "1088", "1024"),
    ("txt2img", {"steps": 0}, "steps", "0", "from 1 to 100"),
    ("txt2img", {"steps": 101}, "steps", "101", "from 1 to 100"),
    ("txt2img", {"steps": 2.5}, "steps", "2.5", "whole number"),
    ("txt2img", {"prior_steps": 1}, "prior_steps", "1", "from 2 to 100"),
    ("txt2img", {"guidance_scale": -1.0}, "guidance_scale", "-1.0", "from 0 to 20"),
    ("txt2img", {"guidance_scale": math.nan}, "guidance_scale", "nan", "from 0 to 20"),
    ("txt2img", {"prior_guidance_scale": 21}, "prior_guidance_scale", "21", "from 0 to 20"),
    ("txt2img", {"count": 0}, "count", "0", "from 1 to 4"),
    ("txt2img", {"count": 5}, "count", "5", "from 1 to 4"),
    ("txt2img", {"count": True}, "count", "True", "from 1 to 4"),
    ("txt2img", {"seed": -1}, "seed", "-1", f"from 0 to {SEED_LIMIT - 1}"),
    ("txt2img", {"seed": SEED_LIMIT}, "seed", str(SEED_LIMIT), f"from 0 to {SEED_LIMIT - 1}"),
    ("txt2img", {"strength": 0.5}, "strength", "0.5", "only img2img"),
    ("txt2img", {"prompt": "   "}, "prompt", "", "needs a prompt"),
    ("txt2img", {"prompt": "x" * 1001}, "prompt", "1001", "at most 1000 characters"),
    ("txt2img", {"negative_prompt": "x" * 1001}, "negative_prompt", "1001", "at most 1000 characters"),
    ("txt2img", {"mix": ["a", "b"]}, "mix", "", "only mix"),
    ("paint", {}, "operation", "paint", "txt2img, img2img, inpaint, mix"),
    ("img2img", {}, "image", "", "img2img needs an input image"),
    ("img2img", {"image": "photo", "strength": 1.5}, "strength", "1.5", "from 0 to 1"),
    ("img2img", {"image": "photo", "strength": 0.1, "steps": 4}, "strength", "0.1", "at least 0.25"),
    ("img2img", {"image": "photo", "mask": RegionMask(0, 0, 50, 50)}, "mask", "", "only inpaint"),
    ("inpaint", {"image": "photo"}, "mask", "", "a mask image, a transparent area or a region"),
    ("mix", {"mix": ["only one"]}, "mix", "1", "from 2 to 4 images or texts"),
    ("mix", {"mix": ["a", "b", "c", "d", "e"]}, "mix", "5", "from 2 to 4"),
    ("mix", {"mix": ["a", "b"], "weights": [1.0]}, "weights", "[1.0]", "one weight for each of the 2"),
    ("mix", {"mix": ["a", "b"], "weights": [1.0, -0.5]}, "weight", "-0.5", "from 0 to inf"),
    ("mix", {"mix": ["a", "b"], "weights": [0.0, 0.0]}, "weights", "[0.0, 0.0]", "at least one weight above zero"),
    ("mix", {"mix": ["a", " "]}, "mix text", "", "must not be empty"),
    ("mix", {"mix": ["a", "b"], "image": "photo"}, "image", "", "only img2img, inpaint, outpaint, remix and depth"),
    ("mix", {"mix": ["a", "b"], "prompt": "a dog"}, "prompt", "a dog", "mix takes its texts as mix items"),
]


@pytest.mark.parametrize(("operation", "options", "field", "value", "allowed"), BAD_VALUES)
def test_bad_values_are_refused_naming_the_value_and_the_allowed_range(
    request_for: Build,
    photo: Image.Image,
    operation: str,
    options: dict[str, Any],
    field: str,
    value: str,
    allowed: str,
) -> None:
    options = {key: photo if option == "photo" else option for key, option in options.items()}
    prompt = options.pop("prompt", "" if operation == "mix" else "a cat")
    with pytest.raises(InvalidRequest) as caught:
        request_for(operation, prompt, **options)
    assert caught.value.field == field
    message = str(caught.value)
    assert value in message and allowed in message and field in message


def test_limits_bound_the_total_pixels(request_for: Build, defaults: Any) -> None:
    from generation.config import Limits
    from generation.requests import make_request

    with pytest.raises(InvalidRequest, match="1024x1024.*at most 500000 pixels"):
        make_request("txt2img", "cat", defaults=defaults, limits=Limits(max_pixels=500_000), width=1024, height=1024)


def test_img2img_fits_the_input_to_the_requested_size(request_for: Build) -> None:
    wide = Image.new("RGB", (300, 100), "blue")
    request = request_for("img2img", image=wide, width=64, height=128)
    assert request.image is not None and request.image.size == (64, 128)
    assert request.strength == 0.5


@pytest.mark.parametrize(
    ("size", "expected"), [((2000, 1000), (1024, 512)), ((600, 800), (640, 832)), ((50, 50), (768, 768))]
)
def test_img2img_without_a_size_keeps_the_input_aspect_ratio(
    limits: Any, size: tuple[int, int], expected: tuple[int, int]
) -> None:
    from generation.config import PRESET_DEFAULTS
    from generation.requests import make_request

    request = make_request(
        "img2img", "cat", image=Image.new("RGB", size), defaults=PRESET_DEFAULTS["kandinsky-2.2"], limits=limits
    )
    assert (request.width, request.height) == expected


def test_transparent_inputs_are_flattened_onto_white(request_for: Build) -> None:
    clear = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    request = request_for("img2img", image=clear)
    assert request.image is not None and request.image.getpixel((10, 10)) == (255, 255, 255)


def test_inpaint_mask_is_aligned_with_the_fitted_image(request_for: Build) -> None:
    source = Image.new("RGBA", (128, 64), (10, 20, 30, 255))
    source.paste((0, 0, 0, 0), (0, 0, 64, 64))  # the left half is transparent
    request = request_for("inpaint", image=source, mask=AlphaMask(), width=128, height=64)
    assert request.mask is not None and request.mask.size == (128, 64)
    assert request.mask.getpixel((10, 10)) == 255 and request.mask.getpixel((100, 10)) == 0


def test_inpaint_with_an_empty_mask_is_refused(request_for: Build, photo: Image.Image) -> None:
    with pytest.raises(InvalidImage) as caught:
        request_for("inpaint", image=photo.convert("RGBA"), mask=AlphaMask())
    assert caught.value.code == "empty_mask"


def test_mix_weights_are_normalised_and_keep_their_order(request_for: Build, photo: Image.Image) -> None:
    request = request_for("mix", "", mix=[photo, "a cat", photo], weights=[2, 1, 1])
    assert [item.weight for item in request.mix] == [0.5, 0.25, 0.25]
    assert [item.text for item in request.mix] == [None, "a cat", None]
    assert request.prior_runs == 2


def test_mix_without_weights_shares_equally(request_for: Build) -> None:
    request = request_for("mix", "", mix=["a", "b", "c", "d"])
    assert [item.weight for item in request.mix] == [0.25] * 4


def test_batch_keys_group_only_compatible_requests(request_for: Build, photo: Image.Image) -> None:
    first, second = request_for("txt2img", "a"), request_for("txt2img", "b", seed=3)
    assert first.batch_key == second.batch_key
    assert request_for("txt2img", steps=5).batch_key != first.batch_key
    assert request_for("txt2img", negative_prompt="blur").batch_key != first.batch_key
    assert request_for("img2img", image=photo).batch_key != first.batch_key
    assert request_for("inpaint", image=photo, mask=RegionMask(0, 0, 50, 50)).batch_key is None
    assert request_for("mix", "", mix=["a", "b"]).batch_key is None


def test_denoising_steps_follow_the_img2img_strength(request_for: Build, photo: Image.Image) -> None:
    assert request_for("img2img", image=photo, steps=10, strength=0.35).denoising_steps == 3
    assert request_for("txt2img", steps=10).denoising_steps == 10


def test_describe_records_what_reproduces_the_request(request_for: Build) -> None:
    described = request_for("txt2img", seed=7, count=2).describe()
    assert described["seed"] == 7 and described["operation"] == "txt2img" and described["count"] == 2
    assert Operation(described["operation"]) is Operation.TXT2IMG
