"""Parameter grids: one request per combination of the options a user varies, and the labelled sheet of their images.

A grid runs as ordinary jobs (one per cell, in the fair queue like any other), so this module only says which
options each cell takes and draws the sheet once the cells have ended. Every cell keeps the same seed unless the
seed is one of the axes, so that the cells differ only in what is varied. Cell numbers on the sheet are the
numbers of the buttons that send a cell alone.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

AXES: dict[str, str] = {"steps": "steps", "guidance": "guidance_scale", "prior-steps": "prior_steps", "seed": "seed"}
"""The options a grid may vary, as typed (`--steps 20,40`), and the `Options` field each sets."""
INTEGER_AXES = frozenset({"steps", "prior-steps", "seed"})
MAX_AXES = 3
MAX_SHEET_SIDE = 2048
"""The sheet's longest side: cells shrink to fit it, so that every platform takes the sheet as a photo; each
cell is also kept at full size and sent alone on request."""
_BACKGROUND = (24, 24, 27)
_TEXT = (236, 236, 240)
_FAILED = (70, 70, 76)


@dataclass(frozen=True)
class Axis:
    """One varied option and its values, in the order they were typed."""

    option: str
    values: tuple[float, ...]

    @property
    def field(self) -> str:
        return AXES[self.option]

    def label(self, index: int) -> str:
        return f"--{self.option} {self.values[index]:g}"

    def value(self, index: int) -> int | float:
        value = self.values[index]
        return int(value) if self.option in INTEGER_AXES else value


def cell_options(axes: Sequence[Axis]) -> list[dict[str, int | float]]:
    """Each cell's values, the first axis varying fastest (the sheet's columns), then the second (its rows), then
    the third (its blocks, one under another)."""
    ranges = [range(len(axis.values)) for axis in reversed(axes)]
    return [
        {axis.field: axis.value(index) for axis, index in zip(reversed(axes), combination, strict=True)}
        for combination in itertools.product(*ranges)
    ]


def cell_count(axes: Sequence[Axis]) -> int:
    return math.prod(len(axis.values) for axis in axes)


def compose(images: Sequence[Image.Image | None], axes: Sequence[Axis]) -> Image.Image:
    """The sheet: the cells in their places (a failed or blocked cell as a dark square with a cross), each
    numbered, the columns and rows labelled with their values, a third axis as titled blocks."""
    columns = len(axes[0].values)
    rows = len(axes[1].values) if len(axes) > 1 else 1
    blocks = len(axes[2].values) if len(axes) > 2 else 1
    width, height = next((image.size for image in images if image is not None), (512, 512))
    scale = min(1.0, MAX_SHEET_SIDE / (columns * width), MAX_SHEET_SIDE / (rows * blocks * height))
    cell_width, cell_height = max(1, int(width * scale)), max(1, int(height * scale))
    font = ImageFont.load_default(size=max(12, min(cell_width, cell_height) // 12))
    band = _text_height(font) * 2
    left = max((_text_width(font, axes[1].label(row)) for row in range(rows)), default=0) + band if rows > 1 else 0
    block_height = band + rows * cell_height
    title = band if blocks > 1 else 0
    sheet = Image.new("RGB", (left + columns * cell_width, blocks * (title + block_height)), _BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for block in range(blocks):
        top = block * (title + block_height)
        if blocks > 1:
            draw.text((band // 2, top + band // 4), axes[2].label(block), font=font, fill=_TEXT)
        for column in range(columns):
            draw.text(
                (left + column * cell_width + band // 2, top + title + band // 4),
                axes[0].label(column),
                font=font,
                fill=_TEXT,
            )
        for row in range(rows):
            y = top + title + band + row * cell_height
            if rows > 1:
                draw.text((band // 2, y + cell_height // 2), axes[1].label(row), font=font, fill=_TEXT, anchor="lm")
            for column in range(columns):
                number = (block * rows + row) * columns + column
                box = (left + column * cell_width, y, left + (column + 1) * cell_width, y + cell_height)
                _draw_cell(sheet, draw, box, images[number] if number < len(images) else None, number + 1, font)
    over = max(sheet.size) / MAX_SHEET_SIDE
    if over > 1:  # the labels' room on top of cells that already fill the side
        sheet = sheet.resize((round(sheet.width / over), round(sheet.height / over)), Image.Resampling.LANCZOS)
    return sheet


def _draw_cell(
    sheet: Image.Image,
    draw: ImageDraw.ImageDraw,
    box: tuple[int, int, int, int],
    image: Image.Image | None,
    number: int,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
) -> None:
    x0, y0, x1, y1 = box
    if image is None:
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=_FAILED)
        draw.line((x0, y0, x1 - 1, y1 - 1), fill=_BACKGROUND, width=3)
        draw.line((x0, y1 - 1, x1 - 1, y0), fill=_BACKGROUND, width=3)
    else:
        sheet.paste(image.convert("RGB").resize((x1 - x0, y1 - y0), Image.Resampling.LANCZOS), (x0, y0))
    tag = f"#{number}"
    pad = max(2, _text_height(font) // 4)
    draw.rectangle((x0, y0, x0 + _text_width(font, tag) + 2 * pad, y0 + _text_height(font) + 2 * pad), fill=_BACKGROUND)
    draw.text((x0 + pad, y0 + pad), tag, font=font, fill=_TEXT)


def _text_width(font: ImageFont.FreeTypeFont | ImageFont.ImageFont, text: str) -> int:
    return int(math.ceil(font.getlength(text)))


def _text_height(font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> int:
    left, top, right, bottom = font.getbbox("Ag#0")
    return int(bottom - top) + 2
