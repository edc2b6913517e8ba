"""`easel generate --op grid`: a parameter grid run without the service, its sheet and its cells written as PNG files.

The varied options come as comma lists (`--steps 20,40 --guidance 2,4,6`), so `easel generate` reads those four
options as lists for every operation and `one` refuses a list where a grid is not asked for.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from generation.grids import MAX_AXES, Axis, cell_options, compose

GRID_OPTIONS = {"steps": "steps", "guidance": "guidance", "prior_steps": "prior-steps", "seed": "seed"}
"""The argparse destinations a grid may vary, and the option each is typed as (`generation.grids.AXES`)."""


class ListError(ValueError):
    """A comma list where one value is expected, or a grid without one."""


def numbers(convert: Callable[[str], float]) -> Callable[[str], tuple[float, ...]]:
    """An argparse type: one number, or a comma list of them (for a grid)."""

    def read(text: str) -> tuple[float, ...]:
        return tuple(convert(part) for part in text.split(",") if part.strip())

    read.__name__ = convert.__name__  # argparse names the type in its refusal: "invalid int value"
    return read


def one(values: tuple[float, ...] | None, option: str) -> Any:
    """The single value of an option outside a grid."""
    if values is None:
        return None
    if len(values) != 1:
        raise ListError(f"--{option} takes one value; comma lists are for --op grid")
    return values[0]


def grid_axes(args: argparse.Namespace) -> tuple[Axis, ...]:
    """The options given as lists, in a fixed order: the first is the sheet's columns, the second its rows."""
    axes = tuple(
        Axis(option, tuple(float(value) for value in getattr(args, name)))
        for name, option in GRID_OPTIONS.items()
        if getattr(args, name) is not None and len(getattr(args, name)) > 1
    )
    if not axes:
        raise ListError("--op grid needs at least one of --steps, --guidance, --prior-steps, --seed as a comma list")
    if len(axes) > MAX_AXES:
        raise ListError(f"--op grid varies at most {MAX_AXES} options")
    if args.count != 1 or args.items or args.mask:
        raise ListError("--op grid makes one image per cell from text: no --count, --image or --mask")
    return axes


def cell_args(args: argparse.Namespace, axes: Sequence[Axis], seed: int) -> list[argparse.Namespace]:
    """One txt2img command line per cell, every cell on the seed given (else `seed`) unless the seed is an axis."""
    cells = []
    for values in cell_options(axes):
        cell = argparse.Namespace(**vars(args))
        cell.op = "txt2img"
        for name in GRID_OPTIONS:
            field = {"guidance": "guidance_scale"}.get(name, name)
            given = values.get(field)
            setattr(cell, name, (given,) if given is not None else getattr(args, name))
        if "seed" not in values and args.seed is None:
            cell.seed = (seed,)
        cells.append(cell)
    return cells


def run_grid(generate: Callable[[Any], Any], requests: Sequence[Any], axes: Sequence[Axis], output: Path) -> dict:
    """Each cell made in turn, then the sheet; what `easel generate` prints."""
    started = time.perf_counter()
    results = [generate(request) for request in requests]
    seconds = time.perf_counter() - started
    compose([result.images[0] for result in results], axes).save(output)
    cells = [output.with_name(f"{output.stem}-{index}{output.suffix}") for index in range(1, len(results) + 1)]
    for result, path in zip(results, cells, strict=True):
        result.images[0].save(path)
    summary: dict[str, Any] = {
        "files": [str(output)],
        "cells": [str(path) for path in cells],
        "seeds": sorted({result.seeds[0] for result in results}),
        "seconds": round(seconds, 3),
    }
    translation = results[0].translation
    if translation is not None:
        summary["translation"] = dataclasses.asdict(translation)
    return summary
