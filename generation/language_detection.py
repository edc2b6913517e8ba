"""Which language a prompt is written in, offline and in well under a millisecond, so the core asks at submit time.

The writing system decides first: a script used by one language (Hangul, kana, Thai, Greek...) names it
outright, letters only some of a script's languages write narrow the choice, and three opinions decide among
the languages left (py3langid's and CLD2's n-grams, and wordfreq's word frequencies), which keeps two-word
prompts from landing on a rare language with similar n-grams. The languages are exactly those M2M100
translates, plus the few a script alone names; `benchmarks/multilingual.py --compare` shows why this mix.
A prompt's comma-separated parts are read one by one, so that its English tags stay English
(`translation_plan`).
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections import Counter

import pycld2  # type: ignore[import-untyped]
import wordfreq  # type: ignore[import-untyped]
from py3langid.langid import MODEL_FILE, LanguageIdentifier  # type: ignore[import-untyped]

ENGLISH = "en"

TRANSLATABLE = frozenset(
    "af am ar ast az ba be bg bn br bs ca ceb cs cy da de el en es et fa ff fi fr fy ga gd gl gu ha he hi hr ht hu "
    "hy id ig ilo is it ja jv ka kk km kn ko lb lg ln lo lt lv mg mk ml mn mr ms my ne nl no ns oc or pa pl ps pt ro "
    "ru sd si sk sl so sq sr ss su sv sw ta th tl tn tr uk ur uz vi wo xh yi yo zh zu".split()
)
"""M2M100's languages (418M and 1.2B alike), by the codes its tokenizer takes: what easel can translate."""

