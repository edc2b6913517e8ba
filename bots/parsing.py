"""The shared prompt parser: free text, then options, as people type them in any chat.

`a lighthouse at dawn --size 768x512 --steps 30 --neg blurry, dark` becomes a prompt and its `Options`.
Phone keyboards turn `--` into an em or en dash, so those count too.
Values are converted here and range-checked by the engine, which names the allowed range.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bots.config import STYLE_NAME
from bots.errors import UserError
from bots.texts import Text
from generation.asks import Options, parse_weights
from generation.errors import InvalidImage
from generation.grids import AXES, INTEGER_AXES, MAX_AXES, Axis
from generation.images import parse_region
from generation.language_detection import ENGLISH, TRANSLATABLE, UNTRANSLATABLE
from generation.outpainting import Pan

LANGUAGES = TRANSLATABLE | UNTRANSLATABLE | {ENGLISH}
_OPTION = re.compile(r"^(?:--|—|–)([a-z][a-z-]*)$")
_SIZE = re.compile(r"^(\d+)\s*[x×*]\s*(\d+)$")
_RATIO = re.compile(r"^(\d{1,4})\s*[:/]\s*(\d{1,4})$")


def _language(text: str) -> str:
    """`--lang de`: the prompt's language when detection cannot tell (a word or two, a rare language)."""
    code = text.strip().lower()
    if code not in LANGUAGES:
        raise ValueError(text)
    return code


def _integer(text: str) -> int:
    return int(text)


def _number(text: str) -> float:
    return float(text.replace(",", "."))


def _direction(text: str) -> str:
    """`--pan left`: the side a pan extends the picture towards."""
    direction = text.strip().lower()
    if direction not in {pan.value for pan in Pan}:
        raise ValueError(text)
    return direction


def _aspect(text: str) -> tuple[int, int]:
    """`--ar 16:9`: width to height, two whole numbers."""
    match = _RATIO.match(text)
    if not match or not int(match.group(1)) or not int(match.group(2)):
        raise ValueError(text)
    return int(match.group(1)), int(match.group(2))


def _style(text: str) -> str:
    """`--style noir`: a style's name, one word, in any case."""
    name = text.strip().lower()
    if not STYLE_NAME.fullmatch(name):
        raise ValueError(text)
    return name


def _size(text: str) -> dict[str, int]:
    match = _SIZE.match(text)
    if not match:
        raise ValueError(text)
    return {"width": int(match.group(1)), "height": int(match.group(2))}


_OPTIONS: dict[str, tuple[str, Callable[[str], Any], str]] = {
    "size": ("size", _size, "size"),
    "ar": ("aspect", _aspect, "aspect"),
    "aspect": ("aspect", _aspect, "aspect"),
    "width": ("width", _integer, "pixels"),
    "height": ("height", _integer, "pixels"),
    "steps": ("steps", _integer, "whole"),
    "prior-steps": ("prior_steps", _integer, "whole"),
    "seed": ("seed", _integer, "whole"),
    "count": ("count", _integer, "count"),
    "guidance": ("guidance_scale", _number, "number"),
    "strength": ("strength", _number, "strength"),
    "neg": ("negative_prompt", str, "text"),
    "negative": ("negative_prompt", str, "text"),
    "region": ("mask", parse_region, "region"),
    "weights": ("weights", parse_weights, "weights"),
    "lang": ("language", _language, "language"),
    "zoom": ("zoom", _number, "zoom"),
    "pan": ("pan", _direction, "direction"),
    "style": ("style", _style, "style"),
}
"""option -> (`Options` field, converter, what the value must look like: `request.expect.<key>`)"""
_TEXT_OPTIONS = {"neg", "negative"}


@dataclass(frozen=True)
class ParsedPrompt:
    prompt: str
    options: Options = Options()


def parse_option(name: str, value: str) -> Options:
    """One option given apart from a prompt (a slash command's field), converted as in a prompt."""
    return parse_prompt(f"--{name} {value}").options


