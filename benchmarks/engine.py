"""Engine benchmark: latency per operation, what batching buys, load time, and resident memory.

Why it exists: the engine batches compatible requests into one pipeline call and shares every weight
between txt2img, img2img, inpaint, mix, outpaint and remix. This puts numbers on both claims, so a change that slows an
operation, stops batching from paying off, or loads a model twice shows up as a changed figure.

It runs the `tiny` preset (Kandinsky 2.2's own component classes with random weights) at 64x64 with
25 prior and 50 decoder steps: the real code paths, not the real model, so the absolute times say
nothing about a 768x768 image from the full weights; compare figures only between runs on one machine.

Run it from the repository root:

    python benchmarks/engine.py [--repeats N] [--real-movq]

Live previews' cost comes from `benchmarks/previews.py` (see there), with the tiny safety classifier scoring each
preview as `easel run` does; `--real-movq` adds the real MoVQ's decode at preview size and whole (about a minute).

Latencies are medians of N calls after one warm-up call. Import time, model load time and resident
memory are measured in fresh processes (this script with the hidden `--memory-probe` flag, and a bare
interpreter for the imports), so the main run's own allocations do not pollute them. Human-readable
lines come first; the last line of stdout is one JSON object with every figure.
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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import diffusers
import psutil
import torch
from PIL import Image
from previews import print_previews, real_movq_options, seconds_per_preview

from generation.config import (
    DefaultsSettings,
    GenerationDefaults,
    Limits,
    ModelSettings,
    SafetySettings,
    resolve_defaults,
)
from generation.engine import Engine, total_steps
from generation.grids import Axis, cell_options, compose
from generation.images import RegionMask
from generation.models import KandinskyModels, load_models
from generation.requests import GenerationRequest, Operation, make_request
from generation.safety import load_safety_checker

SIZE = 64
STEPS = 50
PRIOR_STEPS = 25
STRENGTH = 0.5
OUTPAINT_ZOOM = 2.0
# The batch uses all four; single requests use the first.
PROMPTS = (
    "a lighthouse on a cliff at dawn",
    "a red cat asleep on a windowsill",
    "a bowl of lemons, oil painting",
    "a city street in the rain at night",
)
MB = 1_000_000
PROBE_MODES = {"txt2img": (Operation.TXT2IMG,), "all": tuple(Operation)}
IMPORT_PROBE = (
    "import time; started = time.perf_counter(); "
    "import torch, transformers, diffusers, generation.models; "
    "print(time.perf_counter() - started)"
)


def source_image() -> Image.Image:
    """A 64x64 picture with structure (a gradient and a square) for img2img, inpaint and mix."""
    image = Image.linear_gradient("L").resize((SIZE, SIZE)).convert("RGB")
    image.paste((200, 30, 30), (16, 16, 48, 48))
    return image


def build_request(
    operation: Operation, defaults: GenerationDefaults, seed: int = 1, prompt: str = PROMPTS[0]
) -> GenerationRequest:
    """One single-image request at the benchmark's size and step counts."""
    photo = source_image()
    options: dict[str, Any] = {}
    if operation is Operation.IMG2IMG:
        options = {"image": photo, "strength": STRENGTH}
    elif operation is Operation.INPAINT:
        options = {"image": photo, "mask": RegionMask(25, 25, 50, 50)}
    elif operation is Operation.MIX:
        options = {"mix": [prompt, photo], "weights": [0.5, 0.5]}
        prompt = ""
    elif operation is Operation.OUTPAINT:
        options = {"image": photo, "zoom": OUTPAINT_ZOOM}  # the canvas, 2x the source's side, sets the size
    elif operation in (Operation.REMIX, Operation.DEPTH):
        options = {"image": photo} | ({"strength": STRENGTH} if operation is Operation.REMIX else {})
    if operation is not Operation.OUTPAINT:
        options.update(width=SIZE, height=SIZE)
    return make_request(
        operation,
        prompt,
        defaults=defaults,
        limits=Limits(),
        steps=STEPS,
        prior_steps=PRIOR_STEPS,
        seed=seed,
        **options,
    )


