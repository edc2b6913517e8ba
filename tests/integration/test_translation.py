"""Prompt translation with the tiny M2M100 preset: when the model runs, what it is given, and the engine's use of it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from bots.cli import main
from generation.config import ModelSettings, TranslationSettings
from generation.engine import Engine
from generation.errors import GenerationCancelled
from generation.hub import WeightsMissing
from generation.models import KandinskyModels
from generation.requests import GenerationRequest
from generation.translation import SourceText, Translator, load_translator

TINY = ModelSettings(preset="tiny")
# Short outputs and greedy search keep the random model fast; the code paths are the production ones.
FAST = TranslationSettings(max_new_tokens=8, num_beams=1)


class GenerateSpy:
    """Wraps the model's `generate`, recording the batch size of each call."""

    def __init__(self, translator: Translator) -> None:
        self.batches: list[int] = []
        self._generate = translator.model.generate
        self.on_call: Callable[[], None] = lambda: None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.batches.append(int(kwargs["input_ids"].shape[0]))
        self.on_call()
        return self._generate(*args, **kwargs)


@pytest.fixture
def translator() -> Translator:
    built = load_translator(FAST, TINY)
    assert built is not None
    return built


@pytest.fixture
def spy(translator: Translator, monkeypatch: pytest.MonkeyPatch) -> GenerateSpy:
    recorder = GenerateSpy(translator)
    monkeypatch.setattr(translator.model, "generate", recorder)
    return recorder


def test_english_letterless_and_unsupported_texts_never_reach_the_model(
    translator: Translator, spy: GenerateSpy
) -> None:
    sources = [
        SourceText("a red cat, oil painting", "en"),
        SourceText("🐱🌙 1234", "ru"),
        SourceText("", "ru"),
        SourceText("oil painting, 4k", "zh"),  # all Latin under a Chinese prompt: a style term, kept
        SourceText("ఎరుపు పిల్లి", "te"),  # Telugu: detected, but M2M100 has no Telugu
    ]
    assert translator.translate(sources) == [source.text for source in sources]
    assert spy.batches == []


def test_foreign_texts_are_translated_in_one_batched_call(translator: Translator, spy: GenerateSpy) -> None:
    sources = [SourceText("кот на окне", "ru"), SourceText("a cat", "en"), SourceText("红色的猫", "zh")]
    english = translator.translate(sources)
    assert spy.batches == [2]
    assert english[1] == "a cat"
    assert english[0] not in ("", "кот на окне") and english[2] not in ("", "红色的猫")


def test_the_tiny_preset_is_deterministic(translator: Translator) -> None:
    again = load_translator(FAST, TINY)
    assert again is not None
    sources = [SourceText("кот на окне", "ru"), SourceText("قطة حمراء", "ar")]
    assert translator.translate(sources) == again.translate(sources)


def test_a_text_is_translated_once_then_served_from_the_cache(translator: Translator, spy: GenerateSpy) -> None:
    cat = SourceText("кот на окне", "ru")
    first = translator.translate([cat, cat])
    assert spy.batches == [1] and first[0] == first[1]
    assert translator.translate([cat]) == first[:1]
    assert spy.batches == [1]
    # Same text, other language: another translation.
    translator.translate([SourceText("кот на окне", "uk")])
    assert spy.batches == [1, 1]


def test_the_cache_forgets_the_least_recently_used(spy: GenerateSpy, translator: Translator) -> None:
    translator.cache.size = 2
    one, two, three = (SourceText(text, "ru") for text in ("кот", "собака", "лиса"))
    for source in (one, two, one, three):  # `one` is used again, so `two` is the oldest when `three` comes
        translator.translate([source])
    assert len(translator.cache) == 2 and spy.batches == [1, 1, 1]
    translator.translate([one])
    assert spy.batches == [1, 1, 1]
    translator.translate([two])
    assert spy.batches == [1, 1, 1, 1]


def test_latin_terms_in_another_script_survive_a_translation_that_loses_them(
    translator: Translator, spy: GenerateSpy
) -> None:
    (english,) = translator.translate([SourceText("кот в стиле Van Gogh, 4k 🌙", "ru")])
    # The random model drops the terms, so the text around them is translated on its own; the pieces
    # without letters (", " and " 🌙") are kept as they are, leaving one text for the second call.
    assert spy.batches == [1, 1]
    assert english.endswith(" Van Gogh, 4k 🌙")
    assert "кот" not in english


