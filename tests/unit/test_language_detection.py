"""Prompt language detection: many languages and scripts, mixed prompts, and any Unicode without a crash."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from py3langid.langid import MODEL_FILE, LanguageIdentifier  # type: ignore[import-untyped]

from generation.config import DefaultsSettings, Limits, resolve_defaults
from generation.errors import InvalidRequest
from generation.requests import make_request
from generation.translation import _SCRIPT_LANGUAGES, detect_language, latin_spans


@pytest.mark.parametrize(
    ("prompt", "language"),
    [
        ("a lighthouse on a cliff at dawn", "en"),
        ("a cat", "en"),
        ("портрет старого рыбака, масляная живопись", "ru"),
        ("кот", "ru"),
        ("кіт", "uk"),
        ("Ақ қар басқан тау", "kk"),
        ("соняшникове поле під блакитним небом", "uk"),
        ("一只在窗台上睡觉的红猫", "zh"),
        ("猫", "zh"),
        ("桜の木の下の女の子、アニメ風", "ja"),
        ("サイバーパンクの東京", "ja"),
        ("벚꽃이 핀 서울의 거리", "ko"),
        ("جمل في الصحراء عند غروب الشمس", "ar"),
        ("باغ ایرانی با حوض و درختان سرو", "fa"),
        ("ताज महल चांदनी रात में", "hi"),
        ("बिल्ली", "hi"),
        ("ירושלים העתיקה בשקיעה", "he"),
        ("αρχαίος ναός στο ηλιοβασίλεμα", "el"),
        ("วัดไทยในยามค่ำคืน", "th"),
        ("une rue de Paris sous la pluie", "fr"),
        ("eine gemütliche Hütte im verschneiten Wald", "de"),
        ("un faro en un acantilado al amanecer", "es"),
        ("phố cổ Hội An về đêm", "vi"),
        ("pencere kenarında uyuyan kırmızı bir kedi", "tr"),
        # Mixed: Latin names and styles inside another script do not make the prompt English.
        ("кот в стиле Van Gogh", "ru"),
        ("Van Gogh风格的猫, 4k", "zh"),
        ("قطة في الفضاء, digital art", "ar"),
        ("🐱 кот на окне 🌙", "ru"),
        # Invisible characters inside words change nothing.
        ("ко\u200bт в сти\u200dле", "ru"),
        ("\u200fقطة حمراء\u200e", "ar"),
    ],
)
def test_detects_the_language_of_short_prompts(prompt: str, language: str) -> None:
    assert detect_language(prompt) == language


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "🐱🐱🌙",
        "123 456",
        "!!! ???",
        "\u200b\u200c\u200d\ufeff",
        "\u200e\u200f",
        "\u0301\u0308",
        "👨\u200d👩\u200d👧",
    ],
)
def test_text_without_letters_has_no_language(text: str) -> None:
    assert detect_language(text) is None


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec=None), max_size=40))
def test_any_unicode_gives_a_code_or_none(text: str) -> None:
    language = detect_language(text)
    assert language is None or (language.isascii() and language.isalpha() and len(language) in (2, 3))


def test_lone_surrogates_and_odd_letters_do_not_crash() -> None:
    for text in ("\ud800x", "\udfff", "e\u0301", "ﬁ", "ＡＢＣ", "𝔣𝔯𝔞𝔨𝔱𝔲𝔯", "ʼ", "ꙮ", "\U000e0041"):
        detect_language(text)


def test_every_candidate_language_is_known_to_the_classifier() -> None:
    labels = set(LanguageIdentifier.from_model_file(MODEL_FILE).labels)
    assert {code for codes in _SCRIPT_LANGUAGES.values() for code in codes} <= labels


@pytest.mark.parametrize(
    ("text", "spans"),
    [
        ("кот в стиле Van Gogh, 4k", ["Van Gogh", "4k"]),
        ("Van Gogh风格的猫", ["Van Gogh"]),
        ("猫", []),
        ("a cat in the style of Van Gogh", []),  # all Latin: nothing to protect it from
    ],
)
def test_latin_spans_are_found_only_inside_another_script(text: str, spans: list[str]) -> None:
    assert latin_spans(text) == spans


def test_a_request_records_a_valid_language_and_refuses_another() -> None:
    defaults, limits = resolve_defaults("tiny", DefaultsSettings()), Limits()
    request = make_request("txt2img", "кот", defaults=defaults, limits=limits, language="ru")
    assert request.describe()["language"] == "ru"
    with pytest.raises(InvalidRequest) as refused:
        make_request("txt2img", "кот", defaults=defaults, limits=limits, language="Russian")
    assert refused.value.field == "language"
