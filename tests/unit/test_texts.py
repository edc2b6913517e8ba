"""The catalogs: complete where they must be, consistent with each other, and with the code's keys."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bots.errors import UserError
from bots.kit.boundary import explain
from bots.texts import LOCALE_DIR, Text, available_languages, render, resolve_language, text_of
from generation.errors import RULES, InvalidRequest
from generation.requests import Operation
from storage.records import JobState

BOTS = Path(__file__).parents[2] / "bots"
TWELVE_MORE = ("ar", "ja", "ko", "hi", "tr", "uk", "it", "pl", "id", "vi", "fa", "nl")
COMPLETE = tuple(available_languages())
"""Every catalog translates every key: a missing one would show English inside another language."""


def keys(language: str) -> dict[str, str]:
    with (LOCALE_DIR / language / "LC_MESSAGES" / "easel.po").open("rb") as source:
        return {message.id: message.string for message in read_po(source) if message.id and message.string}


def formats(template: str) -> set[tuple[str, str | None, str | None]]:
    """Each placeholder with its format spec and conversion: `{low:g}` in English stays `{low:g}`."""
    return {(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(template) if name}


def strip_code(text: str) -> str:
    """A text without what stays the same in every language: placeholders, commands, options, formats."""
    text = re.sub(
        r"\{[^}]*\}|/[a-z_]+|--[a-z-]+|\b(?:PNG|JPEG|WebP|GIF|easel|Discord|Telegram|Ctrl|Enter)\b", " ", text
    )
    return text


def test_nineteen_languages_are_available() -> None:
    languages = available_languages()
    assert {"en", "ru", "de", "fr", "es", "pt", "zh", *TWELVE_MORE} <= set(languages) and len(languages) >= 19


@pytest.mark.parametrize("language", COMPLETE)
def test_every_catalog_translates_every_key(language: str) -> None:
    assert set(keys(language)) == set(keys("en"))


@pytest.mark.parametrize("language", COMPLETE)
def test_every_translation_keeps_the_placeholders_of_the_english_text(language: str) -> None:
    english = keys("en")
    for key, text in keys(language).items():
        assert key in english, f"{language}: {key} is not an English key"
        assert formats(text) == formats(english[key]), f"{language}: {key} changes the placeholders"


@pytest.mark.parametrize("language", [language for language in COMPLETE if language != "en"])
def test_no_catalog_leaves_a_sentence_in_english(language: str) -> None:
    english = keys("en")
    copied = [
        key
        for key, text in keys(language).items()
        if text == english[key] and len(re.findall(r"\b[a-z]{3,}\b", strip_code(text))) >= 2
    ]
    assert copied == []


def test_the_engine_rules_and_the_english_catalog_say_the_same() -> None:
    assert {rule: text_of(f"request.rule.{rule}") for rule in RULES} == RULES


@pytest.mark.parametrize("language", [language for language in COMPLETE if language != "en"])
def test_refusals_put_no_english_inside_a_translated_sentence(language: str) -> None:
    steps = explain(InvalidRequest("out_of_range", "steps", 0, "whole_number", low=1, high=100), language)
    operation = explain(InvalidRequest("required", "image", None, "needs_image", operation="img2img"), language)
    option = explain(
        UserError("request.bad_option", option="--steps", expected=Text("request.expect.whole"), value="x"), language
    )
    state = explain(UserError("job.not_cancellable", job_id="abc", state=Text("state.done")), language)
    assert "a whole number" not in steps and "whole number" not in option and "needs an input image" not in operation
    assert "--steps" in steps and "--steps" in option and "abc" in state
    assert render("state.done", language) in state
    assert re.search(r"\bdone\b", state) is None or render("state.done", language) == "done"


@pytest.mark.parametrize("language", ["ar", "fa"])
def test_right_to_left_texts_isolate_their_options_commands_and_ids(language: str) -> None:
    text = render("request.bad_option", language, option="--size", expected=Text("request.expect.size"), value="9x9")
    assert "\u2066--size\u2069" in text and "\u2066768x512\u2069" in text and "\u20669x9\u2069" in text
    assert "\u2066" not in render("request.bad_option", "de", option="--size", expected="x", value="9x9")
    usage = render("telegram.mod.style_usage", language)
    assert "\u2066{prompt}\u2069" in usage, "a template's placeholder stays whole, to be copied as it is"


def test_every_key_the_code_names_has_an_english_text() -> None:
    extracted = extract_from_dir(
        BOTS,
        method_map=[("**.py", "python")],
        keywords={"render": None, "text_of": None, "UserError": None, "Text": None},
    )
    named = {message for _, _, message, _, _ in extracted if isinstance(message, str)}
    missing = sorted(key for key in named if text_of(key) is None)
    assert len(named) > 50 and missing == []


@pytest.mark.parametrize(
    ("tag", "language"),
    [("ru", "ru"), ("pt-BR", "pt"), ("pt_br", "pt"), ("zh-hans", "zh"), ("EN-gb", "en"), ("xx", "en"), (None, "en")],
)
def test_platform_language_tags_pick_a_catalog(tag: str | None, language: str) -> None:
    assert resolve_language(tag) == language


def test_russian_texts_and_english_fallback() -> None:
    assert render("job.not_found", "ru", job_id="abc") != render("job.not_found", "en", job_id="abc")
    assert "abc" in render("job.not_found", "ru", job_id="abc")
    assert render("job.not_found", "xx", job_id="abc") == "There is no job abc."


def test_every_job_state_and_operation_has_a_name_in_every_complete_language() -> None:
    for language in COMPLETE:
        assert all(text_of(f"state.{state.value}", language) for state in JobState)
        assert all(text_of(f"operation.{operation.value}", language) for operation in Operation)
