"""Letters that look like Latin ones, from Unicode's confusables data (UTS #39, as confusable-homoglyphs ships it).

Both tables are used after case folding, and map a letter to the Latin letter it passes for:
- lowercase look-alikes (Cyrillic "о", "р", "ѕ"; Greek "ο", "ρ", "ν") are folded everywhere, so a word spelt
  wholly in them ("ѕех") is the Latin word;
- letters that pass for a Latin letter only as capitals (Cyrillic "к", "в", "н", "т"; Greek "κ", "τ") are
  folded only inside a word that mixes scripts ("кraken"). UTS #39 keeps lowercase "к" apart from "k" (it
  looks like a small capital), and folding it everywhere would turn Russian "вот" into English "bot"; no
  language mixes scripts inside a word, but a dodge does.
Only letters are ever mapped, and never ASCII: "b00k" is not "book", and a regular expression's "|" stays.
"""

from __future__ import annotations

import re

from confusable_homoglyphs import confusables

# A word, for the mixed-script test: a run of letters.
_WORD = re.compile(r"[^\W\d_]+")
# Characters of these scripts belong to any word: punctuation-like letters, and combining marks.
_NEUTRAL_SCRIPTS = ["COMMON", "INHERITED"]


def _tables() -> tuple[dict[int, str], dict[int, str]]:
    """(lowercase look-alikes, capital-only look-alikes), each from a letter's code point to a Latin letter.

    The data pairs each character with its UTS #39 prototype both ways; an ASCII letter is always the prototype.
    """
    lower: dict[int, str] = {}
    capital: dict[int, str] = {}
    for char, pairs in confusables.confusables_data.items():
        if len(char) != 1 or char.isascii() or not char.isalpha():
            continue
        latin = {pair["c"] for pair in pairs if len(pair["c"]) == 1 and pair["c"].isascii() and pair["c"].isalpha()}
        if len(latin) != 1:
            continue
        (letter,) = latin
        small = char.casefold()
        if letter.islower() and char == small:
            lower[ord(char)] = letter
        elif letter.isupper() and char != small and len(small) == 1 and not small.isascii():
            capital[ord(small)] = letter.lower()
    return lower, {code: letter for code, letter in capital.items() if code not in lower}


_LOWER, _CAPITAL = _tables()
_ANY_CASE = {**_CAPITAL, **_LOWER}


def fold(text: str) -> str:
    """Lowercase look-alikes as their Latin letters; `text` is already case folded."""
    return text.translate(_LOWER)


def fold_mixed_words(text: str) -> str:
    """`fold`, and inside words that mix scripts the capital-only look-alikes too: "кraken" is "kraken"."""
    return _WORD.sub(lambda word: _fold_word(word.group()), text).translate(_LOWER)


def fold_expression(source: str) -> str:
    """`fold` for a regular expression: a range in a character set ("[а-я]") keeps its ends, so it still means its
    own letters, and takes in the Latin letters that those in it are folded to in the text."""
    folded: list[str] = []
    index, in_set, set_start = 0, False, 0
    while index < len(source):
        char = source[index]
        if char == "\\":
            folded.append(source[index : index + 2])
            index += 2
            continue
        if not in_set:
            if char == "[":
                in_set, set_start = True, index + 1 + (source[index + 1 : index + 2] == "^")
        elif char == "]" and index > set_start:
            in_set = False
        elif index >= set_start and _starts_range(source, index):
            low, high = ord(char), ord(source[index + 2])
            images = sorted({letter for code, letter in _LOWER.items() if low <= code <= high})
            folded.append(source[index : index + 3] + "".join(images))
            index += 3
            continue
        folded.append(char.translate(_LOWER))
        index += 1
    return "".join(folded)


def _starts_range(source: str, index: int) -> bool:
    return source[index + 1 : index + 2] == "-" and source[index + 2 : index + 3] not in ("", "]", "\\")


def _fold_word(word: str) -> str:
    if any(ord(char) in _CAPITAL for char in word) and confusables.is_mixed_script(word, _NEUTRAL_SCRIPTS):
        return word.translate(_ANY_CASE)
    return word
