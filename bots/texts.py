"""User-facing texts, by message key, from gettext catalogs in every language easel speaks.

The catalogs are `bots/locale/<language>/LC_MESSAGES/easel.po`, read with Babel; a message id is a
stable key (`status.queued`), and the English catalog holds the source texts. A language that lacks a
catalog, or a catalog that lacks a key, falls back to English, so a missing translation never hides a
message. Placeholders are `str.format` fields.
"""

from __future__ import annotations

import gettext
import io
import logging
import re
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

log = logging.getLogger(__name__)

DOMAIN = "easel"
LOCALE_DIR = Path(__file__).with_name("locale")
SOURCE_LANGUAGE = "en"
_LEFT_TO_RIGHT_WORD = r"[/@#{]?-{0,2}[A-Za-z0-9](?:[A-Za-z0-9_.,:/+×'-]*[A-Za-z0-9])?}?"
_LEFT_TO_RIGHT_RUN = re.compile(rf"(?<![A-Za-z0-9_]){_LEFT_TO_RIGHT_WORD}(?:[ ]+{_LEFT_TO_RIGHT_WORD})*")
"""Latin words and numbers in a row, with the marks options, commands and ids are written with ("--size 768x512",
"/language de", "a1b2c3d4", a style template's "{prompt}")."""
OPTION_NAMES = {
    "width": "--width",
    "height": "--height",
    "size": "--size",
    "steps": "--steps",
    "prior_steps": "--prior-steps",
    "guidance_scale": "--guidance",
    "prior_guidance_scale": "prior guidance",
    "count": "--count",
    "seed": "--seed",
    "strength": "--strength",
    "weights": "--weights",
    "weight": "--weights",
    "negative_prompt": "--neg",
    "zoom": "--zoom",
    "aspect": "--ar",
    "style": "--style",
    "pan": "--pan",
}
"""Request fields as users set them (`--steps`), the same in every language: in refusals and in /settings."""
QUOTE_LIMIT = 200
"""The longest value a text quotes whole: every explanation easel writes itself is shorter."""
QUOTE_KEPT = 100
"""What is quoted of a longer value (only a user can have typed one): its start, then an ellipsis."""


def available_languages() -> list[str]:
    return list(_languages())


@cache
def _languages() -> tuple[str, ...]:
    """The catalogs shipped, read once: every text rendered resolves its language against them (a directory
    listing and a file check per language each time cost about 0.2 ms a text)."""
    return tuple(
        sorted(path.name for path in LOCALE_DIR.iterdir() if (path / "LC_MESSAGES" / f"{DOMAIN}.po").is_file())
    )


def resolve_language(language: str | None) -> str:
    """The catalog for a platform's language tag: `pt-BR` and `pt_BR` -> `pt`, `zh-hans` -> `zh`; English
    for anything easel does not speak."""
    if not language:
        return SOURCE_LANGUAGE
    tag = language.replace("_", "-").lower()
    known = _languages()
    for candidate in (tag, tag.split("-")[0]):
        if candidate in known:
            return candidate
    return SOURCE_LANGUAGE


def language_name(code: str | None, language: str | None = None) -> str:
    """`ru` as "Russian" for an English reader, "russe" for a French one, "русский" for a Russian one; the code
    itself if Babel has no name."""
    if not code:
        return "?"
    try:
        return Locale.parse(code).get_display_name(resolve_language(language)) or code
    except (ValueError, UnknownLocaleError):
        return code


def languages_list() -> str:
    """Every catalog as `code (name in that language)`, for the texts that offer a choice."""
    return ", ".join(f"{code} ({language_name(code, code)})" for code in available_languages())


class _LanguagesList:
    """`languages_list()` as a text's value: written out when the text is rendered, and whole, though longer than
    the values a refusal quotes (`shortened`)."""

    def __format__(self, spec: str) -> str:
        return format(languages_list(), spec)

    def __repr__(self) -> str:
        return "LANGUAGES"


LANGUAGES = _LanguagesList()


@cache
def _catalog(language: str) -> gettext.NullTranslations:
    """The compiled catalog of `language`, chained to English for the keys it lacks."""
    with (LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as source:
        catalog = read_po(source, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    translations = gettext.GNUTranslations(compiled)
    if language != SOURCE_LANGUAGE:
        translations.add_fallback(_catalog(SOURCE_LANGUAGE))
    return translations


def text_of(key: str, language: str | None = None) -> str | None:
    """The raw text for `key`, or None when not even English has it."""
    template = _catalog(resolve_language(language)).gettext(key)
    return None if template == key else template


class Text:
    """A text inside another's values, rendered in the reader's language with it: a refusal names what the value
    must be (`request.rule.*`) or a job's state (`state.done`) in the language of the sentence around it."""

    __slots__ = ("key", "values")

    def __init__(self, key: str, **values: Any) -> None:
        self.key = key
        self.values = values

    def __repr__(self) -> str:
        return f"Text({self.key!r}, {self.values!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Text) and (self.key, self.values) == (other.key, other.values)

    __hash__ = None  # type: ignore[assignment]


def render(key: str, language: str | None = None, **values: Any) -> str:
    """The text for `key` in `language`; an unknown key or a missing value is a bug, logged, but the user
    still gets a line. `Text` values are rendered in `language` first. In a right-to-left language every run of
    left-to-right words (an option and its value, a command, an id, a Latin prompt) is isolated (Unicode's LRI
    and PDI), so that it reads as written and keeps its place in the sentence."""
    text = _render(key, language, values)
    return _isolate_left_to_right(text) if _right_to_left(resolve_language(language)) else text


def _render(key: str, language: str | None, values: dict[str, Any]) -> str:
    values = {
        name: _render(value.key, language, dict(value.values)) if isinstance(value, Text) else value
        for name, value in values.items()
    }
    template = text_of(key, language)
    if template is None:
        log.error("no text for message key %r", key)
        return f"{key} {values}"
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        log.exception("text %r in %r cannot take %r", key, language, values)
        english = text_of(key)
        try:
            return english.format(**values) if english else f"{key} {values}"
        except (KeyError, IndexError, ValueError):
            return f"{template} {values}"


@cache
def _right_to_left(language: str) -> bool:
    return Locale.parse(language).character_order == "right-to-left"


def _isolate_left_to_right(text: str) -> str:
    return _LEFT_TO_RIGHT_RUN.sub(lambda run: f"\u2066{run.group(0)}\u2069", text)


def shortened(value: str) -> str:
    """`value` as a text quotes it: whole up to QUOTE_LIMIT characters, else its first QUOTE_KEPT and an
    ellipsis, so that a refusal of a 4,000-digit seed stays readable and within every platform's limit."""
    return value if len(value) <= QUOTE_LIMIT else value[:QUOTE_KEPT] + "…"