# The languages the detector may answer, by the Unicode script of the prompt's letters. Latin-script
# languages are limited to widely used ones: with all of py3langid's, "a cat" reads as Galician.
# The languages the detector may answer, by the Unicode script of the prompt's letters, most used first:
# exactly the translatable ones, and a language a script alone names even where easel cannot translate it
# (Telugu), so that its user is told the prompt went to the image model as written.
_LATIN = (
    "en", "es", "pt", "fr", "de", "it", "nl", "pl", "tr", "id", "vi", "ro", "cs", "sv", "hu", "da", "fi", "no",
    "sk", "hr", "ca", "ms", "tl", "sl", "lt", "lv", "et", "sq", "bs", "az", "uz", "af", "sw", "is", "gl", "cy",
    "ga", "lb", "eu", "so", "yo", "zu", "xh", "ha", "ig", "jv", "su", "ceb", "ht", "mg", "fy", "gd", "br", "oc",
    "ast", "ilo", "lg", "ln", "tn", "ns", "ss", "wo", "ff",
)  # fmt: skip
_SCRIPT_LANGUAGES: dict[str, tuple[str, ...]] = {
    "LATIN": tuple(code for code in _LATIN if code in TRANSLATABLE),
    "CYRILLIC": ("ru", "uk", "bg", "sr", "mk", "kk", "mn", "be", "ba"),
    "ARABIC": ("ar", "fa", "ur", "ps", "sd"),
    "DEVANAGARI": ("hi", "mr", "ne"),
    "BENGALI": ("bn",),
    "HEBREW": ("he", "yi"),
    "CJK": ("zh",),
    "HIRAGANA": ("ja",),
    "KATAKANA": ("ja",),
    "HANGUL": ("ko",),
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
    "TIBETAN": ("bo",),
    "THAANA": ("dv",),
    "KANNADA": ("kn",),
    "MALAYALAM": ("ml",),
    "SINHALA": ("si",),
}
UNTRANSLATABLE = frozenset(code for codes in _SCRIPT_LANGUAGES.values() for code in codes) - TRANSLATABLE
"""Languages a script alone names that M2M100 cannot translate: their prompts go to the image model as written."""
NON_LATIN_LANGUAGES = frozenset(
    code for script, codes in _SCRIPT_LANGUAGES.items() if script != "LATIN" for code in codes
)
_KANA = ("HIRAGANA", "KATAKANA")
# Letters only some of a script's languages write: those present narrow the choice, which n-grams of two words
# cannot ("кот" scores Macedonian highest, yet Serbian and Macedonian have no й and Ukrainian no ы).
_LETTER_HINTS: dict[str, dict[str, frozenset[str]]] = {
    script: {letters: frozenset(codes.split()) for letters, codes in hints}
    for script, hints in (
        (
            "CYRILLIC",
            (
                ("ыэ", "ru be kk mn ba"),
                ("ъ", "ru bg mn ba"),
                ("й", "ru uk bg be kk mn ba"),
                ("і", "uk be kk"),
                ("їєґ", "uk"),
                ("ў", "be"),
                ("ђћ", "sr"),
                ("јљњџ", "sr mk"),
                ("ѓќѕ", "mk"),
                ("құ", "kk"),
                ("ҡҙҫ", "ba"),
                ("әғңһ", "kk ba"),
                ("өү", "kk ba mn"),
            ),
        ),
        (
            "ARABIC",
            (
                ("پچژ", "fa ur ps sd"),
                ("ٹڈڑںے", "ur"),
                ("ټډړښږځڅګۍېڼ", "ps"),
                ("ٻڀٽٿڄڃڇڊڌڍڏڙڦڪڳڱڻ", "sd"),
            ),
        ),
        ("HEBREW", (("װױײ\u05b7\u05b8\u05bf", "yi"),)),  # Yiddish's double letters and pointed alef, pe
        ("DEVANAGARI", (("ळ", "mr"),)),
    )
}
# How the classifiers' opinions add up (weights found on half of the benchmark's phrases, `benchmarks/multilingual.py`):
# py3langid's probability, CLD2's share of the text, and how common each word is in the language (wordfreq).
_CLD2_WEIGHT = 0.5
_CLD2_FLOOR = 0.02
"""The share CLD2 is taken to give a language it did not name: it names three at most."""
_WORDS_WEIGHT = 1.0
_ENGLISH_BONUS = 1.5
_CONTEXT_BONUS = 3.0
_UNLISTED_WORD = 1e-6
"""The frequency assumed for a word in a language wordfreq has no list of: a common-enough word, no evidence."""
_COMMON_WORD = 1e-6
"""The rarest word every list holds (wordfreq's small lists stop here; English's large one goes further)."""
_UNSEEN_WORD = 1e-8
"""A word a language's list lacks: rare or foreign to it."""
_WORD_LISTS = {"no": "nb", "tl": "fil", "hr": "sh", "bs": "sh", "sr": "sh"}
"""easel's codes that wordfreq spells otherwise (Serbo-Croatian's one list, in Latin letters, serves Croatian,
Bosnian and Serbian, whose Cyrillic words are looked up letter for letter in Latin)."""
_SERBIAN_LATIN = str.maketrans(
    {
        **dict(zip("абвгдђежзијклмнопрстћуфхцчш", "abvgdđežzijklmnoprstćufhcčš", strict=True)),
        "љ": "lj",
        "њ": "nj",
        "џ": "dž",
    }
)
_CLD2_CODES = {"iw": "he", "jw": "jv", "nn": "no", "zh-Hant": "zh"}
_CLD2_LANGUAGES = frozenset(_CLD2_CODES.get(code, code) for _, code in pycld2.LANGUAGES)
_WORD = re.compile(r"\w+")
_UNSEGMENTED = frozenset({"zh", "ja", "ko", "th", "lo", "km", "my"})
"""Written without spaces between words: their lists need a segmenter, and their script decides anyway."""

_LATIN_LETTER = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff"
_LATIN_WORD = f"[0-9]*[{_LATIN_LETTER}][{_LATIN_LETTER}0-9'’.&-]*"
# Latin words in a row (a name, a style: "Van Gogh", "art nouveau", "4k"); a comma ends a span.
LATIN_SPAN = re.compile(f"({_LATIN_WORD}(?:[ \t]+{_LATIN_WORD})*)")
MAX_PARTS = 32
"""The parts of a prompt read one by one; the rest are read together."""
SEGMENT = re.compile(r"(\s*[,;\n，、；]\s*)")
"""Where a prompt's parts meet: a tag list's commas, semicolons, new lines. `split` puts them at the odd places."""
SEPARATORS = " \t\r\n,;:.!?()[]{}\"'«»“”„、。，；：！？（）"


def _script(letter: str) -> str:
    """The first word of the letter's Unicode name: LATIN, CYRILLIC, CJK, HANGUL..."""
    return unicodedata.name(letter, "UNKNOWN").split(" ", 1)[0]


def letter_scripts(text: str) -> Counter[str]:
    return Counter(_script(char) for char in text if char.isalpha())


@functools.cache
def _identifier() -> LanguageIdentifier:
    """Loaded on first use (0.4 s); read-only afterwards, so safe to share between threads."""
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@functools.cache
def _identifier_languages() -> frozenset[str]:
    return frozenset(_identifier().nb_classes)


