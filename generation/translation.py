"""Prompt language detection and translation into English, the only language Kandinsky 2.2 understands.

Detection lives in `generation.language_detection` (no torch there: the core runs it at submit time);
`detect_language` is re-exported here, its public entry.

Translation runs in the engine's thread with an M2M100 model (it takes the source language, which
the detector supplies). Latin-script terms inside a prompt in another script ("кот в стиле Van Gogh")
are names and styles the image model knows as they are: a translation that drops or alters one is
redone piecewise, translating only the text around those terms and keeping them verbatim.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from transformers import M2M100ForConditionalGeneration, M2M100Tokenizer, StoppingCriteria, StoppingCriteriaList

from generation import tiny_translation
from generation.config import ModelSettings, TranslationSettings, uses_tiny
from generation.errors import GenerationCancelled
from generation.hub import load_failure
from generation.language_detection import (
    ENGLISH,
    LATIN_SPAN,
    NON_LATIN_LANGUAGES,
    SEPARATORS,
    detect_language,
    latin_spans,
    letter_scripts,
    translation_plan,
)
from generation.models import pick_device, pick_dtype

__all__ = ["ENGLISH", "PromptTranslation", "SourceText", "Translator", "detect_language", "load_translator"]

log = logging.getLogger(__name__)


def _wording(piece: str) -> str:
    """The piece without its surrounding spaces and punctuation; empty when it has no letters to translate."""
    core = piece.strip(SEPARATORS)
    return core if any(char.isalpha() for char in core) else ""


@dataclass(frozen=True)
class SourceText:
    text: str
    language: str


@dataclass(frozen=True)
class PromptTranslation:
    """What a request's texts became: the English the pipelines ran on, and the source language."""

    language: str
    prompt: str
    negative_prompt: str
    mix_texts: tuple[str | None, ...]


class _LruCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[SourceText, str] = OrderedDict()

    def get(self, key: SourceText) -> str | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: SourceText, value: str) -> None:
        if self.size == 0:
            return
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class _Cancel(StoppingCriteria):
    """Checked after every generated token, so a cancel stops a long translation within one step."""

    def __init__(self, should_cancel: Callable[[], bool]) -> None:
        self.should_cancel = should_cancel

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        if self.should_cancel():
            raise GenerationCancelled
        return cast(torch.BoolTensor, torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device))


