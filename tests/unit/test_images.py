from __future__ import annotations

import io
import struct
import zlib
from typing import NoReturn

import numpy as np
import pytest
from PIL import Image, ImageFile
from pydantic import ValidationError

from bots.errors import user_error
from bots.texts import available_languages, render
from generation.config import Limits
from generation.errors import InvalidImage
from generation.images import (
    ACCEPTED_FORMATS,
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


def png_header(width: int, height: int) -> bytes:
    """A valid PNG signature and header claiming any size, with no pixel data behind it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.fixture
def other_plugins_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Pillow plugin but the accepted ones fails the test if it is asked to parse the bytes."""

    def parsed(*_: object) -> NoReturn:
        pytest.fail("a plugin of a refused format parsed the upload")

    Image.init()
    for name, (_, accept) in list(Image.OPEN.items()):
        if name not in ACCEPTED_FORMATS:
            monkeypatch.setitem(Image.OPEN, name, (parsed, accept))


@pytest.fixture
def nothing_decodes(monkeypatch: pytest.MonkeyPatch) -> None:
    def decoded(*_: object) -> NoReturn:
        pytest.fail("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", decoded)


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
        (b"hello, this is text and not a picture", "unsupported_format"),
        (b"%PDF-1.4\n" + b"0" * 100, "unsupported_format"),
    ],
)
def test_non_images_are_refused(data: bytes, code: str) -> None:
    with pytest.raises(InvalidImage) as caught:
        decode_image(data, MAX_PIXELS)
    assert caught.value.code == code


@pytest.mark.parametrize(
    "data", [b"GIF89a broken", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, b"RIFF\x00\x00\x00\x00WEBPVP8 junk"]
)
def test_an_accepted_format_with_a_broken_header_is_damaged_not_unsupported(data: bytes) -> None:
    with pytest.raises(InvalidImage) as caught:
        decode_image(data, MAX_PIXELS)
    assert caught.value.code == "truncated_image"


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


@pytest.mark.parametrize("kind", ["BMP", "TIFF", "ICO", "TGA", "PCX", "PPM", "SGI", "DDS"])
def test_other_image_formats_are_refused_unparsed(kind: str, other_plugins_fail: None) -> None:
    data = encode(Image.new("RGB", (16, 16), "red"), kind)
    with pytest.raises(InvalidImage) as caught:
        decode_image(data, MAX_PIXELS)
    assert caught.value.code == "unsupported_format" and caught.value.values == {}


def test_postscript_never_reaches_ghostscript(other_plugins_fail: None) -> None:
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n0 0 moveto 16 16 lineto stroke\nshowpage\n%%EOF\n"
    with pytest.raises(InvalidImage) as caught:
        decode_image(eps, MAX_PIXELS)
    assert caught.value.code == "unsupported_format"


@pytest.mark.parametrize("kind", ["PNG", "JPEG", "WEBP", "GIF"])
def test_the_accepted_formats_decode(kind: str, other_plugins_fail: None) -> None:
    image = decode_image(encode(Image.new("RGB", (24, 12), (250, 0, 0)), kind), MAX_PIXELS)
    assert image.size == (24, 12)
    assert image.convert("RGB").getpixel((5, 5))[0] > 200


@pytest.mark.parametrize("kind", ["GIF", "WEBP"])
def test_an_animation_gives_its_first_frame(kind: str) -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    data = encode(frames[0], kind, save_all=True, append_images=frames[1:], duration=100)
    assert decode_image(data, MAX_PIXELS).convert("RGB").getpixel((4, 4))[0] > 200


@pytest.mark.parametrize("size", [(10_000, 10_000), (40_000, 40_000)])
def test_a_header_over_the_limit_is_refused_in_easels_words_before_decoding(
    size: tuple[int, int], nothing_decodes: None
) -> None:
    """Past Pillow's own limit (89 million pixels, and twice that) the refusal is still easel's, never Pillow's."""
    with pytest.raises(InvalidImage) as caught:
        decode_image(png_header(*size), MAX_PIXELS)
    assert caught.value.code == "image_too_large"
    assert caught.value.values == {"megapixels": 50.0}
    assert "bomb" not in str(caught.value) and "exceeds limit" not in str(caught.value)
    assert str(MAX_PIXELS) in str(caught.value)


@pytest.mark.parametrize("language", available_languages())
@pytest.mark.parametrize(
    ("data", "key", "named"),
    [
        (png_header(40_000, 40_000), "image.image_too_large", "50"),
        (encode(Image.new("RGB", (8, 8)), "TIFF"), "image.unsupported_format", "GIF"),
    ],
)
def test_the_refusals_are_told_in_the_users_language(data: bytes, key: str, named: str, language: str) -> None:
    with pytest.raises(InvalidImage) as caught:
        decode_image(data, MAX_PIXELS)
    told = user_error(caught.value)
    text = render(told.key, language, **told.values)
    assert told.key == key and named in text and "Image size" not in text
    assert language == "en" or text != render(key, "en", **told.values)


def test_the_pixel_limit_cannot_be_set_past_what_pillow_opens() -> None:
    assert Limits(max_input_pixels=2 * Image.MAX_IMAGE_PIXELS).max_input_pixels == 2 * Image.MAX_IMAGE_PIXELS
    with pytest.raises(ValidationError):
        Limits(max_input_pixels=2 * Image.MAX_IMAGE_PIXELS + 1)


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
