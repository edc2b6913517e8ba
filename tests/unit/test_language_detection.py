"""Prompt language detection: many languages and scripts, mixed prompts, and any Unicode without a crash."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generation import tiny_translation
from generation.config import DefaultsSettings, Limits, resolve_defaults
from generation.errors import InvalidRequest
from generation.language_detection import (
    _SCRIPT_LANGUAGES,
    MAX_PARTS,
    TRANSLATABLE,
    UNTRANSLATABLE,
    detect_language,
    latin_spans,
    segment_languages,
    translation_plan,
)
from generation.requests import make_request


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


def test_the_detector_names_exactly_the_languages_the_translator_translates() -> None:
    named = {code for codes in _SCRIPT_LANGUAGES.values() for code in codes}
    assert TRANSLATABLE == set(tiny_translation.tokenizer().lang_code_to_id)
    assert TRANSLATABLE <= named
    assert named - TRANSLATABLE == UNTRANSLATABLE == {"te", "bo", "dv"}


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("a cat", "en"),
        ("a cat, bokeh", "en"),
        ("masterpiece, best quality, 1girl, solo", "en"),
        ("portrait of a knight, cinematic lighting, 8k", "en"),
        ("Ақ қар басқан тау", "kk"),
        ("дауылдағы ҡарап", "ba"),
        ("кіт", "uk"),
        ("ноћ", "sr"),
        ("ѕвезда", "mk"),
        ("בײַם װאַסער", "yi"),
        ("ښکلی ګل", "ps"),
        ("ٻلي ڪارو", "sd"),
        ("జాబిల్లి", "te"),
        ("ᏣᎳᎩ", None),
        ("мачка спава на прозору", "sr"),  # Serbian words found in the Serbo-Croatian list, spelt in Latin
        ("isometric", "en"),  # a rare English word that no other language's list has
        ("drage", "da"),  # rare in English, common in Danish and Norwegian: not English
    ],
)
def test_letters_and_english_tags_settle_close_calls(text: str, language: str | None) -> None:
    assert detect_language(text) == language


@pytest.mark.parametrize(
    ("prompt", "language", "kept"),
    [
        ("retrato de Frida Kahlo, cyberpunk, neon lights, 4k", {"es", "pt"}, ["cyberpunk", "neon lights", "4k"]),
        ("portrait of Frida Kahlo, Día de los Muertos", None, ["portrait of Frida Kahlo"]),
        ("gato negro, anime style, 4k", {"es", "pt"}, ["anime style", "4k"]),
        ("un renard roux dans la neige, aquarelle, trending on artstation", {"fr"}, ["trending on artstation"]),
        ("ein Schloss im Nebel, digital art, 8k", {"de"}, ["digital art", "8k"]),
        ("zorro en un bosque otoñal, acuarela", {"es"}, []),
        ("рыжий кот на крыше, digital art, octane render", {"ru"}, ["digital art", "octane render"]),
        ("кот в стиле Van Gogh, oil painting", {"ru"}, ["oil painting"]),
        ("一只红色的猫, studio lighting, 4k", {"zh"}, ["studio lighting", "4k"]),
        ("桜の木の下の女の子, anime style", {"ja"}, ["anime style"]),
        ("고양이, watercolor", {"ko"}, ["watercolor"]),
        ("Katze im Schnee; cinematic lighting", {"de"}, ["cinematic lighting"]),
        ("kot na dachu, wysoka szczegółowość, neon lights", {"pl"}, ["neon lights"]),
    ],
)
def test_mixed_prompts_keep_their_english_parts(prompt: str, language: set[str] | None, kept: list[str]) -> None:
    detected = detect_language(prompt)
    assert detected != "en"
    if language is not None:
        assert detected in language
    plan = translation_plan(prompt, detected or "en")
    assert "".join(piece for piece, _ in plan) == prompt
    untouched = [
        piece for piece, source in plan if source is None and piece.strip(" ,;") and any(c.isalpha() for c in piece)
    ]
    for part in kept:
        assert part in untouched
    assert all(source is not None for piece, source in plan if piece.strip(" ,;") and piece not in untouched)


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


def test_a_prompt_of_hundreds_of_parts_reads_the_first_ones_alone_and_the_rest_together() -> None:
    prompt = "рыжий кот, " + ", ".join(f"tag{index}" for index in range(300))
    plan = translation_plan(prompt, "ru")
    assert "".join(piece for piece, _ in plan) == prompt
    assert plan[0] == ("рыжий кот", "ru")
    tail = {source for piece, source in plan[2 * MAX_PARTS :] if piece.startswith("tag")}
    assert len(tail) == 1  # read as one part
    assert len(segment_languages(prompt)) == MAX_PARTS