@functools.cache
def _word_lists() -> dict[str, dict[str, float]]:
    """wordfreq's frequency of each word, by easel's language code, for the translatable languages it lists: words
    down to one in a million, and for English down to one in a hundred million, so that the rarer English words
    prompts are full of (`bokeh`, `isometric`) count as English, not as evidence for a language without a list."""
    listed = set(wordfreq.available_languages("small"))
    lists: dict[str, dict[str, float]] = {}
    for code in sorted(TRANSLATABLE - _UNSEGMENTED):
        name = _WORD_LISTS.get(code, code)
        if name in listed:
            lists[code] = wordfreq.get_frequency_dict(name, "large" if code == ENGLISH else "small")
    return lists


def load() -> None:
    """Read the classifier and the word lists now (about 1 s), so that the first prompt does not wait for them."""
    _identifier()
    _word_lists()


def detect_language(text: str) -> str | None:
    """The ISO 639-1 code of the text's language (M2M100's own code for the four it translates that have none:
    ast, ceb, ilo, ns); None when it has no letters (emoji, digits, empty) or none easel knows writes its script.

    A prompt of comma-separated parts may mix languages ("retrato de Frida Kahlo, cyberpunk, neon lights"): its
    language is that of its non-English parts, read together; English only when every part is.
    """
    segments = segment_languages(text)
    foreign = [segment for segment, language in segments if language not in (None, ENGLISH)]
    if not foreign:
        return ENGLISH if any(language == ENGLISH for _, language in segments) else None
    together = _best(_scores(", ".join(foreign)), {})
    if together not in (None, ENGLISH):
        return together
    return max((item for item in segments if item[1] not in (None, ENGLISH)), key=lambda item: len(item[0]))[1]