def test_a_translation_that_keeps_the_latin_terms_is_used_whole(
    translator: Translator, spy: GenerateSpy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(translator.tokenizer, "batch_decode", lambda rows, **_: ["a cat in the style of Van Gogh"])
    assert translator.translate([SourceText("кот в стиле Van Gogh", "ru")]) == ["a cat in the style of Van Gogh"]
    assert spy.batches == [1]


class Recorded:
    """The texts the model is given, answered with a stand-in English that names them."""

    def __init__(self, translator: Translator, monkeypatch: pytest.MonkeyPatch) -> None:
        self.texts: list[tuple[str, str]] = []
        tokenizer = translator.tokenizer
        encode = tokenizer.__call__

        def call(text: str, **options: Any) -> Any:
            self.texts.append((tokenizer.src_lang, text))
            return encode(text, **options)

        monkeypatch.setattr(type(tokenizer), "__call__", lambda _, text, **options: call(text, **options))
        monkeypatch.setattr(tokenizer, "batch_decode", lambda rows, **_: [f"<en {n}>" for n in range(len(rows))])


@pytest.mark.parametrize(
    ("prompt", "language", "sent", "english"),
    [
        (
            "retrato de Frida Kahlo, cyberpunk, neon lights, 4k",
            "es",
            [("es", "retrato de Frida Kahlo")],
            "<en 0>, cyberpunk, neon lights, 4k",
        ),
        (
            "portrait of Frida Kahlo, Día de los Muertos",
            "es",
            [("es", "Día de los Muertos")],
            "portrait of Frida Kahlo, <en 0>",
        ),
        ("zorro en un bosque otoñal, acuarela", "es", [("es", "zorro en un bosque otoñal, acuarela")], "<en 0>"),
        (
            "un château dans la brume, matte painting, lumière dorée",
            "fr",
            [("fr", "un château dans la brume"), ("fr", "lumière dorée")],
            "<en 0>, matte painting, <en 1>",
        ),
        ("рыжий кот, digital art", "ru", [("ru", "рыжий кот")], "<en 0>, digital art"),
    ],
)
def test_a_mixed_prompt_translates_its_foreign_parts_and_keeps_the_english(
    translator: Translator, monkeypatch: pytest.MonkeyPatch, prompt: str, language: str, sent: list[str], english: str
) -> None:
    recorded = Recorded(translator, monkeypatch)
    assert translator.translate([SourceText(prompt, language)]) == [english]
    assert recorded.texts == sent


def test_a_cancel_stops_a_translation(translator: Translator, spy: GenerateSpy) -> None:
    cancelled = False

    def cancel() -> None:
        nonlocal cancelled
        cancelled = True

    spy.on_call = cancel
    with pytest.raises(GenerationCancelled):
        translator.translate([SourceText("кот на окне", "ru")], should_cancel=lambda: cancelled)
    assert len(translator.cache) == 0


def test_load_translator_follows_the_settings(tmp_path: Path) -> None:
    assert load_translator(TranslationSettings(enabled=False), TINY) is None
    assert isinstance(load_translator(TranslationSettings(preset="tiny"), ModelSettings()), Translator)
    missing = TranslationSettings(preset="real", cache_dir=str(tmp_path), local_files_only=True)
    with pytest.raises(WeightsMissing, match="translation.model: the weights of facebook/m2m100_418M are not on"):
        load_translator(missing, TINY)


@pytest.fixture
def translating_engine(tiny_models: KandinskyModels, translator: Translator) -> Engine:
    return Engine(tiny_models, translator)


def test_a_russian_prompt_runs_in_english_and_reports_its_translation(
    translating_engine: Engine,
    engine: Engine,
    request_for: Callable[..., GenerationRequest],
    spy: GenerateSpy,
) -> None:
    russian = request_for("txt2img", "кот на окне", negative_prompt="размыто", seed=3, language="ru")
    english = request_for("txt2img", "a cat on a window", negative_prompt="blurry", seed=3, language="en")
    translated, untouched = translating_engine.generate([russian, english])
    assert spy.batches == [2]
    assert untouched.translation is None and untouched.request is english
    translation = translated.translation
    assert translated.request is russian and translation is not None
    assert translation.language == "ru" and translation.mix_texts == ()
    assert "кот" not in translation.prompt and "размыто" not in translation.negative_prompt
    # The pipelines saw the English texts: the same seed and texts in English give the same image.
    same = request_for(
        "txt2img", translation.prompt, negative_prompt=translation.negative_prompt, seed=3, language="en"
    )
    direct, _ = engine.generate([same, english])
    assert _pixels(translated.images[0]) == _pixels(direct.images[0])


def test_a_mix_translates_its_text_items_and_keeps_its_images(
    translating_engine: Engine, request_for: Callable[..., GenerationRequest], photo: Image.Image
) -> None:
    mix = request_for("mix", "", mix=["梵高风格的星空", photo], weights=[0.6, 0.4], language="zh", seed=5)
    (result,) = translating_engine.generate([mix])
    assert len(result.images) == 1 and result.images[0].size == (64, 64)
    assert result.translation is not None and result.translation.language == "zh"
    text, image = result.translation.mix_texts
    assert image is None and text not in (None, "", "梵高风格的星空")


def test_a_cancel_during_translation_stops_before_the_pipelines(
    translating_engine: Engine,
    tiny_models: KandinskyModels,
    request_for: Callable[..., GenerationRequest],
    spy: GenerateSpy,
) -> None:
    cancelled = False

    def cancel() -> None:
        nonlocal cancelled
        cancelled = True

    spy.on_call = cancel
    with _denoiser_calls(tiny_models) as calls, pytest.raises(GenerationCancelled):
        translating_engine.generate([request_for("txt2img", "кот", language="ru")], should_cancel=lambda: cancelled)
    assert calls == [] and spy.batches == [1]


def _pixels(image: Image.Image) -> bytes:
    return image.tobytes()


@contextmanager
def _denoiser_calls(models: KandinskyModels) -> Iterator[list[None]]:
    """Every call of the prior transformer or the decoder UNet while the block runs."""
    calls: list[None] = []

    def record(_module: torch.nn.Module, _args: object) -> None:
        calls.append(None)

    handles = [module.register_forward_pre_hook(record) for module in (models.prior.prior, models.decoder.unet)]
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def test_easel_generate_translates_and_prints_the_translation(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no config.toml here
    monkeypatch.setenv("EASEL_TRANSLATION__MAX_NEW_TOKENS", "8")
    monkeypatch.setenv("EASEL_TRANSLATION__NUM_BEAMS", "1")
    tiny = ["generate", "--model", "tiny", "--seed", "1"]
    assert main([*tiny, "--prompt", "кот в стиле Van Gogh", "-o", "ru.png"]) == 0
    translation = json.loads(capsys.readouterr().out)["translation"]
    assert translation["language"] == "ru" and translation["prompt"].endswith(" Van Gogh")
    assert main([*tiny, "--prompt", "a cat in the style of Van Gogh", "-o", "en.png"]) == 0
    assert "translation" not in json.loads(capsys.readouterr().out)
