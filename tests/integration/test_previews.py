"""Live previews from the engine on the tiny preset: when they come, what they show, and that they change nothing."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import torch
from PIL import Image

from bots.console.adapter import ConsoleAdapter
from bots.core.facade import Core
from bots.core.types import EventKind, JobEvent
from generation import engine as engine_module
from generation.config import PreviewSettings
from generation.engine import Engine
from generation.errors import GenerationCancelled
from generation.images import RegionMask
from generation.models import KandinskyModels
from generation.previews import Judged, Preview, Previewer
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


@pytest.mark.parametrize("operation", ["txt2img", "inpaint"])
def test_each_preview_decodes_the_schedulers_prediction_of_that_step(
    tiny_models: KandinskyModels,
    request_for: Build,
    photo: Image.Image,
    operation: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shown: list[bool] = []
    show = Previewer.show

    def spy(self: Previewer, latents: torch.Tensor) -> None:
        blended = operation == "inpaint"  # with the source where the mask keeps it (the next test)
        shown.append(self.predicted is not None and (blended or latents is self.predicted))
        show(self, latents)

    monkeypatch.setattr(Previewer, "show", spy)
    options: dict[str, Any] = {"image": photo, "mask": RegionMask(25, 25, 50, 50)} if operation == "inpaint" else {}
    Engine(tiny_models, previews=EVERY_STEP).generate([request_for(operation, steps=4, seed=2, **options)], Seen())
    assert shown == [True, True, True]


def test_an_inpaint_preview_keeps_the_source_where_the_mask_keeps_it(
    tiny_models: KandinskyModels, request_for: Build, photo: Image.Image, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[torch.Tensor] = []
    decode = engine_module.decode_small

    def spy(movq: Any, latents: torch.Tensor, size: int) -> list[Image.Image]:
        decoded.append(latents.clone())
        return decode(movq, latents, size)

    monkeypatch.setattr(engine_module, "decode_small", spy)
    request = request_for("inpaint", image=photo, mask=RegionMask(0, 0, 50, 100), steps=5, seed=4)
    Engine(tiny_models, previews=EVERY_STEP).generate([request], Seen())
    steady = torch.stack(decoded).std(dim=0).amax(dim=1)[0]  # per latent pixel: how much the previews differ
    kept, repainted = steady[:, steady.shape[1] // 2 + 1 :], steady[:, : steady.shape[1] // 2 - 1]
    assert len(decoded) == 4 and float(kept.max()) == 0.0 and float(repainted.min()) > 0.0


def test_a_preview_that_cannot_be_made_turns_previews_off_and_the_batch_goes_on(
    tiny_models: KandinskyModels, request_for: Build, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    request = request_for("txt2img", steps=4, seed=8)
    expected = Engine(tiny_models).generate([request])[0].images[0]

    def refuse(*_: object) -> list[Image.Image]:
        raise RuntimeError("the device refuses the small decode")

    monkeypatch.setattr("generation.engine.decode_small", refuse)
    seen = Seen()
    result = Engine(tiny_models, previews=EVERY_STEP).generate([request], seen)[0].images[0]
    assert np.array_equal(np.asarray(result), np.asarray(expected)) and seen.previews == []
    assert caplog.text.count("a live preview could not be made") == 1


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
    judged = Judged([None], [None])
    previewer = Previewer(EVERY_STEP, [0], judged, lambda latents: decoded.append(latents) or [], None, lambda _: None)
    scheduler = tiny_models.decoder.scheduler
    scheduler.set_timesteps(4)
    noisy = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    with previewer.predicting(scheduler):
        output = scheduler.step(torch.zeros_like(noisy), scheduler.timesteps[0], noisy)
    assert previewer.predicted is not None and torch.equal(previewer.predicted, output.pred_original_sample)
    assert not torch.equal(previewer.predicted, output.prev_sample)
    assert "step" not in vars(scheduler)


async def test_the_console_removes_a_preview_written_while_its_job_ended(tmp_path: Path) -> None:
    """The announcer delivers a progress event and the ending in tasks of their own: they may overlap."""
    out = io.StringIO()
    console = ConsoleAdapter(cast(Core, None), "en", io.StringIO(""), out, previews_dir=tmp_path)
    jpeg = io.BytesIO()
    Image.new("RGB", (8, 8)).save(jpeg, "JPEG")
    where = {"platform": "console", "channel_id": "console", "user_id": "me", "language": "en"}
    progress = JobEvent(EventKind.PROGRESS, "job1", progress=0.5, preview=jpeg.getvalue(), **where)
    await asyncio.gather(console._on_event(progress), console._on_event(JobEvent(EventKind.CANCELLED, "job1", **where)))
    assert list(tmp_path.iterdir()) == [] and "preview" not in out.getvalue()
    await console._on_event(replace(progress, job_id="job2"))
    assert (tmp_path / "job2.jpg").read_bytes() == jpeg.getvalue() and "preview" in out.getvalue()
