"""Live previews from the engine on the tiny preset: when they come, what they show, and that they change nothing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from generation.config import PreviewSettings
from generation.engine import Engine
from generation.errors import GenerationCancelled
from generation.images import RegionMask
from generation.models import KandinskyModels
from generation.previews import Preview, Previewer
from generation.requests import GenerationRequest

Build = Callable[..., GenerationRequest]
EVERY_STEP = PreviewSettings(interval_seconds=1e-6, size=32)


class Seen:
    def __init__(self) -> None:
        self.fractions: list[float] = []
        self.previews: list[tuple[float, list[Preview]]] = []

    def __call__(self, fraction: float, previews: Sequence[Preview] = ()) -> None:
        if previews:
            self.previews.append((fraction, list(previews)))
        else:
            self.fractions.append(fraction)


def schedulers(models: KandinskyModels) -> list[Any]:
    return [models.decoder.scheduler, models.img2img.scheduler, models.inpaint_pipeline().scheduler]


@pytest.mark.parametrize("operation", ["txt2img", "img2img", "inpaint", "mix"])
def test_a_preview_comes_at_each_due_step_but_the_last_and_changes_nothing(
    tiny_models: KandinskyModels, request_for: Build, photo: Image.Image, operation: str
) -> None:
    options: dict[str, Any] = {
        "txt2img": {},
        "img2img": {"image": photo},
        "inpaint": {"image": photo, "mask": RegionMask(25, 25, 50, 50)},
        "mix": {"mix": [photo, "a cat"]},
    }[operation]
    request = request_for(operation, "a cat" if operation != "mix" else "", steps=4, seed=7, **options)
    plain = Engine(tiny_models).generate([request])[0].images[0]
    seen = Seen()
    previewed = Engine(tiny_models, previews=EVERY_STEP).generate([request], seen)[0].images[0]
    assert np.array_equal(np.asarray(previewed), np.asarray(plain))
    decoder_steps = 4 if operation != "img2img" else 2  # img2img at strength 0.5 runs half the steps
    assert len(seen.previews) == decoder_steps - 1
    fractions = [fraction for fraction, _ in seen.previews]
    assert fractions == sorted(fractions) and all(0 < fraction < 1 for fraction in fractions)
    for _, previews in seen.previews:
        [preview] = previews
        assert preview.image.size == (32, 32) and preview.nsfw_score is None
    assert all("step" not in vars(scheduler) for scheduler in schedulers(tiny_models))


def test_each_request_of_a_batch_gets_its_own_preview_of_its_first_image(
    tiny_models: KandinskyModels, request_for: Build
) -> None:
    first = request_for("txt2img", "a red cat", steps=3, seed=1, count=2)
    second = request_for("txt2img", "a blue dog", steps=3, seed=9)
    engine = Engine(tiny_models, previews=EVERY_STEP)
    together, alone = Seen(), Seen()
    engine.generate([first, second], together)
    engine.generate([second], alone)
    batched = np.asarray(together.previews[0][1][1].image, dtype=np.int16)
    single = np.asarray(alone.previews[0][1][0].image, dtype=np.int16)
    assert len(together.previews[0][1]) == 2
    assert np.abs(batched - single).max() <= 2  # the same trajectory: batching changes only summation order


def test_no_preview_before_the_interval_and_none_when_off(tiny_models: KandinskyModels, request_for: Build) -> None:
    request = request_for("txt2img", steps=4, seed=3)
    for settings in (PreviewSettings(interval_seconds=3600), PreviewSettings(enabled=False, interval_seconds=1e-6)):
        seen = Seen()
        Engine(tiny_models, previews=settings).generate([request], seen)
        assert seen.previews == [] and seen.fractions[-1] == 1.0


def test_a_batch_cancelled_after_a_preview_leaves_the_scheduler_as_it_was(
    tiny_models: KandinskyModels, request_for: Build
) -> None:
    seen = Seen()
    with pytest.raises(GenerationCancelled):
        Engine(tiny_models, previews=EVERY_STEP).generate(
            [request_for("txt2img", steps=6, seed=5)], seen, lambda: bool(seen.previews)
        )
    assert seen.previews and "step" not in vars(tiny_models.decoder.scheduler)


def test_the_preview_shows_the_schedulers_prediction_of_the_final_image(tiny_models: KandinskyModels) -> None:
    """The latents at a step are mostly noise early on; the scheduler's `pred_original_sample` is what to show."""
    decoded: list[torch.Tensor] = []
    previewer = Previewer(EVERY_STEP, [0], lambda latents: decoded.append(latents) or [], None, lambda _: None)
    scheduler = tiny_models.decoder.scheduler
    scheduler.set_timesteps(4)
    noisy = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    with previewer.predicting(scheduler):
        output = scheduler.step(torch.zeros_like(noisy), scheduler.timesteps[0], noisy)
    assert previewer.predicted is not None and torch.equal(previewer.predicted, output.pred_original_sample)
    assert not torch.equal(previewer.predicted, output.prev_sample)
    assert "step" not in vars(scheduler)
