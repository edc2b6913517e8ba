"""Zoom out and pan: an image set on a larger canvas whose new border the inpaint decoder paints.

The source keeps its pixels: it is pasted unscaled where the larger canvas fits the limits, and the engine
composites the result through the mask (`engine._keep_unmasked`), so only the border is new. Where the canvas
would pass the limits, canvas and source shrink together by one factor (the source resampled once, never
repainted), because refusing a zoom of every full-size result would leave the button useless.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from PIL import Image

from generation.config import Limits

GRID = 64
DEFAULT_ZOOM = 2.0
MIN_ZOOM = 1.1
MAX_ZOOM = 2.0
PAN_SHARE = 0.5
"""How much a pan adds in its direction, as a share of the image's side."""


class Pan(StrEnum):
    LEFT = "left"
    RIGHT = "right"
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True)
class Layout:
    """The canvas, and where the (possibly scaled) source sits on it."""

    width: int
    height: int
    left: int
    top: int
    source_width: int
    source_height: int


def layout(size: tuple[int, int], zoom: float | None, pan: Pan | None, limits: Limits) -> Layout:
    """Where a `size` image goes for a zoom by `zoom` or a pan towards `pan` (exactly one of them is given)."""
    width, height = size
    if pan is None:
        factor = zoom if zoom is not None else DEFAULT_ZOOM
        wanted = (width * factor, height * factor)
    elif pan in (Pan.LEFT, Pan.RIGHT):
        wanted = (width * (1 + PAN_SHARE), float(height))
    else:
        wanted = (float(width), height * (1 + PAN_SHARE))
    canvas_width, canvas_height = _round_up(wanted[0]), _round_up(wanted[1])
    scale = 1.0
    if not _fits(canvas_width, canvas_height, limits):
        scale = min(
            limits.max_width / wanted[0],
            limits.max_height / wanted[1],
            math.sqrt(limits.max_pixels / (wanted[0] * wanted[1])),
        )
        canvas_width, canvas_height = _round_down(wanted[0] * scale), _round_down(wanted[1] * scale)
        scale = min(canvas_width / wanted[0], canvas_height / wanted[1])
    source_width, source_height = max(1, round(width * scale)), max(1, round(height * scale))
    left, top = _place(pan, canvas_width - source_width, canvas_height - source_height)
    return Layout(canvas_width, canvas_height, left, top, source_width, source_height)


def canvas(source: Image.Image, placed: Layout) -> tuple[Image.Image, Image.Image]:
    """The source on its canvas, the border filled with its edge pixels stretched outwards (something of the
    right colours for the decoder to start from), and the mask: white where the decoder paints."""
    image = source.convert("RGB")
    if image.size != (placed.source_width, placed.source_height):
        image = image.resize((placed.source_width, placed.source_height), Image.Resampling.LANCZOS)
    right = placed.width - placed.left - placed.source_width
    bottom = placed.height - placed.top - placed.source_height
    padding = ((placed.top, bottom), (placed.left, right), (0, 0))
    filled = Image.fromarray(np.pad(np.asarray(image), padding, mode="edge"))
    mask = Image.new("L", (placed.width, placed.height), 255)
    mask.paste(0, (placed.left, placed.top, placed.left + placed.source_width, placed.top + placed.source_height))
    return filled, mask


def _place(pan: Pan | None, spare_width: int, spare_height: int) -> tuple[int, int]:
    """The source's corner: centred for a zoom, against the side opposite a pan's direction."""
    left, top = spare_width // 2, spare_height // 2
    if pan is Pan.LEFT:
        left = spare_width
    elif pan is Pan.RIGHT:
        left = 0
    elif pan is Pan.UP:
        top = spare_height
    elif pan is Pan.DOWN:
        top = 0
    return left, top


def _fits(width: int, height: int, limits: Limits) -> bool:
    return width <= limits.max_width and height <= limits.max_height and width * height <= limits.max_pixels


def _round_up(value: float) -> int:
    return max(GRID, math.ceil(value / GRID - 1e-9) * GRID)


def _round_down(value: float) -> int:
    return max(GRID, math.floor(value / GRID + 1e-9) * GRID)
