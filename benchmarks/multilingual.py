"""Multilingual benchmark: how often the detector names a prompt's language, and what translation costs.

Why it exists: every prompt passes the language detector at submit time, and every non-English one
the translation step before the image pipelines. This measures the detector's accuracy on the phrases
of `benchmarks/phrases/*.tsv` (81 languages: single words, two-word phrases, short prompts and sentences,
written as people write to an image bot), by length and by language, with its time per call and the memory
it adds; its accuracy on 123 older prompts in 21 languages (several mixing in Latin-script names and
styles); and the time the translation step adds to one request in the engine with the `tiny` preset.
With `--compare`, every other detector installed is measured the same way, each in its own interpreter
(`benchmarks/language_detectors.py`).

The tiny translator has M2M100's classes with random weights: it never predicts the end of a sentence,
so every translation runs to `max_new_tokens` (256 by default) with `num_beams` (4) beams, a worst
case in length. Its times say nothing about the real model, which this machine cannot load.

Run it from the repository root:

    python benchmarks/multilingual.py [--repeats N] [--compare]

Translation times are medians of N txt2img requests (cache off, so every run translates), taken in
turn with an English request, whose median is subtracted. Human-readable lines come
first; the last line of stdout is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import diffusers
import psutil
import torch
import transformers
from language_detectors import TARGETS, compare

from generation.config import DefaultsSettings, Limits, ModelSettings, TranslationSettings, resolve_defaults
from generation.engine import Engine
from generation.models import load_models
from generation.requests import GenerationRequest, make_request
from generation.translation import SourceText, Translator, detect_language, load_translator

DETECTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "language_detectors.py")

# (expected ISO 639-1 code, prompt): written for this benchmark, as users of an image bot write.
PROMPTS: tuple[tuple[str, str], ...] = (
    ("en", "a lighthouse on a cliff at dawn"),
    ("en", "a red cat asleep on a windowsill"),
    ("en", "portrait of an old fisherman, oil painting"),
    ("en", "a cozy cabin in a snowy forest at night"),
    ("en", "cyberpunk city street in the rain, neon lights"),
    ("en", "a bowl of lemons on a wooden table"),
    ("en", "a dragon flying over mountains, epic fantasy art"),
    ("ru", "кот в стиле Van Gogh"),
    ("ru", "маяк на скале на рассвете"),
    ("ru", "портрет старого рыбака, масляная живопись"),
    ("ru", "уютный домик в заснеженном лесу ночью"),
    ("ru", "рыжая лиса в осеннем лесу"),
    ("ru", "космонавт верхом на лошади"),
    ("uk", "кіт спить на підвіконні"),
    ("uk", "маяк на скелі на світанку"),
    ("uk", "соняшникове поле під блакитним небом"),
    ("uk", "старе місто взимку, акварель"),
    ("uk", "дівчина у вишиванці в полі"),
    ("zh", "一只在窗台上睡觉的红猫"),
    ("zh", "黎明时悬崖上的灯塔"),
    ("zh", "梵高风格的星空下的村庄"),
    ("zh", "雨夜中的赛博朋克城市街道"),
    ("zh", "水墨画风格的山水"),
    ("zh", "穿着宇航服的熊猫"),
    ("ja", "窓辺で眠る赤い猫"),
    ("ja", "夜明けの崖の上の灯台"),
    ("ja", "桜の木の下の女の子、アニメ風"),
    ("ja", "雪の中の小さな神社"),
    ("ja", "浮世絵風の富士山と波"),
    ("ja", "サイバーパンクの東京の夜景"),
    ("ko", "창가에서 잠든 빨간 고양이"),
    ("ko", "새벽 절벽 위의 등대"),
    ("ko", "벚꽃이 핀 서울의 거리"),
    ("ko", "우주복을 입은 강아지"),
    ("ko", "눈 덮인 숲속의 오두막"),
    ("ar", "قطة حمراء نائمة على حافة النافذة"),
    ("ar", "منارة على جرف عند الفجر"),
    ("ar", "سوق قديم في القاهرة، لوحة زيتية"),
    ("ar", "جمل في الصحراء عند غروب الشمس"),
    ("ar", "مدينة مستقبلية في الليل"),
    ("fa", "گربه قرمز روی لبه پنجره خوابیده است"),
    ("fa", "باغ ایرانی با حوض و درختان سرو"),
    ("fa", "نقاشی مینیاتور از یک شاهزاده"),
    ("fa", "کوه دماوند در زمستان"),
    ("fa", "یک فانوس دریایی روی صخره در سپیده دم"),
    ("hi", "खिड़की पर सोती हुई लाल बिल्ली"),
    ("hi", "सुबह के समय चट्टान पर एक प्रकाशस्तंभ"),
    ("hi", "ताज महल चांदनी रात में"),
    ("hi", "हाथी पर बैठा हुआ राजा, पुरानी चित्रकला"),
    ("hi", "बारिश में भीगता हुआ शहर"),
    ("he", "חתול אדום ישן על אדן החלון"),
    ("he", "מגדלור על צוק עם שחר"),
    ("he", "ירושלים העתיקה בשקיעה"),
    ("he", "ציור שמן של סירת דייגים"),
    ("he", "יער קסום בלילה"),
    ("el", "μια κόκκινη γάτα κοιμάται στο περβάζι"),
    ("el", "φάρος σε γκρεμό την αυγή"),
    ("el", "λευκά σπίτια στη Σαντορίνη"),
    ("el", "αρχαίος ναός στο ηλιοβασίλεμα"),
    ("el", "πορτρέτο ενός ψαρά, ελαιογραφία"),
    ("th", "แมวสีแดงนอนหลับอยู่บนขอบหน้าต่าง"),
    ("th", "ประภาคารบนหน้าผายามรุ่งสาง"),
    ("th", "วัดไทยในยามค่ำคืน"),
    ("th", "ตลาดน้ำในกรุงเทพ"),
    ("th", "ช้างในป่าฝน"),
    ("fr", "un chat roux endormi sur le rebord de la fenêtre"),
    ("fr", "un phare sur une falaise à l'aube"),
    ("fr", "portrait d'un vieux pêcheur, peinture à l'huile"),
    ("fr", "une rue de Paris sous la pluie"),
    ("fr", "un château dans les nuages"),
    ("fr", "une forêt enchantée la nuit"),
    ("de", "eine rote Katze schläft auf dem Fensterbrett"),
    ("de", "ein Leuchtturm auf einer Klippe im Morgengrauen"),
    ("de", "eine gemütliche Hütte im verschneiten Wald"),
    ("de", "Porträt eines alten Fischers, Ölgemälde"),
    ("de", "ein Drache fliegt über die Berge"),
    ("de", "Schloss Neuschwanstein im Herbst"),
    ("es", "un gato rojo durmiendo en la ventana"),
    ("es", "un faro en un acantilado al amanecer"),
    ("es", "retrato de un viejo pescador, pintura al óleo"),
    ("es", "una calle de Sevilla llena de flores"),
    ("es", "un bosque encantado por la noche"),
    ("es", "un astronauta montando a caballo"),
    ("it", "un gatto rosso che dorme sul davanzale"),
    ("it", "un faro su una scogliera all'alba"),
    ("it", "i canali di Venezia al tramonto"),
    ("it", "ritratto di un vecchio pescatore, pittura a olio"),
    ("it", "una piazza italiana sotto la neve"),
    ("pt", "um gato vermelho dormindo na janela"),
    ("pt", "um farol num penhasco ao amanhecer"),
    ("pt", "uma praia tropical com coqueiros"),
    ("pt", "retrato de um velho pescador, pintura a óleo"),
    ("pt", "uma cidade antiga coberta de neve"),
    ("pl", "rudy kot śpiący na parapecie"),
    ("pl", "latarnia morska na klifie o świcie"),
    ("pl", "stary zamek w górach zimą"),
    ("pl", "portret starego rybaka, obraz olejny"),
    ("pl", "las jesienią, akwarela"),
    ("tr", "pencere kenarında uyuyan kırmızı bir kedi"),
    ("tr", "şafak vakti bir uçurumun üzerindeki deniz feneri"),
    ("tr", "İstanbul'da yağmurlu bir gece"),
    ("tr", "yaşlı bir balıkçının portresi, yağlı boya"),
    ("tr", "karlı ormanda küçük bir kulübe"),
    ("vi", "một con mèo đỏ ngủ trên bậu cửa sổ"),
    ("vi", "ngọn hải đăng trên vách đá lúc bình minh"),
    ("vi", "phố cổ Hội An về đêm"),
    ("vi", "cánh đồng lúa chín vàng"),
    ("vi", "chân dung một ông lão đánh cá, tranh sơn dầu"),
    ("nl", "een rode kat slaapt op de vensterbank"),
    ("nl", "een vuurtoren op een klif bij zonsopgang"),
    ("nl", "grachten van Amsterdam in de winter"),
    ("nl", "een molen in een tulpenveld"),
    ("nl", "portret van een oude visser, olieverfschilderij"),
    # Latin-script names and styles inside another script.
    ("ru", "девушка в стиле Alphonse Mucha, art nouveau"),
    ("zh", "赛博朋克风格的城市, 4k, Unreal Engine"),
    ("ja", "ジブリ風の森, Studio Ghibli style"),
    ("ko", "픽사 스타일의 강아지, Pixar"),
    ("ar", "قطة في الفضاء, digital art"),
    ("he", "חתול בסגנון Picasso"),
    ("hi", "Monet शैली में कमल का तालाब"),
    ("el", "γάτα σε στυλ anime"),
    ("th", "แมวสไตล์ Pixar"),
    ("uk", "портрет козака в стилі Rembrandt"),
)
# One request each way: plain Russian takes one model call; with a Latin term the tiny model always loses
# the term, so the text around it is translated again piecewise (two calls, the worst case).
RUSSIAN = {
    "plain": "рыжая лиса в осеннем лесу, масляная живопись",
    "mixed": "кот в стиле Van Gogh на крыше, масляная живопись",
}
ENGLISH = "a red fox in an autumn forest, oil painting"


def cpu_seconds() -> tuple[float, float]:
    """Busy CPU seconds so far of the whole machine and of this process; their difference is other load."""
    machine = psutil.cpu_times()
    busy = machine.user + machine.system + sum(getattr(machine, name, 0.0) for name in ("nice", "irq", "softirq"))
    own = psutil.Process().cpu_times()
    return busy, own.user + own.system


def measure_detection() -> dict[str, Any]:
    started = time.perf_counter()
    detect_language("warm-up: the classifier loads on first use")
    load_s = time.perf_counter() - started
    seconds, wrong = [], []
    for expected, prompt in PROMPTS:
        began = time.perf_counter()
        found = detect_language(prompt)
        seconds.append(time.perf_counter() - began)
        if found != expected:
            wrong.append({"prompt": prompt, "expected": expected, "detected": found})
    languages = Counter(expected for expected, _ in PROMPTS)
    return {
        "prompts": len(PROMPTS),
        "languages": len(languages),
        "correct": len(PROMPTS) - len(wrong),
        "accuracy": round(1 - len(wrong) / len(PROMPTS), 4),
        "wrong": wrong,
        "detector_load_s": round(load_s, 3),
        "detect_median_ms": round(statistics.median(seconds) * 1000, 3),
        "detect_max_ms": round(max(seconds) * 1000, 3),
    }


def measure_phrases() -> dict[str, Any]:
    """easel's detector on the phrases, in an interpreter of its own (its memory alone), all of them and the
    odd-numbered half its weights were not chosen on."""
    output = subprocess.run(
        [sys.executable, DETECTORS, "--candidate", "easel"], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, Any] = json.loads(output.splitlines()[-1])
    accuracy, held_out = result["accuracy"], result["held_out"]["accuracy"]
    print(
        f"phrases: {result['items']} in {result['languages']} languages; "
        + ", ".join(
            f"{kind} {accuracy[kind]:.1%} (held out {held_out[kind]:.1%}, target {TARGETS[kind]:.0%})"
            for kind in accuracy
        )
        + f"; median {result['median_ms']} ms, p99 {result['p99_ms']} ms"
        + f"; +{result['memory_mb']} MB; load {result['load_s']} s"
    )
    worst = sorted(result["by_language"].items(), key=lambda item: item[1])[:10]
    print("  weakest languages: " + ", ".join(f"{code} {share:.0%}" for code, share in worst))
    return {key: value for key, value in result.items() if key != "misses"}


def measure_translation(repeats: int) -> dict[str, Any]:
    model_settings = ModelSettings(preset="tiny")
    started = time.perf_counter()
    translator = load_translator(TranslationSettings(cache_size=0), model_settings)
    load_s = time.perf_counter() - started
    assert isinstance(translator, Translator)
    models = load_models(model_settings)
    engine, untranslated = Engine(models, translator), Engine(models, None)
    defaults, limits = resolve_defaults("tiny", DefaultsSettings()), Limits()

    def request(prompt: str, language: str) -> GenerationRequest:
        return make_request("txt2img", prompt, defaults=defaults, limits=limits, seed=1, language=language)

    requests = {"en": request(ENGLISH, "en"), **{kind: request(text, "ru") for kind, text in RUSSIAN.items()}}
    runs = [(kind, engine, each) for kind, each in requests.items()] + [
        ("en_untranslated", untranslated, requests["en"])
    ]
    for _, runner, warm_up in runs:
        runner.generate([warm_up])
    times: dict[str, list[float]] = {kind: [] for kind, _, _ in runs}
    for _ in range(repeats):
        for kind, runner, each in runs:  # alternately, so that drift on the machine hits all alike
            began = time.perf_counter()
            runner.generate([each])
            times[kind].append(time.perf_counter() - began)
    medians = {kind: statistics.median(seconds) for kind, seconds in times.items()}
    source = [SourceText(RUSSIAN["plain"], "ru")]
    translator.cache.size = 1
    translator.translate(source)
    began = time.perf_counter()
    translator.translate(source)
    cached_s = time.perf_counter() - began
    return {
        "translator_load_s": round(load_s, 3),
        "request_s": {kind: round(median, 4) for kind, median in medians.items()},
        "added_per_request_s": {kind: round(medians[kind] - medians["en"], 4) for kind in RUSSIAN},
        "english_added_s": round(medians["en"] - medians["en_untranslated"], 4),
        "cached_translate_ms": round(cached_s * 1000, 3),
        "max_new_tokens": translator.max_new_tokens,
        "num_beams": translator.num_beams,
    }


def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--compare", action="store_true", help="also measure every other detector installed")
    args = parser.parse_args()
    # The tiny translator's gibberish is longer than CLIP reads, and diffusers would say so on every call.
    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.set_verbosity_error()
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__}")
    started = time.perf_counter()
    machine_start, own_start = cpu_seconds()
    phrases = measure_phrases()
    candidates = compare() if args.compare else []
    detection = measure_detection()
    print(
        f"detection: {detection['correct']}/{detection['prompts']} prompts in {detection['languages']} languages"
        f" ({detection['accuracy']:.1%}); median {detection['detect_median_ms']} ms per prompt"
    )
    for miss in detection["wrong"]:
        print(f"  {miss['prompt']!r}: expected {miss['expected']}, detected {miss['detected']}")
    translation = measure_translation(args.repeats)
    added = translation["added_per_request_s"]
    print(
        f"tiny preset, median of {args.repeats} requests: {translation['request_s']} s;"
        f" translation adds {added['plain']} s (plain Russian), {added['mixed']} s (with a Latin term);"
        f" a cached translation {translation['cached_translate_ms']} ms;"
        f" an English prompt with the translator loaded vs without: {translation['english_added_s']:+} s"
    )
    machine_end, own_end = cpu_seconds()
    wall_s = time.perf_counter() - started
    other_cpu_s = max((machine_end - machine_start) - (own_end - own_start), 0.0)
    print(f"other processes used {other_cpu_s:.1f} CPU-seconds during the {wall_s:.0f} s run")
    return {
        "benchmark": "multilingual",
        "phrases": phrases,
        **({"candidates": candidates} if candidates else {}),
        **{key: value for key, value in detection.items() if key != "wrong"},
        "misdetected": [f"{m['expected']}->{m['detected']}" for m in detection["wrong"]],
        "preset": "tiny",
        "repeats": args.repeats,
        **translation,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "other_cpu_s": round(other_cpu_s, 1),
        "wall_s": round(wall_s, 1),
    }


if __name__ == "__main__":
    print(json.dumps(main(), ensure_ascii=False))