class Translator:
    """Translates texts into English with an M2M100 model; used from one thread (the engine's) at a time."""

    def __init__(
        self,
        model: M2M100ForConditionalGeneration,
        tokenizer: M2M100Tokenizer,
        *,
        cache_size: int = 1024,
        batch_size: int = 16,
        max_input_tokens: int = 256,
        max_new_tokens: int = 256,
        num_beams: int = 4,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.cache = _LruCache(cache_size)
        self.batch_size = batch_size
        self.max_input_tokens = max_input_tokens
        self.max_new_tokens = max_new_tokens
        self.num_beams = num_beams
        self._language_ids = frozenset(tokenizer.lang_code_to_id.values())

    def supports(self, language: str) -> bool:
        return language in self.tokenizer.lang_code_to_id

    def needs_translation(self, source: SourceText) -> bool:
        """English, text without letters, an unsupported language, and an all-Latin text in a language
        written otherwise (an English style term under a Chinese prompt) all stay as they are."""
        if source.language == ENGLISH or not self.supports(source.language):
            return False
        scripts = letter_scripts(source.text)
        if not scripts:
            return False
        return source.language not in NON_LATIN_LANGUAGES or set(scripts) != {"LATIN"}

    def translate(self, sources: Sequence[SourceText], should_cancel: Callable[[], bool] | None = None) -> list[str]:
        """English for each source, in order; what needs no translation comes back unchanged.

        Raises `GenerationCancelled` when `should_cancel` turns true during a model call.
        """
        plans = [self._plan(source) for source in sources]
        wanted = dict.fromkeys(
            piece for plan in plans for _, piece in plan if piece is not None and self.needs_translation(piece)
        )
        cached = {piece: self.cache.get(piece) for piece in wanted}
        pending = [piece for piece, english in cached.items() if english is None]
        english = {piece: text for piece, text in cached.items() if text is not None}
        for piece, text in zip(pending, self._translate_keeping_latin(pending, should_cancel), strict=True):
            self.cache.put(piece, text)
            english[piece] = text
        return ["".join(text if piece is None else english.get(piece, text) for text, piece in plan) for plan in plans]

    def _plan(self, source: SourceText) -> list[tuple[str, SourceText | None]]:
        """The source's parts (`translation_plan`), neighbours in one language joined so that the model sees them
        together ("zorro en un bosque, acuarela"); English parts and separators between runs stay as they are."""
        if source.language == ENGLISH or not self.supports(source.language):
            return [(source.text, None)]
        runs: list[tuple[str, str | None]] = []
        for piece, language in translation_plan(source.text, source.language):
            if language is not None and len(runs) >= 2 and runs[-1][1] is None and runs[-2][1] == language:
                separator, _ = runs.pop()
                runs[-1] = (runs[-1][0] + separator + piece, language)
            else:
                runs.append((piece, language))
        return [(text, None if language is None else SourceText(text, language)) for text, language in runs]

    def _translate_keeping_latin(
        self, sources: list[SourceText], should_cancel: Callable[[], bool] | None
    ) -> list[str]:
        """Whole texts first; those whose translation lost a Latin span are redone around their spans."""
        whole = self._generate(sources, should_cancel)
        redo = [
            index
            for index, (source, english) in enumerate(zip(sources, whole, strict=True))
            if any(span not in english for span in latin_spans(source.text))
        ]
        pieces = {index: LATIN_SPAN.split(sources[index].text) for index in redo}
        parts = [
            SourceText(core, sources[index].language)
            for index in redo
            for piece in pieces[index][::2]  # split() puts the captured Latin spans at the odd positions
            if (core := _wording(piece))
        ]
        english_parts = iter(self._generate(parts, should_cancel))
        for index in redo:
            rebuilt = []
            for position, piece in enumerate(pieces[index]):
                core = _wording(piece) if position % 2 == 0 else ""
                rebuilt.append(piece.replace(core, next(english_parts), 1) if core else piece)
            whole[index] = "".join(rebuilt)
        return whole

    def _generate(self, sources: list[SourceText], should_cancel: Callable[[], bool] | None) -> list[str]:
        english: list[str] = []
        for start in range(0, len(sources), self.batch_size):
            chunk = sources[start : start + self.batch_size]
            english += self._generate_batch(chunk, should_cancel)
        # A model that answers nothing would leave the pipelines with an empty prompt: keep the source.
        return [text.strip() or source.text for source, text in zip(sources, english, strict=True)]

    @torch.inference_mode()
    def _generate_batch(self, sources: list[SourceText], should_cancel: Callable[[], bool] | None) -> list[str]:
        if should_cancel is not None and should_cancel():
            raise GenerationCancelled
        rows = []
        for source in sources:
            self.tokenizer.src_lang = source.language  # the language token leads each row
            encoded = self.tokenizer(source.text, truncation=True, max_length=self.max_input_tokens)
            rows.append(encoded["input_ids"])
        inputs = self.tokenizer.pad({"input_ids": rows}, return_tensors="pt").to(self.model.device)
        stopping = StoppingCriteriaList([_Cancel(should_cancel)] if should_cancel is not None else [])
        output = self.model.generate(
            **inputs,
            forced_bos_token_id=self.tokenizer.get_lang_id(ENGLISH),
            max_new_tokens=self.max_new_tokens,
            num_beams=self.num_beams,
            do_sample=False,
            stopping_criteria=stopping,
        )
        tokens = [[token for token in row if token not in self._language_ids] for row in output.tolist()]
        return self.tokenizer.batch_decode(tokens, skip_special_tokens=True)


def load_translator(settings: TranslationSettings, model_settings: ModelSettings) -> Translator | None:
    """The translator on the image models' device and precision; None when translation is off."""
    if not settings.enabled:
        return None
    device = pick_device(model_settings.device)
    dtype = pick_dtype(model_settings.dtype, device)
    tiny = uses_tiny(settings.preset, model_settings)
    if tiny:
        tokenizer = tiny_translation.tokenizer()
        model = tiny_translation.model(settings.tiny_seed, tokenizer)
    else:
        tokenizer, model = _pretrained(settings, dtype)
    model.to(device, dtype)  # type: ignore[arg-type]  # transformers types `to` through a decorator mypy misreads
    log.info("translation model %s ready on %s (%s)", "tiny" if tiny else settings.model, device, dtype)
    return Translator(
        model,
        tokenizer,
        cache_size=settings.cache_size,
        batch_size=settings.batch_size,
        max_input_tokens=settings.max_input_tokens,
        max_new_tokens=settings.max_new_tokens,
        num_beams=settings.num_beams,
    )


def _pretrained(
    settings: TranslationSettings, dtype: torch.dtype
) -> tuple[M2M100Tokenizer, M2M100ForConditionalGeneration]:
    options: dict[str, Any] = {"cache_dir": settings.cache_dir, "local_files_only": settings.local_files_only}
    try:
        model = M2M100ForConditionalGeneration.from_pretrained(settings.model, dtype=dtype, **options)
        tokenizer = M2M100Tokenizer.from_pretrained(settings.model, **options)
    # M2M100Tokenizer opens its vocabulary without checking it was found: a TypeError means a missing file.
    except (OSError, ValueError, TypeError) as error:
        raise load_failure("translation.model", settings.model, error, "the translation model") from error
    return tokenizer, model.eval()
