"""Prompt language detection and translation into English, the only language Kandinsky 2.2 understands.

Detection is offline and cheap (py3langid, naive Bayes over byte n-grams), so the core runs it at
submit time. The writing system decides first: a script used by one language (Hangul, kana, Thai,
Hebrew, Greek...) names it outright, and the classifier only chooses among the languages written in
the prompt's script, which keeps two-word prompts from landing on a rare language with similar n-grams.

Translation runs in the engine's thread with an M2M100 model (it takes the source language, which
the detector supplies). Latin-script terms inside a prompt in another script ("кот в стиле Van Gogh")
are names and styles the image model knows as they are: a translation that drops or alters one is
redone piecewise, translating only the text around those terms and keeping them verbatim.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from py3langid.langid import MODEL_FILE, LanguageIdentifier  # type: ignore[import-untyped]
from transformers import M2M100ForConditionalGeneration, M2M100Tokenizer, StoppingCriteria, StoppingCriteriaList

from generation import tiny_translation
from generation.config import ModelSettings, TranslationSettings, uses_tiny
from generation.errors import GenerationCancelled
from generation.hub import load_failure
from generation.models import pick_device, pick_dtype

log = logging.getLogger(__name__)

ENGLISH = "en"

# The languages the detector may answer, by the Unicode script of the prompt's letters. Latin-script
# languages are limited to widely used ones: with all of py3langid's, "a cat" reads as Galician.
_LATIN = (
    "en", "fr", "de", "es", "it", "pt", "nl", "pl", "cs", "sk", "sv", "da", "no", "fi", "hu", "ro",
    "tr", "id", "ms", "vi", "ca", "hr", "sl", "et", "lv", "lt", "sq", "tl", "sw", "af", "az", "uz",
)  # fmt: skip
_SCRIPT_LANGUAGES: dict[str, tuple[str, ...]] = {
    "LATIN": _LATIN,
    # Without Belarusian: on short prompts it takes Ukrainian ones, and either translates alike.
    "CYRILLIC": ("ru", "uk", "bg", "sr", "mk", "kk", "ky", "mn", "tg"),
    "ARABIC": ("ar", "fa", "ur", "ps", "ug"),
    "DEVANAGARI": ("hi", "mr", "ne"),
    "BENGALI": ("bn", "as"),
    "CJK": ("zh",),
    "HIRAGANA": ("ja",),
    "KATAKANA": ("ja",),
    "HANGUL": ("ko",),
    "HEBREW": ("he",),
    "GREEK": ("el",),
    "THAI": ("th",),
    "LAO": ("lo",),
    "KHMER": ("km",),
    "MYANMAR": ("my",),
    "GEORGIAN": ("ka",),
    "ARMENIAN": ("hy",),
    "ETHIOPIC": ("am",),
    "GUJARATI": ("gu",),
    "GURMUKHI": ("pa",),
    "ORIYA": ("or",),
    "TAMIL": ("ta",),
    "TELUGU": ("te",),
    "KANNADA": ("kn",),
    "MALAYALAM": ("ml",),
    "SINHALA": ("si",),
}
_NON_LATIN_LANGUAGES = frozenset(
    code for script, codes in _SCRIPT_LANGUAGES.items() if script != "LATIN" for code in codes
)
_KANA = ("HIRAGANA", "KATAKANA")
# Cyrillic letters that only some of the script's languages use: they settle what n-grams of two words cannot.
_CYRILLIC_HINTS = (("әғқңұһ", ("kk",)), ("іїєґ", ("uk",)), ("ѓќѕ", ("mk",)), ("ђћ", ("sr",)), ("јљњџ", ("sr", "mk")))
# The share of the candidates' probability the classifier's pick needs; below it the script's most used
# language (listed first) is the answer. Two-word prompts are near coin tosses ("a cat" scores Catalan
# highest, "кот" Macedonian), and most prompts to an image bot are English.
_CONFIDENT_SHARE = {"LATIN": 0.2, "CYRILLIC": 0.7}
_DEFAULT_CONFIDENT_SHARE = 0.4

_LATIN_LETTER = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff"
_LATIN_WORD = f"[0-9]*[{_LATIN_LETTER}][{_LATIN_LETTER}0-9'’.&-]*"
# Latin words in a row (a name, a style: "Van Gogh", "art nouveau", "4k"); a comma ends a span.
_LATIN_SPAN = re.compile(f"({_LATIN_WORD}(?:[ \t]+{_LATIN_WORD})*)")
_SEPARATORS = " \t\r\n,;:.!?()[]{}\"'«»“”„、。，；：！？（）"


def _script(letter: str) -> str:
    """The first word of the letter's Unicode name: LATIN, CYRILLIC, CJK, HANGUL..."""
    return unicodedata.name(letter, "UNKNOWN").split(" ", 1)[0]


