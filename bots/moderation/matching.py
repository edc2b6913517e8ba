"""Banned words and phrases: which prompt a community's list blocks.

Pure logic, no I/O. Both the patterns and the prompt pass through `normalise`, so the comparison ignores
case, accents, invisible characters and letters that merely look like others: a banned word cannot be
dodged by writing it in fullwidth, with Cyrillic or Greek look-alikes (Unicode's confusables, see
`look_alikes`) or with a zero-width space inside. The prompt is also seen with the look-alikes that pass
only as capitals folded inside words that mix scripts, so "кraken" is "kraken" while Russian "вот" is not
"bot". Plain patterns match whole words where a script separates its words with spaces (with the clitics Arabic
writes onto a word and the particles Korean writes after a noun), and anywhere inside the text where it does not
(Chinese, Japanese, Thai...). Optional regular expressions see the same texts;
their own letters are folded the same way (ASCII case is left to re.IGNORECASE, so "\\S" keeps its sense),
so "café" or "кот" written in one still matches, and a range of letters ("[а-я]") keeps its sense.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parser  # type: ignore[attr-defined]
from typing import Any, NoReturn

from bots.moderation import look_alikes
from generation.errors import EaselError

MAX_PATTERN_LENGTH = 200
# Regular expressions only see this much of the normalised text: a prompt is at most 1000 characters,
# and normalising (ligatures, "ß" to "ss") can lengthen it a little. Plain patterns see everything.
MAX_REGEX_TEXT = 2000

# Characters that show nothing: dropped so "b\u200bad" is "bad". Variation selectors only pick a glyph.
_INVISIBLE = dict.fromkeys(
    [0x00AD, 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, *range(0xFE00, 0xFE10)],
)
# Marks that are optional accents on a letter rather than part of its spelling: the generic combining
# diacritics (Latin, Greek, Cyrillic accents), Arabic short vowels and the tatweel that only stretches a
# word. Script-specific marks that spell a sound (Devanagari vowel signs, Japanese dakuten, Thai vowels)
# are kept: dropping them would merge different words.
_ACCENTS = frozenset(
    [
        *range(0x0300, 0x0370),
        *range(0x1AB0, 0x1B00),
        *range(0x1DC0, 0x1E00),
        *range(0x20D0, 0x2100),
        *range(0xFE20, 0xFE30),
        *range(0x064B, 0x0660),
        0x0670,
        0x0640,
    ]
)
# Arabic letters people write interchangeably: alef with or without hamza or madda, final ya with or without dots.
_ARABIC_LETTERS = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي"})
# Scripts written without spaces between words: there a banned word is found anywhere in the text.
_UNSPACED = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x0F00, 0x0FFF),  # Tibetan
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x19E0, 0x19FF),  # Khmer symbols
    (0x2E80, 0x2FDF),  # CJK radicals
    (0x3005, 0x3007),  # CJK iteration and closing marks, ideographic zero
    (0x3021, 0x3029),  # Hangzhou numerals
    (0x3040, 0x312F),  # kana, Bopomofo
    (0x3190, 0x31FF),  # kanbun, Bopomofo extended, CJK strokes, katakana extension
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xA9E0, 0xA9FF),  # Myanmar extended-B
    (0xAA60, 0xAA7F),  # Myanmar extended-A
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9F),  # halfwidth katakana
    (0x1B000, 0x1B16F),  # kana supplement and extensions
    (0x20000, 0x323AF),  # CJK extensions B to H
)
# Arabic writes its conjunctions, prepositions and article onto the word ("والكلب": and the dog), and its
# possessives and plurals after it; Korean writes its particles after the noun ("고양이가", "고양이를"). A banned word
# in either still matches with them attached, though not inside another word.
_ARABIC_PREFIXES = "(?:[وف]?[بكل]?(?:ال|ل)?)"


def _either(*endings: str) -> str:
    """An optional ending, the longest tried first: the match must not stop at "에" when "에게" follows."""
    return "(?:" + "|".join(sorted(endings, key=len, reverse=True)) + ")?"


_ARABIC_SUFFIXES = _either(
    "ات", "ون", "ين", "ان", "ة", "ي", "ك", "ه", "ها", "نا", "هم", "هن", "كم", "كن", "تي", "ته", "تها"
)
_PARTICLES = (
    "이 가 을 를 은 는 의 에 에게 에게서 에서 와 과 도 로 으로 만 까지 부터 한테 께 처럼 보다 이나 나 랑 이랑 아 야"
)
_KOREAN_PARTICLES = "(?:들)?" + _either(*_PARTICLES.split()) + _either("도", "만", "는", "은", "의", "요")
# re's parser is private, but it is the only way to see an expression's structure (nested repeats).
_REPEATS = (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT)
# A regular expression that matches the empty string anywhere would block every prompt; these texts
# catch the usual forms ("a*", "x?", "^", "\b", "a|").
_EMPTY_PROBES = ("", "a", "a b", "1")


@dataclass(frozen=True)
class BannedPattern:
    text: str
    regex: bool = False


class InvalidPattern(EaselError):
    """A banned word or expression that cannot be used: refused to a moderator who adds it, or at start-up
    when the configuration names it."""

    def __init__(self, pattern: BannedPattern, detail: str) -> None:
        self.pattern = pattern
        self.detail = detail
        super().__init__(f"{pattern.text!r} cannot be banned: {detail}")


def normalise(text: str) -> str:
    """The form in which patterns and prompts are compared: case, accents and look-alikes folded away."""
    return look_alikes.fold(_fold(text, ascii_case=True))


def validate(pattern: BannedPattern) -> None:
    """Refuse a pattern when it is added, with the reason, rather than let it misbehave on every prompt."""
    if len(pattern.text) > MAX_PATTERN_LENGTH:
        _refuse(pattern, f"longer than {MAX_PATTERN_LENGTH} characters")
    if not normalise(pattern.text).strip():
        _refuse(pattern, "empty")
    if pattern.regex:
        _compile_regex(pattern)


class BannedWords:
    """A community's (or the global) list of banned patterns; an empty list blocks nothing."""

    def __init__(self, patterns: Iterable[BannedPattern]) -> None:
        self._patterns = tuple(patterns)
        for pattern in self._patterns:
            validate(pattern)
        self._matchers = [_Regex(pattern) if pattern.regex else _Plain(pattern) for pattern in self._patterns]

    def find(self, text: str) -> BannedPattern | None:
        """The first pattern, in list order, that the text contains; None when it may pass."""
        folded = _fold(text, ascii_case=True)
        forms = {look_alikes.fold(folded), look_alikes.fold_mixed_words(folded)}
        return next((matcher.pattern for matcher in self._matchers if any(map(matcher.matches, forms))), None)

    def __len__(self) -> int:
        return len(self._patterns)

    def __bool__(self) -> bool:
        return bool(self._patterns)