def seconds(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def median_seconds(call: Callable[[], object], repeats: int) -> float:
    """The median of `repeats` timed calls after one untimed warm-up call."""
    call()
    return statistics.median(seconds(call) for _ in range(repeats))


def latency(engine: Engine, request: GenerationRequest, repeats: int) -> float:
    return median_seconds(lambda: engine.generate([request]), repeats)


def measure_batching(engine: Engine, requests: Sequence[GenerationRequest], repeats: int) -> tuple[float, float]:
    """Median seconds for the requests as one batch and one by one, timed alternately to share any drift."""

    def batched() -> None:
        engine.generate(requests)

    def one_by_one() -> None:
        for request in requests:
            engine.generate([request])

    batched()
    one_by_one()
    batch_times: list[float] = []
    sequential_times: list[float] = []
    for _ in range(repeats):
        batch_times.append(seconds(batched))
        sequential_times.append(seconds(one_by_one))
    return statistics.median(batch_times), statistics.median(sequential_times)


def pipeline_weights(models: KandinskyModels) -> dict[str, tuple[int, int]]:
    """Per pipeline: (bytes of all its parameters, bytes not already held by an earlier pipeline).

    Tensors are identified by their data pointer, so a weight shared between pipelines counts once in
    the second figure; the sum of the first is what loading every pipeline separately would take.
    Calling `models.inpaint_pipeline()` and `models.depth.get()` load those models if they are not loaded yet.
    """
    pipelines: dict[str, Any] = {
        "prior": models.prior,
        "remix": models.remix_prior,
        "decoder": models.decoder,
        "img2img": models.img2img,
        "inpaint": models.inpaint_pipeline(),
        "depth": models.depth.get().decoder,
        "depth estimator": models.depth.get().estimator,
    }
    seen: set[int] = set()
    figures: dict[str, tuple[int, int]] = {}
    for name, pipe in pipelines.items():
        modules = [pipe] if isinstance(pipe, torch.nn.Module) else list(pipe.components.values())
        tensors = {
            parameter.data_ptr(): parameter.numel() * parameter.element_size()
            for module in modules
            if isinstance(module, torch.nn.Module)
            for parameter in module.parameters()
        }
        fresh = sum(size for pointer, size in tensors.items() if pointer not in seen)
        seen.update(tensors)
        figures[name] = (sum(tensors.values()), fresh)
    return figures


def cpu_seconds() -> tuple[float, float]:
    """Busy CPU seconds so far: the whole machine's, and this process's with its finished children.

    The difference over a run is what other processes took; on a small machine that is the first
    thing to check when a figure looks off.
    """
    machine = psutil.cpu_times()
    busy = machine.user + machine.system + sum(getattr(machine, name, 0.0) for name in ("nice", "irq", "softirq"))
    own = psutil.Process().cpu_times()
    return busy, own.user + own.system + own.children_user + own.children_system


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / MB


def memory_probe(mode: str) -> dict[str, Any]:
    """In a fresh process: load the models, run the mode's operations once each, report time and RSS."""
    started = time.perf_counter()
    models = load_models(ModelSettings(preset="tiny"))
    load_s = time.perf_counter() - started
    engine = Engine(models)
    defaults = resolve_defaults("tiny", DefaultsSettings())
    for operation in PROBE_MODES[mode]:
        engine.generate([build_request(operation, defaults)])
    return {"load_s": load_s, "rss_mb": rss_mb(), "inpaint_loaded": models.inpaint_loaded}


def last_stdout_line(command: Sequence[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed with {done.returncode}:\n{done.stderr}")
    return done.stdout.splitlines()[-1]


def run_probe(mode: str) -> dict[str, Any]:
    return json.loads(last_stdout_line([sys.executable, str(Path(__file__).resolve()), "--memory-probe", mode]))


def import_seconds() -> float:
    """Seconds a fresh interpreter takes to import torch, transformers, diffusers and the Kandinsky pipelines."""
    return float(last_stdout_line([sys.executable, "-c", IMPORT_PROBE]))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def print_contention(other_cpu_s: float, wall_s: float) -> None:
    share = other_cpu_s / wall_s / (os.cpu_count() or 1)
    print(f"\nother processes used {other_cpu_s:.1f} CPU-seconds during the {wall_s:.0f} s run", end="")
    print(f" ({share:.0%} of the machine; figures taken beside a busy process are not comparable)")


def print_machine(load_average: float) -> None:
    print(f"machine: {platform.platform()}, {cpu_model()}, {os.cpu_count()} CPUs")
    print(f"python {platform.python_version()}, torch {torch.__version__}, diffusers {diffusers.__version__}")
    print(f"torch threads: {torch.get_num_threads()}, load average (1 min) at start: {load_average:.2f}")
    print(f"preset tiny, {SIZE}x{SIZE}, {PRIOR_STEPS} prior / {STEPS} decoder steps")


def print_latency(
    requests: dict[Operation, GenerationRequest], latency_s: dict[Operation, float], repeats: int
) -> None:
    print(f"\nlatency, one image, median of {repeats} after a warm-up:")
    for operation, request in requests.items():
        note = ""
        if operation is Operation.IMG2IMG:
            note = f" (strength {STRENGTH}: the decoder runs {request.denoising_steps} of {STEPS} steps)"
        elif operation is Operation.MIX:
            note = f" (1 text + 1 image: the prior runs {request.prior_runs} times, once per text and for the negative)"
        elif operation is Operation.OUTPAINT:
            note = f" (zoom {OUTPAINT_ZOOM:g}: the inpaint decoder paints a {request.width}x{request.height} canvas)"
        elif operation is Operation.REMIX:
            note = f" (strength {STRENGTH}: the prior runs {request.prior_denoising_steps} of {PRIOR_STEPS} steps)"
        elif operation is Operation.DEPTH:
            note = " (the depth map by the tiny DPT, then the ControlNet decoder from noise)"
        print(f"  {operation:<8} {latency_s[operation]:7.3f} s  {total_steps([request])} denoiser calls{note}")


def measure_grid(engine: Engine, defaults: GenerationDefaults, repeats: int) -> dict[str, Any]:
    """A 2x3 grid (steps x guidance) as the service runs it: each cell a txt2img job, one after another, then the
    labelled sheet drawn from them; the sheet also from six 768x768 cells, the size a real grid's cells have, since
    drawing it is the grid's only work beyond its cells'."""
    axes = (Axis("steps", (STEPS // 2, STEPS)), Axis("guidance", (2.0, 4.0, 6.0)))
    cells = [
        make_request(
            Operation.TXT2IMG, PROMPTS[0], defaults=defaults, limits=Limits(), width=SIZE, height=SIZE,
            prior_steps=PRIOR_STEPS, seed=1, **values,
        )
        for values in cell_options(axes)
    ]  # fmt: skip
    cells_s = median_seconds(lambda: [engine.generate([cell]) for cell in cells], repeats)
    images = [engine.generate([cell])[0].images[0] for cell in cells]
    sheet_s = median_seconds(lambda: compose(images, axes), repeats)
    large = [Image.effect_noise((768, 768), 64).convert("RGB") for _ in cells]
    sheet_768_s = median_seconds(lambda: compose(large, axes), repeats)
    print(f"\ngrid of {len(cells)} cells (--steps {STEPS // 2},{STEPS} --guidance 2,4,6), median of {repeats}:")
    print(f"  its cells, one by one: {cells_s:7.3f} s")
    print(f"  its sheet:             {sheet_s:7.3f} s  ({SIZE}x{SIZE} cells)")
    print(f"  its sheet:             {sheet_768_s:7.3f} s  (768x768 cells, shrunk to fit 2048 px)")
    return {"grid_cells": len(cells), "grid_cells_s": round(cells_s, 4), "grid_sheet_s": round(sheet_s, 4),
            "grid_sheet_768_s": round(sheet_768_s, 4)}  # fmt: skip


def print_batching(batch_s: float, sequential_s: float, count: int, repeats: int) -> None:
    print(f"\nbatching {count} txt2img requests (different prompts and seeds), median of {repeats}:")
    print(f"  one call:     {batch_s:7.3f} s  {count / batch_s:6.3f} images/s")
    print(f"  one by one:   {sequential_s:7.3f} s  {count / sequential_s:6.3f} images/s")
    print(f"  speed-up:     {sequential_s / batch_s:.2f}x")


def print_memory(import_s: float, probes: dict[str, dict[str, Any]], weights: dict[str, tuple[int, int]]) -> None:
    txt2img, everything = probes["txt2img"], probes["all"]
    print("\nfresh processes:")
    print(f"  import torch+transformers+diffusers+pipelines: {import_s:.2f} s")
    print(f"  load_models(tiny):                             {txt2img['load_s']:.3f} s")
    print(f"  RSS after txt2img only:                        {txt2img['rss_mb']:.1f} MB", end="")
    print(f" (inpaint decoder loaded: {txt2img['inpaint_loaded']})")
    print(f"  RSS after all {len(Operation)} operations:                  {everything['rss_mb']:.1f} MB", end="")
    print(f" (inpaint decoder loaded: {everything['inpaint_loaded']})")
    print("\nweights (parameter bytes), per pipeline: all / not already held by an earlier pipeline")
    for name, (total, fresh) in weights.items():
        print(f"  {name:<8} {total / MB:7.3f} MB / {fresh / MB:7.3f} MB")
    naive = sum(total for total, _ in weights.values())
    unique = sum(fresh for _, fresh in weights.values())
    print(f"  held once: {unique / MB:.3f} MB; if nothing were shared: {naive / MB:.3f} MB")


def benchmark(repeats: int, real_movq: bool = False) -> dict[str, Any]:
    started = time.perf_counter()
    machine_cpu_start, own_cpu_start = cpu_seconds()
    load_average = psutil.getloadavg()[0]
    print_machine(load_average)
    import_s = import_seconds()
    probes = {mode: run_probe(mode) for mode in PROBE_MODES}

    models = load_models(ModelSettings(preset="tiny"))
    engine = Engine(models)
    defaults = resolve_defaults("tiny", DefaultsSettings())
    inpaint_loaded_before = models.inpaint_loaded
    requests = {operation: build_request(operation, defaults) for operation in Operation}
    latency_s = {operation: latency(engine, request, repeats) for operation, request in requests.items()}
    inpaint_loaded_after = models.inpaint_loaded
    print_latency(requests, latency_s, repeats)
    print(f"  inpaint decoder loaded: {inpaint_loaded_before} before the first inpaint, {inpaint_loaded_after} after")

    batch = [build_request(Operation.TXT2IMG, defaults, seed, prompt) for seed, prompt in enumerate(PROMPTS)]
    batch_s, sequential_s = measure_batching(engine, batch, repeats)
    print_batching(batch_s, sequential_s, len(batch), repeats)
    grid = measure_grid(engine, defaults, repeats)

    safety = load_safety_checker(SafetySettings(preset="tiny"), ModelSettings(preset="tiny"))
    previews = seconds_per_preview(models, safety, requests[Operation.TXT2IMG], repeats)
    if real_movq:
        previews.update(real_movq_options(repeats))
    print_previews(previews)

    weights = pipeline_weights(models)
    print_memory(import_s, probes, weights)
    machine_cpu_end, own_cpu_end = cpu_seconds()
    other_cpu_s = max((machine_cpu_end - machine_cpu_start) - (own_cpu_end - own_cpu_start), 0.0)
    wall_s = time.perf_counter() - started
    print_contention(other_cpu_s, wall_s)
    return {
        "benchmark": "engine",
        "preset": "tiny",
        "size": f"{SIZE}x{SIZE}",
        "prior_steps": PRIOR_STEPS,
        "steps": STEPS,
        "img2img_strength": STRENGTH,
        "img2img_decoder_steps": requests[Operation.IMG2IMG].denoising_steps,
        "repeats": repeats,
        "latency_s": {str(operation): round(value, 4) for operation, value in latency_s.items()},
        "batch_size": len(batch),
        "batch4_images_per_s": round(len(batch) / batch_s, 3),
        "sequential_images_per_s": round(len(batch) / sequential_s, 3),
        "batch_speedup": round(sequential_s / batch_s, 3),
        **grid,
        "load_s": round(probes["txt2img"]["load_s"], 4),
        "import_s": round(import_s, 3),
        "rss_mb_txt2img": round(probes["txt2img"]["rss_mb"], 1),
        "rss_mb_all_ops": round(probes["all"]["rss_mb"], 1),
        "inpaint_loaded_before": inpaint_loaded_before,
        "inpaint_loaded_after": inpaint_loaded_after,
        "weights_mb_unique": round(sum(fresh for _, fresh in weights.values()) / MB, 3),
        "weights_mb_if_unshared": round(sum(total for total, _ in weights.values()) / MB, 3),
        "weights_mb_added_by": {name: round(fresh / MB, 3) for name, (_, fresh) in weights.items()},
        **previews,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "load_average_1m": round(load_average, 2),
        "other_cpu_s": round(other_cpu_s, 1),
        "wall_s": round(wall_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per figure, after one warm-up (default 5)")
    parser.add_argument("--real-movq", action="store_true", help="also time the real MoVQ at preview size and whole")
    parser.add_argument("--memory-probe", choices=PROBE_MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.memory_probe:
        print(json.dumps(memory_probe(args.memory_probe)))
        return
    print(json.dumps(benchmark(args.repeats, args.real_movq)))


if __name__ == "__main__":
    main()
