"""The catalogs: complete where they must be, consistent with each other, and with the code's keys."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bots.texts import LOCALE_DIR, available_languages, render, resolve_language, text_of
from generation.requests import Operation
from storage.records import JobState

BOTS = Path(__file__).parents[2] / "bots"
COMPLETE = ("en", "ru")
"""Languages whose catalogs must translate every key; the others may fall back to English here and there."""


def keys(language: str) -> dict[str, str]:
    with (LOCALE_DIR / language / "LC_MESSAGES" / "easel.po").open("rb") as source:
        return {message.id: message.string for message in read_po(source) if message.id and message.string}


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_english_russian_and_four_more_languages_are_available() -> None:
    languages = available_languages()
    assert {"en", "ru"} <= set(languages) and len(languages) >= 6


@pytest.mark.parametrize("language", COMPLETE)
def test_complete_catalogs_translate_every_key(language: str) -> None:
    assert set(keys(language)) == set(keys("en"))


@pytest.mark.parametrize("language", available_languages())
def test_every_translation_keeps_the_placeholders_of_the_english_text(language: str) -> None:
    english = keys("en")
    for key, text in keys(language).items():
        assert key in english, f"{language}: {key} is not an English key"
        assert fields(text) == fields(english[key]), f"{language}: {key} changes the placeholders"


def test_every_key_the_code_names_has_an_english_text() -> None:
    extracted = extract_from_dir(
        BOTS, method_map=[("**.py", "python")], keywords={"render": None, "text_of": None, "UserError": None}
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
