"""The typed seams: Options, the Ask built into a request, and the versioned stored form of a request."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from generation.asks import Ask, Options, build_request, parse_weights
from generation.codec import CODEC_VERSION, UnknownCodec, decode, encode
from generation.config import GenerationDefaults, Limits
from generation.errors import InvalidRequest
from generation.images import RegionMask


def png(mode: str = "RGB", size: tuple[int, int] = (64, 64)) -> bytes:
    buffer = io.BytesIO()
    image = Image.linear_gradient("L").resize(size).convert(mode)
    if mode == "RGBA":
        image.putalpha(Image.linear_gradient("L").resize(size))
    image.save(buffer, "PNG")
    return buffer.getvalue()


class Store:
    """A content store in a dict: what `encode` keeps, `decode` reads back."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def put(self, data: bytes) -> str:
        self.files[f"inputs/{len(self.files)}"] = data
        return f"inputs/{len(self.files) - 1}"


def test_options_layer_the_named_values_over_a_base() -> None:
    mine = Options(steps=5, seed=1)
    preferences = Options(steps=30, width=128, negative_prompt="blurry")
    merged = mine.over(preferences)
    assert merged == Options(steps=5, seed=1, width=128, negative_prompt="blurry")
    assert merged.without("seed", "width").given() == {"steps": 5, "negative_prompt": "blurry"}
    assert Options.of({"weights": [1, 2], "count": 2}) == Options(weights=(1, 2), count=2)
    assert Options().given() == {}


def test_weights_are_parsed_once_for_every_surface() -> None:
    assert parse_weights("0.5,0.3,0.2") == (0.5, 0.3, 0.2)
    with pytest.raises(InvalidRequest, match="weights"):
        parse_weights("a lot")


def test_an_inpaint_mask_comes_from_the_mask_image_a_region_or_the_transparent_pixels(
    defaults: GenerationDefaults, limits: Limits
) -> None:
    def mask_of(ask: Ask) -> Image.Image:
        request = build_request(ask, defaults=defaults, limits=limits)
        assert request.mask is not None
        return request.mask

    white = io.BytesIO()
    Image.new("L", (64, 64), 255).save(white, "PNG")
    assert mask_of(Ask("inpaint", "x", image=png(), mask_image=white.getvalue())).getextrema() == (255, 255)
    region = mask_of(Ask("inpaint", "x", Options(mask=RegionMask(0, 0, 50, 100)), image=png()))
    assert region.getpixel((0, 0)) == 255 and region.getpixel((63, 0)) == 0
    assert mask_of(Ask("inpaint", "x", image=png("RGBA"))).getextrema()[1] > 0
    with pytest.raises(InvalidRequest, match="mask"):
        build_request(Ask("inpaint", "x", image=png()), defaults=defaults, limits=limits)


@pytest.mark.parametrize(
    "ask",
    [
        Ask("txt2img", "a red cat", Options(steps=3, negative_prompt="dark", language="en")),
        Ask("img2img", "a blue cat", Options(strength=0.6), image=png()),
        Ask("inpaint", "a window", Options(mask=RegionMask(10, 10, 50, 50)), image=png()),
        Ask("inpaint", "a window", image=png(), mask_image=png("L")),
        Ask("mix", "", Options(weights=(2, 1)), mix=(png(), "autumn")),
    ],
    ids=["txt2img", "img2img", "inpaint-region", "inpaint-mask", "mix"],
)
def test_a_stored_request_builds_again_into_the_same_request(
    ask: Ask, defaults: GenerationDefaults, limits: Limits
) -> None:
    request = build_request(ask, defaults=defaults, limits=limits)
    store = Store()
    stored = encode(request, ask, store.put)
    assert stored["codec"] == CODEC_VERSION
    again = build_request(decode(stored, request.seed, store.files.__getitem__), defaults=defaults, limits=limits)
    assert again.describe() == request.describe()
    assert (again.image is None) == (request.image is None) and (again.mask is None) == (request.mask is None)
    if request.mask is not None and again.mask is not None:
        assert again.mask.tobytes() == request.mask.tobytes()


def test_a_row_from_before_the_version_field_reads_as_version_1_and_a_newer_one_is_refused(
    defaults: GenerationDefaults, limits: Limits
) -> None:
    ask = Ask("txt2img", "a red cat", Options(seed=3))
    request = build_request(ask, defaults=defaults, limits=limits)
    stored = encode(request, ask, Store().put)
    legacy = {key: value for key, value in stored.items() if key != "codec"}
    assert decode(legacy, 3, bytes.fromhex).prompt == "a red cat"
    with pytest.raises(UnknownCodec):
        decode({**stored, "codec": CODEC_VERSION + 1}, 3, bytes.fromhex)