def parse_prompt(text: str) -> ParsedPrompt:
    """Split `text` into the prompt and the options after it; raises `UserError` naming a bad option."""
    words = text.split()
    prompt: list[str] = []
    options: dict[str, Any] = {}
    index = 0
    while index < len(words):
        match = _OPTION.match(words[index].lower())
        if not match:
            prompt.append(words[index])
            index += 1
            continue
        name = match.group(1)
        if name not in _OPTIONS:
            raise UserError("request.unknown_option", option=f"--{name}", known=", ".join(f"--{o}" for o in _OPTIONS))
        keyword, convert, expected = _OPTIONS[name]
        value_words, index = _value(words, index + 1, whole_rest=name in _TEXT_OPTIONS)
        raw = " ".join(value_words)
        if not raw:
            raise UserError(
                "request.bad_option", option=f"--{name}", expected=Text(f"request.expect.{expected}"), value=""
            )
        try:
            value = convert(raw)
        except (ValueError, InvalidImage):  # InvalidRequest is a ValueError
            raise UserError(
                "request.bad_option", option=f"--{name}", expected=Text(f"request.expect.{expected}"), value=raw
            ) from None
        if keyword == "size":
            options.update(value)
        else:
            options[keyword] = value
    return ParsedPrompt(" ".join(prompt), Options(**options))


def parse_grid(text: str) -> tuple[ParsedPrompt, tuple[Axis, ...]]:
    """`/grid PROMPT --steps 20,40 --guidance 2,4,6`: the options given as comma lists (of `AXES`) become the
    grid's axes, in the order typed; the rest is parsed as any prompt. Under a grid a comma separates values, so
    decimals take a point (`--guidance 2.5,4`)."""
    words = text.split()
    kept: list[str] = []
    axes: dict[str, Axis] = {}
    index = 0
    while index < len(words):
        match = _OPTION.match(words[index].lower())
        value = words[index + 1] if index + 1 < len(words) else ""
        if match and match.group(1) in AXES and "," in value:
            axes[match.group(1)] = _axis(match.group(1), value)
            index += 2
            continue
        kept.append(words[index])
        index += 1
    parsed = parse_prompt(" ".join(kept))
    _check_axes(tuple(axes.values()))
    if parsed.options.count is not None:
        raise UserError("grid.bad_option", option="--count")
    return parsed, tuple(axes.values())


def grid_axes(given: Mapping[str, Sequence[float]]) -> tuple[Axis, ...]:
    """A grid's axes given as lists (the REST API's `{"steps": [20, 40]}`), checked as `/grid` checks them."""
    axes = tuple(_axis(option, ",".join(f"{value:g}" for value in values)) for option, values in given.items())
    return _check_axes(axes)


def _check_axes(axes: tuple[Axis, ...]) -> tuple[Axis, ...]:
    if not axes:
        raise UserError("grid.no_axis")
    if len(axes) > MAX_AXES:
        raise UserError("grid.too_many_axes", limit=MAX_AXES)
    return axes


def _axis(option: str, text: str) -> Axis:
    """One axis's values; each must be a number (a whole one where the option takes whole numbers)."""
    convert = _integer if option in INTEGER_AXES else float
    try:
        values = tuple(float(convert(part)) for part in text.split(",") if part)
    except ValueError:
        values = ()
    if len(values) < 2:
        expected = Text("request.expect.whole_list") if option in INTEGER_AXES else Text("request.expect.number_list")
        raise UserError("request.bad_option", option=f"--{option}", expected=expected, value=text)
    return Axis(option, values)


def _value(words: list[str], start: int, *, whole_rest: bool) -> tuple[list[str], int]:
    """One word, or for text options every word up to the next option."""
    if not whole_rest:
        return words[start : start + 1], start + 1
    end = start
    while end < len(words) and not _OPTION.match(words[end].lower()):
        end += 1
    return words[start:end], end


_DURATION_PART = re.compile(r"(\d+)([mhdw])")
_DURATION_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_duration(text: str) -> timedelta | None:
    """`30m`, `2h`, `1d12h`, `1w` (minutes, hours, days, weeks, added up); None when `text` is not written as a
    duration at all (so a ban's reason may follow), `moderation.bad_duration` when it is zero or too long."""
    compact = "".join(text.lower().split())
    parts = _DURATION_PART.findall(compact)
    if not parts or "".join(number + unit for number, unit in parts) != compact:
        return None
    try:
        length = sum((int(number) * _DURATION_UNITS[unit] for number, unit in parts), timedelta())
        datetime.now(UTC) + length
    except OverflowError:
        raise UserError("moderation.bad_duration", value=text) from None
    if length <= timedelta():
        raise UserError("moderation.bad_duration", value=text)
    return length
