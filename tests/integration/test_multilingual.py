"""Prompts in many languages and scripts through the core, with the tiny image model and the tiny translator:
what is detected, what is translated (and only then), what is stored, and which language the user hears."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from core_stack import Launch, core_settings
from PIL import Image

from bots.core.facade import Core
from bots.core.languages import Languages, untranslated
from bots.core.types import Actor, JobEvent, Place
from bots.errors import UserError
from bots.formatting import result_caption
from bots.kit.views import view_of
from bots.texts import render
from generation.asks import Ask, Options
from generation.config import ModelSettings, TranslationSettings
from generation.engine import Engine
from generation.models import KandinskyModels
from generation.translation import SourceText, Translator, load_translator
from storage.database import Database

PROMPTS = [
    ("ru", "кот в шляпе сидит на крыше"),
    ("zh", "夕阳下山间的古老寺庙"),
    ("ja", "桜の木の下で眠る猫"),
    ("ko", "바다 위의 오래된 등대"),
    ("ar", "قطة تجلس على سطح المنزل القديم"),
    ("hi", "पहाड़ों के ऊपर सूर्यास्त का दृश्य"),
    ("he", "חתול יושב על גג הבית בלילה"),
    ("el", "ένα μικρό σπίτι δίπλα στη θάλασσα"),
    ("th", "แมวนั่งอยู่บนหลังคาบ้าน"),
    ("de", "ein alter Leuchtturm bei Sonnenaufgang"),
    ("es", "un gato durmiendo junto a la ventana"),
    ("fr", "une maison dans la forêt en hiver"),
    ("ru", "кот в стиле Van Gogh"),  # mixed: Cyrillic with a Latin name
]
HERE = Place("test", "chat-1")


@dataclass
class Spy:
    """Counts what reaches the translation model."""

    translator: Translator
    calls: list[list[SourceText]] = field(default_factory=list)

    def translate(self, sources: Sequence[SourceText], should_cancel: Any = None) -> list[str]:
        self.calls.append(list(sources))
        return self.translator.translate(sources, should_cancel)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.translator, name)


@dataclass
class Harness:
    core: Core
    db: Database
    spy: Spy
    events: list[JobEvent] = field(default_factory=list)
    failing_deliveries: int = 0

    async def listener(self, event: JobEvent) -> None:
        self.events.append(event)
        if event.kind == "done" and self.failing_deliveries:
            self.failing_deliveries -= 1
            raise ConnectionError("the platform is down")

    async def done(self, job_id: str) -> JobEvent:
        async def wait() -> JobEvent:
            while not (found := [e for e in self.events if e.job_id == job_id and e.kind in ("done", "failed")]):
                await asyncio.sleep(0.01)
            return found[0]

        return await asyncio.wait_for(wait(), 60)


@pytest.fixture(scope="module")
def translator() -> Translator:
    loaded = load_translator(TranslationSettings(preset="tiny"), ModelSettings(preset="tiny"))
    assert loaded is not None
    return loaded


@pytest.fixture
async def core(stack: Launch, tmp_path: Path, tiny_models: KandinskyModels, translator: Translator) -> Harness:
    spy = Spy(translator)
    running = await stack(core_settings(tmp_path), Engine(tiny_models, spy).generate)  # type: ignore[arg-type]
    harness = Harness(running.core, running.db, spy)
    running.core.listen("test", harness.listener)
    return harness


async def test_prompts_in_many_scripts_are_detected_translated_stored_and_answered(core: Harness) -> None:
    receipts = []
    for index, (_, prompt) in enumerate(PROMPTS):
        actor = Actor("test", f"user-{index}")  # no platform language: the prompt's language is the reply's
        receipts.append(await core.core.submit(actor, HERE, Ask("txt2img", prompt)))
    for (language, prompt), receipt in zip(PROMPTS, receipts, strict=True):
        done = await core.done(receipt.job_id)
        assert done.kind == "done", prompt
        job = await core.db.get_job(receipt.job_id)
        assert job is not None and job.prompt == prompt and job.parameters["language"] == language, prompt
        assert job.processed_prompt and job.processed_prompt == done.translation, prompt
        assert done.source_language == language and done.language == language
    sources = [source for call in core.spy.calls for source in call]
    assert {source.language for source in sources} == {language for language, _ in PROMPTS}
    mixed = await core.done(receipts[-1].job_id)
    assert mixed.translation is not None and "Van Gogh" in mixed.translation  # a Latin name is kept as it is


async def test_english_emoji_and_odd_unicode_are_never_translated_and_never_crash(core: Harness) -> None:
    prompts = [
        "a red fox in the snow",
        "🐱🌙✨",
        "a cat\u200b with a hat\u200d",
        "\u202ea mirrored cat\u202c",
        "1234 5678",
    ]
    for prompt in prompts:
        receipt = await core.core.submit(Actor("test", "ann", language="en"), HERE, Ask("txt2img", prompt))
        done = await core.done(receipt.job_id)
        assert done.kind == "done" and done.translation is None, prompt
        job = await core.db.get_job(receipt.job_id)
        assert job is not None and job.processed_prompt is None
    assert core.spy.calls == []


async def test_a_russian_prompt_zero_width_characters_and_all_still_works(core: Harness) -> None:
    receipt = await core.core.submit(Actor("test", "ivan"), HERE, Ask("txt2img", "ко\u200bт в шля\u200dпе"))
    done = await core.done(receipt.job_id)
    assert done.kind == "done" and done.source_language == "ru"


async def test_the_platform_language_wins_over_the_prompts_and_the_caption_names_the_source(core: Harness) -> None:
    receipt = await core.core.submit(Actor("test", "hans", language="de"), HERE, Ask("txt2img", "кот в шляпе"))
    done = await core.done(receipt.job_id)
    assert done.language == "de" and done.source_language == "ru"
    assert f"übersetzt aus Russisch: {done.translation}" in result_caption(done)


async def test_mix_texts_are_translated_and_a_reroll_keeps_the_language(core: Harness, photo: Image.Image) -> None:
    buffer = io.BytesIO()
    photo.save(buffer, "PNG")
    ask = Ask("mix", "", mix=(buffer.getvalue(), "山间的古老寺庙"))
    receipt = await core.core.submit(Actor("test", "li"), HERE, ask)
    done = await core.done(receipt.job_id)
    assert done.kind == "done" and done.source_language == "zh" and done.translation
    rerolled = await core.core.reroll(Actor("test", "li"), HERE, receipt.job_id)
    again = await core.done(rerolled.job_id)
    assert again.source_language == "zh" and again.translation == done.translation  # cached, same text
    job = await core.db.get_job(rerolled.job_id)
    assert job is not None and job.parameters["language"] == "zh"


async def test_a_redelivered_result_still_names_its_translation(core: Harness) -> None:
    core.failing_deliveries = 1
    receipt = await core.core.submit(Actor("test", "olga"), HERE, Ask("txt2img", "собака на пляже"))
    done = await core.done(receipt.job_id)
    while (job := await core.db.get_job(receipt.job_id)) is None or job.delivery_attempts == 0:
        await asyncio.sleep(0.01)
    core.events.clear()
    assert await core.core.redeliver() == 1
    again = await core.done(receipt.job_id)
    assert (again.translation, again.source_language) == (done.translation, "ru")


async def test_only_the_foreign_parts_of_a_mixed_prompt_are_translated(core: Harness) -> None:
    prompt = "retrato de Frida Kahlo, cyberpunk, neon lights, 4k"
    receipt = await core.core.submit(Actor("test", "rosa"), HERE, Ask("txt2img", prompt))
    done = await core.done(receipt.job_id)
    assert done.source_language in ("es", "pt") and done.translation is not None
    assert done.translation.endswith(", cyberpunk, neon lights, 4k")
    assert "retrato" not in done.translation
    english = await core.core.submit(Actor("test", "rosa"), HERE, Ask("txt2img", "portrait of Frida Kahlo, 4k"))
    assert (await core.done(english.job_id)).translation is None


async def test_a_prompt_in_a_language_easel_cannot_translate_is_used_as_written_and_the_user_told(
    core: Harness,
) -> None:
    receipt = await core.core.submit(Actor("test", "ravi", language="en"), HERE, Ask("txt2img", "ఎరుపు పిల్లి"))
    done = await core.done(receipt.job_id)
    queued = next(event for event in core.events if event.job_id == receipt.job_id and event.kind == "queued")
    assert queued.untranslated == done.untranslated == "te" and done.translation is None
    note = render("result.untranslated", "en", source="Telugu")
    assert note in view_of(queued).text and note in result_caption(done)
    assert not any(
        source.language == "te" for call in core.spy.calls for source in call if core.spy.needs_translation(source)
    )


def test_translation_switched_off_leaves_every_foreign_prompt_untranslated() -> None:
    assert untranslated(TranslationSettings(enabled=False), "ru") == "ru"
    assert untranslated(TranslationSettings(), "ru") is None
    assert untranslated(TranslationSettings(), "te") == "te"
    assert (
        untranslated(TranslationSettings(enabled=False), "en") is None
        and untranslated(TranslationSettings(), None) is None
    )


async def test_a_user_chooses_the_language_easel_answers_in_and_the_choice_survives_a_restart(core: Harness) -> None:
    ivan = Actor("test", "ivan", language="ru")
    shown = await core.core.choose_language(ivan, "")
    assert (shown.language, shown.chosen, shown.changed) == ("ru", False, False)
    chosen = await core.core.choose_language(ivan, "Deutsch")
    assert (chosen.language, chosen.chosen, chosen.changed) == ("de", True, True)
    assert core.core.speaking(ivan).language == "de"
    receipt = await core.core.submit(core.core.speaking(ivan), HERE, Ask("txt2img", "кот в шляпе"))
    assert (await core.done(receipt.job_id)).language == "de"
    restarted = Languages(core.db, core.core.accounts)
    await restarted.load()
    assert restarted.speaking(ivan).language == "de"
    for wanted, language in (("german", "de"), ("pt-BR", "pt"), ("日本語", "ja"), ("UK", "uk"), ("العربية", "ar")):
        assert (await core.core.choose_language(ivan, wanted)).language == language
    with pytest.raises(UserError) as refused:
        await core.core.choose_language(ivan, "klingon")
    assert refused.value.key == "language.unknown" and "de (Deutsch)" in f"{refused.value.values['languages']}"
    following = await core.core.choose_language(core.core.speaking(ivan), "auto")
    assert (following.language, following.chosen) == ("ru", False)
    assert core.core.speaking(ivan) == ivan
    user = await core.db.get_or_create_user("test", "ivan")
    assert user.chosen_language is None and user.language == "ru"


async def test_lang_names_the_prompts_language_where_detection_cannot(core: Harness) -> None:
    receipt = await core.core.submit(Actor("test", "iria"), HERE, Ask("txt2img", "gato", Options(language="gl")))
    done = await core.done(receipt.job_id)
    assert done.source_language == "gl" and done.translation
    assert any(source == SourceText("gato", "gl") for call in core.spy.calls for source in call)
