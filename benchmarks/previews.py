"""What live previews cost, for `benchmarks/engine.py`: the GPU's share they take at the default setting.

A preview is one MoVQ decode of latents scaled down to `[previews] size` (and a safety score), made once per
`interval_seconds` of a job's GPU time. So its share of the GPU is about (seconds per preview) / (interval),
whatever the job's length, for jobs longer than one interval (shorter ones get none). This measures the seconds
per preview inside real jobs: the same request with a preview at every step and with none, timed alternately;
the difference over the number of previews is one preview's cost. `--real-movq` also decodes latents of a
768x768 image with the real MoVQ architecture (random weights, on this CPU) at the preview's 256 px and at full
size: the options the issue asked to measure, and the basis of how the share scales to the real model.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch

from generation.config import PreviewSettings
from generation.engine import Engine
from generation.models import KandinskyModels
from generation.previews import Preview, decode_small
from generation.requests import GenerationRequest
from generation.safety import SafetyChecker

REAL_LATENT_SIDE = 96  # a 768x768 image under the real MoVQ's factor of 8


def seconds_per_preview(
    models: KandinskyModels, safety: SafetyChecker | None, request: GenerationRequest, repeats: int
) -> dict[str, Any]:
    default = PreviewSettings()
    plain = Engine(models, safety=safety)
    every_step = Engine(models, safety=safety, previews=PreviewSettings(interval_seconds=1e-6, size=default.size))
    made: list[int] = []

    def count(_fraction: float, previews: Sequence[Preview] = ()) -> None:
        if previews:
            made[-1] += 1

    def with_previews() -> None:
        made.append(0)
        every_step.generate([request], count)

    def without() -> None:
        plain.generate([request], count)

    with_previews()
    without()
    on: list[float] = []
    off: list[float] = []
    for _ in range(repeats):
        on.append(_seconds(with_previews))
        off.append(_seconds(without))
    job_s, previewed_s = statistics.median(off), statistics.median(on)
    per_preview = max(previewed_s - job_s, 0.0) / made[-1]
    return {
        "preview_share": round(per_preview / default.interval_seconds, 5),
        "preview_seconds": round(per_preview, 5),
        "preview_interval_s": default.interval_seconds,
        "preview_size": default.size,
        "preview_job_s": round(job_s, 4),
        "preview_job_with_every_step_s": round(previewed_s, 4),
        "previews_per_job": made[-1],
        "preview_safety_scored": safety is not None,
    }


def real_movq_options(repeats: int) -> dict[str, Any]:
    """The real MoVQ's decode of a 768x768 image's latents: at the preview's size, and whole (the final decode)."""
    from diffusers import VQModel
    from gpu_models import real_architecture

    movq = VQModel.from_config(real_architecture().movq).eval()
    latents = torch.randn(1, 4, REAL_LATENT_SIDE, REAL_LATENT_SIDE, generator=torch.Generator().manual_seed(0))
    figures: dict[str, Any] = {}
    with torch.no_grad():
        for size in (PreviewSettings().size, 768):
            decode_small(movq, latents, size)
            timings = [_seconds(lambda side=size: decode_small(movq, latents, side)) for _ in range(repeats)]
            figures[f"real_movq_decode_{size}px_s"] = round(statistics.median(timings), 3)
    return figures


def print_previews(figures: dict[str, Any]) -> None:
    print(f"\nlive previews ({figures['preview_size']} px, every {figures['preview_interval_s']} s by default):")
    print(f"  one job: {figures['preview_job_s']:.3f} s; with a preview at each of its")
    print(f"  {figures['previews_per_job']} steps: {figures['preview_job_with_every_step_s']:.3f} s")
    print(f"  one preview: {figures['preview_seconds'] * 1000:.2f} ms", end="")
    print(f" (safety score included: {figures['preview_safety_scored']})")
    print(f"  share of the GPU at the default interval: {figures['preview_share']:.3%}")
    if "real_movq_decode_768px_s" in figures:
        small, whole = figures[f"real_movq_decode_{figures['preview_size']}px_s"], figures["real_movq_decode_768px_s"]
        print(f"  real MoVQ on this CPU, 768x768 latents: {small:.2f} s at preview size, {whole:.2f} s whole")


def _seconds(call: Any) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started
