"""Depth-guided generation through the engine on the tiny preset: the same diffusers ControlNet pipelines and a
transformers depth estimator of the default's family, loaded lazily beside the other jobs."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest
import torch
from PIL import Image

from generation.config import ModelSettings
from generation.costs import job_cost
from generation.engine import Engine, total_steps
from generation.errors import ModelLoadError
from generation.models import KandinskyModels, load_models
from generation.requests import GenerationRequest

Build = Callable[..., GenerationRequest]


def test_depth_draws_at_the_requested_size_from_noise_or_from_the_image(
    engine: Engine, request_for: Build, photo: Image.Image
) -> None:
    from_noise = request_for("depth", "a marble statue", image=photo, seed=3, width=128, height=64)
    from_image = request_for("depth", "a marble statue", image=photo, seed=3, strength=0.5, count=2)
    assert (from_noise.strength, from_noise.denoising_steps) == (None, from_noise.steps)
    assert from_image.denoising_steps == int(from_image.steps * 0.5) and job_cost(from_image) < 2 * job_cost(from_noise)
    (wide,) = engine.generate([from_noise])
    (pair,) = engine.generate([from_image])
    assert wide.images[0].size == (128, 64) and [image.size for image in pair.images] == [(64, 64)] * 2
    assert from_noise.batch_key is None


def test_the_depth_map_guides_the_result(engine: Engine, request_for: Build) -> None:
    """The same seed and prompt over two differently shaped inputs: the hint differs, and so does the image."""
    left = Image.new("RGB", (64, 64), "white")
    left.paste((0, 0, 0), (0, 0, 32, 64))
    top = Image.new("RGB", (64, 64), "white")
    top.paste((0, 0, 0), (0, 0, 64, 32))
    depth = engine.models.depth.get()
    hints = depth.hints([left, top], 64, 64)
    assert hints.shape == (2, 3, 64, 64) and 0 <= float(hints.min()) and float(hints.max()) <= 1
    assert not torch.equal(hints[0], hints[1])
    first, second = (
        np.asarray(engine.generate([request_for("depth", "a statue", image=image, seed=1)])[0].images[0])
        for image in (left, top)
    )
    assert not np.array_equal(first, second)


def test_progress_counts_the_controlnet_steps(engine: Engine, request_for: Build, photo: Image.Image) -> None:
    request = request_for("depth", "a statue", image=photo, seed=2, prior_steps=3, steps=5)
    fractions: list[float] = []
    engine.generate([request], on_progress=lambda fraction, previews=(): fractions.append(fraction))
    assert total_steps([request]) == 8 and len(fractions) == 8 and fractions[-1] == 1.0


def test_the_depth_models_load_on_first_use_beside_other_jobs(request_for: Build, photo: Image.Image) -> None:
    models = load_models(ModelSettings(preset="tiny"))
    engine = Engine(models)
    request = request_for("depth", "a statue", image=photo)
    assert not models.depth.loaded and not engine.ready(request)
    assert engine.ready(request_for("txt2img", "a cat"))
    engine.prepare(request)
    for _ in range(200):
        if engine.ready(request):
            break
        threading.Event().wait(0.05)
    assert models.depth.loaded and not models.inpaint_loaded
    assert load_models(ModelSettings(preset="tiny", preload_depth=True)).depth.loaded


def test_a_load_ahead_that_fails_lets_the_job_run_and_fail_with_the_reason(
    tiny_models: KandinskyModels, request_for: Build, photo: Image.Image
) -> None:
    """Never a job held for ever: once the load ahead failed, the job may run, tries once more, and fails."""
    broken = KandinskyModels(
        tiny_models.prior, tiny_models.decoder, lambda movq: tiny_models.inpaint_pipeline(), tiny_models.placement, None
    )
    engine = Engine(broken)
    request = request_for("depth", "a statue", image=photo)
    engine.prepare(request)
    for _ in range(200):
        if engine.ready(request):
            break
        threading.Event().wait(0.05)
    assert engine.ready(request) and not broken.depth.loaded
    with pytest.raises(ModelLoadError, match="depth-guided generation is not set up"):
        engine.generate([request])