def _letter_scripts(text: str) -> Counter[str]:
    return Counter(_script(char) for char in text if char.isalpha())


@functools.cache
def _identifier() -> LanguageIdentifier:
    """Loaded on first use (0.4 s); read-only afterwards, so safe to share between threads."""
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_language(text: str) -> str | None:
    """The ISO 639-1 code of the text's language; None when it has no letters (emoji, digits, empty)."""
    scripts = _letter_scripts(text)
    if not scripts:
        return None
    script = _prompt_script(scripts)
    candidates = _candidates(script, text)
    if candidates is not None and len(candidates) == 1:
        return candidates[0]
    return _classify(text, candidates, _CONFIDENT_SHARE.get(script, _DEFAULT_CONFIDENT_SHARE))


def _prompt_script(scripts: Counter[str]) -> str:
    """Kana before all (Japanese mixes it with Han; Chinese never uses it), then any script beside Latin:
    Latin words inside another script are names and styles, not the prompt's language."""
    if any(script in scripts for script in _KANA):
        return _KANA[0]
    others = [(count, script) for script, count in scripts.items() if script in _SCRIPT_LANGUAGES and script != "LATIN"]
    if others:
        return max(others)[1]
    return "LATIN" if "LATIN" in scripts else scripts.most_common(1)[0][0]


def _candidates(script: str, text: str) -> tuple[str, ...] | None:
    """The languages that write with the script, most used first; None for a script the table lacks."""
    if script == "CYRILLIC":
        lowered = text.lower()
        for letters, languages in _CYRILLIC_HINTS:
            if any(letter in lowered for letter in letters):
                return languages
    return _SCRIPT_LANGUAGES.get(script)


def _classify(text: str, candidates: tuple[str, ...] | None, confident_share: float) -> str | None:
    ranking = _identifier().rank(text)
    if candidates is None:
        return next((code for code, _ in ranking if len(code) == 2), None)
    scores = [(code, score) for code, score in ranking if code in candidates]
    best, score = scores[0]
    total = sum(score for _, score in scores)
    return best if total > 0 and score / total >= confident_share else candidates[0]


def latin_spans(text: str) -> list[str]:
    """The runs of Latin-script words in a text that also has letters of another script; else none."""
    if set(_letter_scripts(text)) <= {"LATIN"}:
        return []
    return _LATIN_SPAN.findall(text)


def _wording(piece: str) -> str:
    """The piece without its surrounding spaces and punctuation; empty when it has no letters to translate."""
    core = piece.strip(_SEPARATORS)
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
        scripts = _letter_scripts(source.text)
        if not scripts:
            return False
        return source.language not in _NON_LATIN_LANGUAGES or set(scripts) != {"LATIN"}

    def translate(self, sources: Sequence[SourceText], should_cancel: Callable[[], bool] | None = None) -> list[str]:
        """English for each source, in order; what needs no translation comes back unchanged.

        Raises `GenerationCancelled` when `should_cancel` turns true during a model call.
        """
        cached = {source: self.cache.get(source) for source in sources if self.needs_translation(source)}
        pending = [source for source, english in cached.items() if english is None]
        english = {source: text for source, text in cached.items() if text is not None}
        for source, text in zip(pending, self._translate_keeping_latin(pending, should_cancel), strict=True):
            self.cache.put(source, text)
            english[source] = text
        return [english.get(source, source.text) for source in sources]

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
        pieces = {index: _LATIN_SPAN.split(sources[index].text) for index in redo}
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