def translation_plan(text: str, language: str) -> list[tuple[str, str | None]]:
    """The prompt cut at its separators, each piece with the language to translate it from, None to keep it:
    separators, English parts, parts without letters. A part is in the prompt's `language` when its script
    allows it (short parts read alone are unsure), else in its own ("кот, chat noir")."""
    plan: list[tuple[str, str | None]] = []
    pieces = SEGMENT.split(text)
    segments = segment_languages(text) if len(pieces) > 1 else [(text, language)]
    for index, piece in enumerate(pieces):
        if index % 2:
            plan.append((piece, None))
            continue
        _, own = segments[min(index // 2, len(segments) - 1)]  # the parts after MAX_PARTS share one reading
        if own is None or own == ENGLISH:
            plan.append((piece, None))
        else:
            plan.append((piece, language if language in (script_candidates(piece) or ()) else own))
    return plan


def segment_languages(text: str) -> list[tuple[str, str | None]]:
    """Each comma-separated part of a prompt with its language. A part is read alone, then in the light of the
    others: a close call goes to English (most prompts are English, and English lends its tags to every
    other: `bokeh`, `cyberpunk`), and a one-word part, which says little alone, leans to the language of the
    others ("acuarela" in a Spanish prompt, "solo" in an English tag list)."""
    segments = _segments(text)
    scored = [_scores(segment) for segment in segments]
    alone = [_best(scores, {ENGLISH: _ENGLISH_BONUS}) for scores in scored]
    letters = [sum(char.isalpha() for char in segment) for segment in segments]
    result = []
    for index, (segment, scores) in enumerate(zip(segments, scored, strict=True)):
        others = Counter[str]()
        for other, language in enumerate(alone):
            if other != index and language is not None:
                others[language] += letters[other]
        bonus = {ENGLISH: _ENGLISH_BONUS}
        if others and len(_WORD.findall(segment)) == 1:
            context = others.most_common(1)[0][0]
            bonus[context] = bonus.get(context, 0.0) + _CONTEXT_BONUS
        result.append((segment, _best(scores, bonus)))
    return result


def _segments(text: str) -> list[str]:
    """The prompt's parts, the parts after the `MAX_PARTS`th read as one: detection stays within a few milliseconds
    whatever a prompt holds ("a, b, c, ..." a thousand characters long)."""
    pieces = SEGMENT.split(text)
    if len(pieces) <= 2 * MAX_PARTS - 1:
        return pieces[::2]
    return [*pieces[: 2 * MAX_PARTS - 2 : 2], "".join(pieces[2 * MAX_PARTS - 2 :])]


def _best(scores: dict[str, float] | str | None, bonus: dict[str, float]) -> str | None:
    if scores is None or isinstance(scores, str):
        return scores
    return max(scores, key=lambda code: scores[code] + bonus.get(code, 0.0))


def script_candidates(text: str) -> tuple[str, ...] | None:
    """The languages the text's writing system allows, most used first: empty without letters, None for a
    script the table lacks."""
    scripts = letter_scripts(text)
    if not scripts:
        return ()
    script = _prompt_script(scripts)
    candidates = _SCRIPT_LANGUAGES.get(script)
    lowered = text.lower()
    for letters, languages in _LETTER_HINTS.get(script, {}).items():
        if candidates is not None and any(letter in lowered for letter in letters):
            candidates = tuple(code for code in candidates if code in languages) or candidates
    return candidates


def _prompt_script(scripts: Counter[str]) -> str:
    """Kana before all (Japanese mixes it with Han; Chinese never uses it), then any script beside Latin:
    Latin words inside another script are names and styles, not the prompt's language."""
    if any(script in scripts for script in _KANA):
        return _KANA[0]
    others = [(count, script) for script, count in scripts.items() if script in _SCRIPT_LANGUAGES and script != "LATIN"]
    if others:
        return max(others)[1]
    return "LATIN" if "LATIN" in scripts else scripts.most_common(1)[0][0]


@functools.lru_cache(maxsize=4096)
def _scores(text: str) -> dict[str, float] | str | None:
    """Each candidate's score (`_classify`); the language itself where the script leaves one; None without letters
    or in a script easel knows no language of. Remembered (read-only): the translator reads a prompt's parts
    again, and tag lists repeat their tags."""
    candidates = script_candidates(text)
    if candidates is None:  # a script of no language easel knows (Cherokee, Syriac...): no answer beats a guess
        return None
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    return _classify(text, candidates)


def _classify(text: str, candidates: tuple[str, ...]) -> dict[str, float]:
    """Each candidate's sum of three opinions, in logarithms: py3langid's probability (byte n-grams), CLD2's
    (n-grams trained on other text, strong on single words), and the mean frequency of the words in the language.
    A language one of them does not know gets a neutral value from it, not a veto."""
    ranking = dict(_identifier().rank(text))
    known = [code for code in candidates if code in _identifier_languages()]
    total = sum(ranking[code] for code in known) or 1.0
    shares = _cld2_shares(text)
    lists = _word_lists()
    words = _words(text)

    def score(code: str) -> float:
        ngrams = math.log(max(ranking[code] / total, 1e-6)) if code in known else math.log(1 / len(candidates))
        cld2 = math.log(max(shares.get(code, 0.0), _CLD2_FLOOR)) if code in _CLD2_LANGUAGES else math.log(0.1)
        frequencies = lists.get(code)
        spelt = [word.translate(_SERBIAN_LATIN) for word in words] if code == "sr" else words
        if frequencies is None or not words:
            usage = math.log10(_UNLISTED_WORD)
        else:
            usage = sum(math.log10(max(_frequency(code, word, frequencies), _UNSEEN_WORD)) for word in spelt)
            usage /= len(words)
        return ngrams + _CLD2_WEIGHT * cld2 + _WORDS_WEIGHT * usage

    return {code: score(code) for code in candidates}


def _frequency(code: str, word: str, frequencies: dict[str, float]) -> float:
    """A word's frequency in the language; English's rare words count only where no other list has the word, so
    that `bokeh` is English but `drage` (Danish and Norwegian for dragon, rare in English) is not."""
    found = frequencies.get(word, 0.0)
    if code != ENGLISH or found >= _COMMON_WORD:
        return found
    others = _word_lists()
    return 0.0 if any(word in others[other] for other in others if other != ENGLISH) else found


def _words(text: str) -> list[str]:
    """The words whose frequencies are evidence: not numbers, and not capitalised words after the first (names,
    which every language's lists hold: "retrato de Frida Kahlo"), unless nothing else is left."""
    words = [word for word in _WORD.findall(text) if not word.isdigit()]
    common = words[:1] + [word for word in words[1:] if not word[:1].isupper()]
    return [word.casefold() for word in common]


def _cld2_shares(text: str) -> dict[str, float]:
    """CLD2's top languages with their share of the text; nothing where it cannot tell or cannot read the text."""
    try:
        _, _, details = pycld2.detect(text.encode("utf-8", "replace").decode("utf-8"), bestEffort=True)
    except pycld2.error:
        return {}
    return {_CLD2_CODES.get(code, code): percent / 100 for _, code, percent, _ in details if code != "un"}


def latin_spans(text: str) -> list[str]:
    """The runs of Latin-script words in a text that also has letters of another script; else none."""
    if set(letter_scripts(text)) <= {"LATIN"}:
        return []
    return LATIN_SPAN.findall(text)
