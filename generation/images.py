"""Decoding, fitting and masking of user-supplied images.

Uploads come from strangers: everything here assumes the bytes may be hostile (not an image, cut off,
a decompression bomb, or a format whose decoder is rarely exercised) and refuses them with an `InvalidImage`
rather than a Pillow traceback.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from generation.errors import InvalidImage

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
"""What chat apps and cameras send. No other Pillow plugin ever parses an upload: the seldom-used decoders
(BMP, TIFF, ICO, TGA, PCX, PPM, SGI, DDS...) are where parsing bugs hide, and EPS hands the file to Ghostscript."""
_MASK_THRESHOLD = 128  # the inpaint pipeline repaints mask pixels at or above one half


def decode_image(data: bytes, max_pixels: int) -> Image.Image:
    """Open untrusted bytes as an upright image (a GIF's or WebP's first frame), keeping its alpha channel for
    mask extraction.

    The size comes from the header and is refused over `max_pixels` before any pixel is decoded. Pillow's own
    bomb check cannot be turned off per call: its warning is silenced, since easel's limit decides, and its error
    (past twice Pillow's limit, which `Limits` keeps `max_pixels` under) is turned into the same refusal.
    """
    if not data:
        raise InvalidImage("not_an_image", "the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
            width, height = image.size
            if width * height > max_pixels:
                raise _too_large(f"the image is {width}x{height} pixels", max_pixels)
            image.load()
    except InvalidImage:
        raise
    except UnidentifiedImageError as error:
        if _starts_like_an_accepted_format(data):
            raise InvalidImage("truncated_image", "the image is damaged: its header cannot be read") from error
        accepted = ", ".join(ACCEPTED_FORMATS)
        raise InvalidImage(
            "unsupported_format", f"the file is not an image in an accepted format ({accepted})"
        ) from error
    except Image.DecompressionBombError as error:
        raise _too_large(f"the image has more than {2 * Image.MAX_IMAGE_PIXELS} pixels", max_pixels) from error
    except (OSError, SyntaxError, ValueError) as error:
        raise InvalidImage("truncated_image", f"the image is damaged or incomplete: {error}") from error
    return ImageOps.exif_transpose(image)


def _starts_like_an_accepted_format(data: bytes) -> bool:
    """Whether an accepted plugin knows the signature: a GIF that fails to open is damaged, not of another format."""
    prefix = data[:16]
    return any((accept := Image.OPEN[name][1]) is not None and accept(prefix) for name in ACCEPTED_FORMATS)


def _too_large(what: str, max_pixels: int) -> InvalidImage:
    return InvalidImage(
        "image_too_large",
        f"{what}; at most {max_pixels} pixels are accepted",
        megapixels=max_pixels / 1_000_000,
    )


def has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)


def to_rgb(image: Image.Image) -> Image.Image:
    """Flatten onto white, so transparent areas do not turn into arbitrary hidden colours."""
    if not has_alpha(image):
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def fit(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale to cover the target and crop the centre, keeping the aspect ratio."""
    if image.size == (width, height):
        return image
    return ImageOps.fit(image, (width, height), method=Image.Resampling.LANCZOS)


def fitted_size(
    image_size: tuple[int, int], area: int, max_width: int, max_height: int, max_pixels: int
) -> tuple[int, int]:
    """A size in multiples of 64 near `area` pixels with the image's aspect ratio, inside the limits."""
    source_width, source_height = image_size
    aspect = source_width / source_height
    area = min(area, max_pixels)
    width = (area * aspect) ** 0.5
    height = width / aspect
    scale = min(1.0, max_width / width, max_height / height)
    width, height = width * scale, height * scale

    def snap(value: float, limit: int) -> int:
        return max(64, min(limit // 64 * 64, int(value // 64) * 64))

    return snap(width, max_width), snap(height, max_height)


@dataclass(frozen=True)
class MaskImage:
    """A separate mask picture: white repaints, black keeps, grey blends."""

    image: Image.Image


@dataclass(frozen=True)
class AlphaMask:
    """The transparent pixels of the input image mark what to repaint."""


@dataclass(frozen=True)
class RegionMask:
    """A rectangle in percent of the image: left, top, width, height."""

    x: float
    y: float
    width: float
    height: float


MaskSpec = MaskImage | AlphaMask | RegionMask


def parse_region(text: str) -> RegionMask:
    """Parse 'X,Y,W,H' in percent, as typed by users and operators."""
    parts = [part.strip().rstrip("%") for part in text.split(",")]
    try:
        x, y, width, height = (float(part) for part in parts)
    except ValueError:
        raise InvalidImage("bad_region", f"region {text!r} must be four numbers X,Y,W,H in percent") from None
    return RegionMask(x, y, width, height)


def build_mask(spec: MaskSpec, source: Image.Image, width: int, height: int) -> Image.Image:
    """Turn a mask spec into an 'L' image aligned with `fit(source, width, height)`."""
    if isinstance(spec, MaskImage):
        mask = ImageOps.exif_transpose(spec.image).convert("L")
        if mask.size != source.size:
            mask = mask.resize(source.size, Image.Resampling.BILINEAR)
    elif isinstance(spec, AlphaMask):
        if not has_alpha(source):
            raise InvalidImage("no_alpha", "the image has no transparent pixels to use as a mask")
        alpha = source.convert("RGBA").getchannel("A")
        mask = Image.eval(alpha, lambda value: 255 - value)
    else:
        mask = _region(spec, source.size)
    mask = fit(mask, width, height)
    if np.asarray(mask).max() < _MASK_THRESHOLD:
        raise InvalidImage("empty_mask", "the mask marks nothing to repaint; white areas of a mask are repainted")
    return mask


def _region(region: RegionMask, size: tuple[int, int]) -> Image.Image:
    values = (region.x, region.y, region.width, region.height)
    if not all(0 <= value <= 100 for value in values) or region.width <= 0 or region.height <= 0:
        raise InvalidImage(
            "bad_region", f"region {values} must be percentages between 0 and 100 with a positive width and height"
        )
    if region.x + region.width > 100 or region.y + region.height > 100:
        raise InvalidImage(
            "bad_region", f"region {values} reaches past the edge of the image (X+W and Y+H must be at most 100)"
        )
    image_width, image_height = size
    left = round(region.x / 100 * image_width)
    top = round(region.y / 100 * image_height)
    right = round((region.x + region.width) / 100 * image_width)
    bottom = round((region.y + region.height) / 100 * image_height)
    mask = Image.new("L", size, 0)
    mask.paste(255, (left, top, max(right, left + 1), max(bottom, top + 1)))
    return mask
