"""Parameter grids without a model: the axes as people type them, each cell's options, and the sheet's layout."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bots.errors import UserError
from bots.parsing import parse_grid
from generation.grids import MAX_SHEET_SIDE, Axis, cell_count, cell_options, compose


def test_comma_lists_become_axes_in_the_order_typed_and_the_rest_is_the_prompt() -> None:
    parsed, axes = parse_grid("a red fox --guidance 2,4.5,6 --size 128x64 --steps 20,40 --seed 7")
    assert parsed.prompt == "a red fox"
    assert (parsed.options.width, parsed.options.height, parsed.options.seed) == (128, 64, 7)
    assert axes == (Axis("guidance", (2.0, 4.5, 6.0)), Axis("steps", (20.0, 40.0)))
    assert [axis.label(1) for axis in axes] == ["--guidance 4.5", "--steps 40"]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("a fox --steps 20", "grid.no_axis"),
        ("a fox", "grid.no_axis"),
        ("a fox --steps 1,2 --guidance 1,2 --seed 1,2 --prior-steps 2,3", "grid.too_many_axes"),
        ("a fox --steps 1,2 --count 2", "grid.bad_option"),
        ("a fox --steps 20,forty", "request.bad_option"),
        ("a fox --steps 2.5,3", "request.bad_option"),
        ("a fox --guidance 4,", "request.bad_option"),
    ],
)
def test_a_grid_that_cannot_be_made_is_refused_with_its_own_reason(text: str, key: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_grid(text)
    assert caught.value.key == key


def test_cells_vary_the_first_axis_fastest_then_the_second_then_the_third() -> None:
    axes = (Axis("steps", (20, 40)), Axis("guidance", (2, 4, 6)), Axis("seed", (1, 2)))
    cells = cell_options(axes)
    assert len(cells) == cell_count(axes) == 12
    assert cells[:3] == [
        {"steps": 20, "guidance_scale": 2, "seed": 1},
        {"steps": 40, "guidance_scale": 2, "seed": 1},
        {"steps": 20, "guidance_scale": 4, "seed": 1},
    ]
    assert cells[6] == {"steps": 20, "guidance_scale": 2, "seed": 2}
    assert all(isinstance(cell["steps"], int) and isinstance(cell["seed"], int) for cell in cells)


def _colour(number: int) -> tuple[int, int, int]:
    return (40 * number % 256, 255 - 30 * number, 90)


def _box(sheet: np.ndarray, colour: tuple[int, int, int]) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(np.all(sheet == colour, axis=-1))
    assert len(xs), f"no pixel of {colour}"
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def test_the_sheet_puts_each_cell_in_its_column_and_row_and_crosses_out_a_missing_one() -> None:
    axes = (Axis("steps", (20, 40, 60)), Axis("guidance", (2, 4)))
    images: list[Image.Image | None] = [Image.new("RGB", (64, 48), _colour(n)) for n in range(6)]
    images[4] = None
    sheet = np.asarray(compose(images, axes))
    boxes = {n: _box(sheet, _colour(n)) for n in (0, 1, 2, 3, 5)}
    assert boxes[0][0] < boxes[1][0] < boxes[2][0], "the first axis runs along a row"
    assert boxes[0][1] == boxes[1][1] == boxes[2][1] < boxes[3][1] == boxes[5][1], "the second axis down the rows"
    assert boxes[3][0] == boxes[0][0] and boxes[5][0] == boxes[2][0]
    assert boxes[0][2] - boxes[0][0] + 1 == 64 and boxes[0][3] - boxes[0][1] + 1 <= 48
    assert boxes[0][0] > 0, "room for the row labels on the left"


def test_a_sheet_of_large_cells_fits_the_largest_side_every_platform_takes_as_a_photo() -> None:
    axes = (Axis("steps", (1, 2, 3, 4)), Axis("seed", (1, 2, 3)))
    sheet = compose([Image.new("RGB", (1024, 1024), (200, 10, 10))] * 12, axes)
    assert max(sheet.size) == MAX_SHEET_SIDE, sheet.size


def test_a_third_axis_stacks_titled_blocks() -> None:
    axes = (Axis("steps", (1, 2)), Axis("seed", (1, 2)), Axis("guidance", (1, 2)))
    images = [Image.new("RGB", (64, 64), _colour(n)) for n in range(8)]
    sheet = np.asarray(compose(images, axes))
    first, second = _box(sheet, _colour(0)), _box(sheet, _colour(4))
    assert first[0] == second[0] and second[1] > first[1] + 2 * 64, "the second block under the first, a title between"
