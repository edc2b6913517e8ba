from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from generation.errors import InvalidImage
from generation.images import (
    AlphaMask,
    MaskImage,
    RegionMask,
    build_mask,
    decode_image,
    fit,
    parse_region,
    to_rgb,
)

MAX_PIXELS = 50_000_000


def encode(image: Image.Image, kind: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind, **options)
    return buffer.getvalue()


def test_a_good_image_decodes() -> None:
    image = decode_image(encode(Image.new("RGB", (40, 30), "red"), "JPEG"), MAX_PIXELS)
    assert image.size == (40, 30)


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to display
    data = encode(Image.new("RGB", (40, 20), "red"), "JPEG", exif=exif)
    assert decode_image(data, MAX_PIXELS).size == (20, 40)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "not_an_image"),
        (b"hello, this is text and not a picture", "not_an_image"),
        (b"%PDF-1.4\n" + b"0" * 100, "not_an_image"),
    ],
)
def test_non_images_are_refused(data: bytes, code: str) -> None:
    with pytest.raises(InvalidImage) as caught:
        decode_image(data, MAX_PIXELS)
    assert caught.value.code == code


@pytest.mark.parametrize("kind", ["PNG", "JPEG"])
def test_truncated_images_are_refused(kind: str) -> None:
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    data = encode(noise, kind)
    with pytest.raises(InvalidImage) as caught:
        decode_image(data[: len(data) // 2], MAX_PIXELS)
    assert caught.value.code == "truncated_image"


def test_images_over_the_pixel_limit_are_refused_before_decoding() -> None:
    with pytest.raises(InvalidImage) as caught:
        decode_image(encode(Image.new("RGB", (100, 100))), max_pixels=5_000)
    assert caught.value.code == "image_too_large"
    assert "100x100" in str(caught.value) and "5000" in str(caught.value)


def test_a_decompression_bomb_is_refused() -> None:
    """A tiny file that claims 20000x20000 pixels: refused from its header alone."""
    bomb = encode(Image.new("1", (20_000, 20_000)))
    assert len(bomb) < 100_000
    with pytest.raises(InvalidImage) as caught:
        decode_image(bomb, MAX_PIXELS)
    assert caught.value.code == "image_too_large"


def test_alpha_is_kept_by_decoding_and_flattened_onto_white() -> None:
    image = decode_image(encode(Image.new("RGBA", (8, 8), (0, 0, 0, 0))), MAX_PIXELS)
    assert image.mode == "RGBA"
    assert to_rgb(image).getpixel((0, 0)) == (255, 255, 255)


def test_fit_covers_and_crops_the_centre() -> None:
    image = Image.new("RGB", (200, 100), "blue")
    image.paste((255, 0, 0), (0, 0, 50, 100))  # the left quarter is cropped away
    fitted = fit(image, 64, 64)
    assert fitted.size == (64, 64)
    red, _, blue = fitted.getpixel((2, 32))
    assert red < 10 and blue > 245


def test_a_mask_image_is_resized_to_the_image() -> None:
    source = Image.new("RGB", (128, 128))
    mask = Image.new("L", (32, 32), 0)
    mask.paste(255, (0, 0, 16, 32))
    built = build_mask(MaskImage(mask), source, 64, 64)
    assert built.size == (64, 64) and built.mode == "L"
    assert built.getpixel((5, 30)) == 255 and built.getpixel((60, 30)) == 0


def test_grey_mask_values_survive_for_soft_blending() -> None:
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))
    mask.paste(100, (32, 0, 64, 64))
    built = build_mask(MaskImage(mask), Image.new("RGB", (64, 64)), 64, 64)
    assert built.getpixel((50, 10)) == 100


def test_transparent_pixels_become_the_mask() -> None:
    source = Image.new("RGBA", (64, 64), (9, 9, 9, 255))
    source.paste((0, 0, 0, 0), (0, 0, 32, 32))
    built = build_mask(AlphaMask(), source, 64, 64)
    assert built.getpixel((5, 5)) == 255 and built.getpixel((50, 50)) == 0


def test_an_alpha_mask_needs_an_alpha_channel() -> None:
    with pytest.raises(InvalidImage) as caught:
        build_mask(AlphaMask(), Image.new("RGB", (64, 64)), 64, 64)
    assert caught.value.code == "no_alpha"


def test_a_region_in_percent_marks_that_rectangle() -> None:
    built = build_mask(RegionMask(25, 50, 50, 50), Image.new("RGB", (64, 64)), 64, 64)
    pixels = np.asarray(built)
    assert pixels[32:, 16:48].min() == 255
    assert pixels[:32].max() == 0 and pixels[:, :16].max() == 0 and pixels[:, 48:].max() == 0


@pytest.mark.parametrize(
    "region",
    [
        RegionMask(-1, 0, 10, 10),
        RegionMask(0, 0, 0, 10),
        RegionMask(60, 0, 50, 10),
        RegionMask(0, 95, 10, 10),
        RegionMask(0, 0, 101, 5),
    ],
)
def test_bad_regions_are_refused(region: RegionMask) -> None:
    with pytest.raises(InvalidImage) as caught:
        build_mask(region, Image.new("RGB", (64, 64)), 64, 64)
    assert caught.value.code == "bad_region"


def test_regions_parse_from_text() -> None:
    assert parse_region("10, 20%,30,40") == RegionMask(10, 20, 30, 40)
    with pytest.raises(InvalidImage, match="four numbers"):
        parse_region("10,20,30")


@pytest.mark.parametrize("value", [0, 60, 127])
def test_a_mask_with_nothing_to_repaint_is_refused(value: int) -> None:
    with pytest.raises(InvalidImage) as caught:
        build_mask(MaskImage(Image.new("L", (64, 64), value)), Image.new("RGB", (64, 64)), 64, 64)
    assert caught.value.code == "empty_mask"
