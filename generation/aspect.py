"""Aspect ratios (`--ar 16:9`): the size in multiples of 64 that comes closest to a ratio at about the default
number of pixels, within the limits.

Few ratios are exact in multiples of 64 near a given area (4:3 near 768x768 is not), so every size within the
limits is scored by how far its ratio is from the one asked for, and, less, how far its area is from the default's.
"""

from __future__ import annotations

import math

from generation.config import Limits
from generation.errors import InvalidRequest

GRID = 64
WIDEST = 4.0
"""The most elongated ratio taken either way (4:1 or 1:4): past it, a side would be a sliver of 64 pixels."""
RATIO_WEIGHT = 4.0
"""How much more an error in the ratio counts than one in the area (both as logarithms)."""


def aspect_size(ratio: tuple[int, int], area: int, limits: Limits) -> tuple[int, int]:
    """The width and height for `ratio` (width:height) near `area` pixels; the ratio must be within 1:4 to 4:1."""
    wanted = math.log(ratio[0] / ratio[1])
    target = math.log(min(area, limits.max_pixels))
    best: tuple[float, int, int] | None = None
    for width in range(GRID, limits.max_width + 1, GRID):
        for height in range(GRID, limits.max_height + 1, GRID):
            if width * height > limits.max_pixels:
                break
            score = RATIO_WEIGHT * abs(math.log(width / height) - wanted) + abs(math.log(width * height) - target)
            if best is None or score < best[0]:
                best = (score, width, height)
    assert best is not None, "Limits allow at least 64x64"
    return best[1], best[2]


def within_range(ratio: tuple[int, int]) -> bool:
    width, height = ratio
    return width > 0 and height > 0 and 1 / WIDEST <= width / height <= WIDEST


def requested_size(
    ratio: tuple[int, int], sized_by_image: bool, width: int | None, height: int | None, area: int, limits: Limits
) -> tuple[int, int]:
    """The size `--ar` stands for in a request; never beside a size, nor for an outpaint, which its image sizes."""
    shown = f"{ratio[0]}:{ratio[1]}"
    if sized_by_image:
        raise InvalidRequest("unexpected", "aspect", shown, "outpaint_sized_by_image")
    if width is not None or height is not None:
        raise InvalidRequest("unexpected", "aspect", shown, "size_or_aspect")
    if not within_range(ratio):
        raise InvalidRequest("out_of_range", "aspect", shown, "aspect_range", low=f"1:{WIDEST:g}", high=f"{WIDEST:g}:1")
    return aspect_size(ratio, area, limits)