class _Plain:
    """A word or phrase: its words in order with any whitespace between them, not inside a longer word.

    The word boundaries are checked here rather than in the expression: `re` has no class for "a letter,
    mark or digit of a script that separates words", and \\w leaves out the combining marks that most
    Indic words contain.
    """

    def __init__(self, pattern: BannedPattern) -> None:
        self.pattern = pattern
        words = normalise(pattern.text).split()
        # A lookahead finds overlapping occurrences too: one that fails the boundary test cannot hide the next.
        phrase = r"\s+".join(re.escape(word) for word in words)
        prefix = _ARABIC_PREFIXES if _is_arabic(words[0][0]) else ""
        suffix = (
            _ARABIC_SUFFIXES if _is_arabic(words[-1][-1]) else _KOREAN_PARTICLES if _is_hangul(words[-1][-1]) else ""
        )
        self._finder = re.compile(f"(?=({prefix}{phrase}{suffix}))")
        self._bounded_start = _separates_words(words[0][0])
        self._bounded_end = _separates_words(words[-1][-1])

    def matches(self, text: str) -> bool:
        for match in self._finder.finditer(text):
            start, end = match.span(1)
            if self._bounded_start and start > 0 and _separates_words(text[start - 1]):
                continue
            if self._bounded_end and end < len(text) and _separates_words(text[end]):
                continue
            return True
        return False


class _Regex:
    def __init__(self, pattern: BannedPattern) -> None:
        self.pattern = pattern
        self._compiled = _compile_regex(pattern)

    def matches(self, text: str) -> bool:
        return self._compiled.search(text[:MAX_REGEX_TEXT]) is not None


def _fold(text: str, *, ascii_case: bool) -> str:
    """`normalise` but for look-alikes; with ascii_case=False ASCII keeps its case, so a regular expression's "\\S"
    stays."""
    text = unicodedata.normalize("NFKC", text.translate(_INVISIBLE))
    if ascii_case:
        text = text.casefold()
    else:
        text = "".join(char if char.isascii() else char.casefold() for char in text)
    text = "".join(char for char in unicodedata.normalize("NFD", text) if ord(char) not in _ACCENTS)
    return unicodedata.normalize("NFC", text).translate(_ARABIC_LETTERS)


def _is_arabic(char: str) -> bool:
    return 0x0620 <= ord(char) <= 0x064A or 0x066E <= ord(char) <= 0x06D3


def _is_hangul(char: str) -> bool:
    return 0xAC00 <= ord(char) <= 0xD7A3


def _separates_words(char: str) -> bool:
    """Whether a letter, mark or digit belongs to a script that puts spaces between its words."""
    return unicodedata.category(char)[0] in "LMN" and not any(low <= ord(char) <= high for low, high in _UNSPACED)


def _compile_regex(pattern: BannedPattern) -> re.Pattern[str]:
    """Compile a moderator's regular expression, refusing those that would block everything or hang."""
    source = look_alikes.fold_expression(_fold(pattern.text, ascii_case=False))
    try:
        compiled = re.compile(source, re.IGNORECASE)
        parsed = sre_parser.parse(source, re.IGNORECASE)
    except re.error as error:
        _refuse(pattern, str(error))
    if any(match.start() == match.end() for probe in _EMPTY_PROBES for match in compiled.finditer(probe)):
        _refuse(pattern, "matches the empty string")
    # A repeat inside a repeat, like "(a+)+", can take exponential time on a prompt that almost matches;
    # the engine cannot be interrupted, so such an expression would stall the whole bot.
    if _nested_repeat(parsed, inside=False):
        _refuse(pattern, "has a repeat inside a repeat")
    return compiled


def _nested_repeat(node: object, *, inside: bool) -> bool:
    for op, argument in _items(node):
        repeats = op in _REPEATS and argument[1] > 1
        if repeats and inside:
            return True
        if _nested_repeat(argument, inside=inside or repeats):
            return True
    return False


def _items(node: object) -> Iterator[tuple[Any, Any]]:
    """The (operation, argument) pairs of a parsed expression, found inside any argument's nesting."""
    if isinstance(node, sre_parser.SubPattern):
        yield from node.data
    elif isinstance(node, list | tuple):
        for child in node:
            yield from _items(child)


def _refuse(pattern: BannedPattern, detail: str) -> NoReturn:
    raise InvalidPattern(pattern, detail)
