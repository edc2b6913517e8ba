"""The engine end to end on the tiny preset: the same diffusers pipeline classes as production."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest
import torch
from diffusers import KandinskyV22InpaintPipeline, VQModel
from PIL import Image
from torch._dynamo.eval_frame import OptimizedModule

from generation.config import ModelSettings
from generation.engine import Engine, total_steps
from generation.errors import GenerationCancelled
from generation.images import MaskImage, RegionMask
from generation.models import KandinskyModels, _tiny_models, load_models
from generation.requests import GenerationRequest

Build = Callable[..., GenerationRequest]

# Batched rows differ from single runs only by floating-point summation order.
BATCH_TOLERANCE = 2


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(np.int16)


def all_operations(request_for: Build, photo: Image.Image) -> dict[str, GenerationRequest]:
    return {
        "txt2img": request_for("txt2img", seed=1),
        "img2img": request_for("img2img", "a blue dog", image=photo, seed=2),
        "inpaint": request_for("inpaint", "a blue dog", image=photo, mask=RegionMask(25, 25, 50, 50), seed=3),
        "mix": request_for("mix", "", mix=[photo, "a cat"], weights=[0.7, 0.3], seed=4),
    }


@pytest.mark.parametrize("operation", ["txt2img", "img2img", "inpaint", "mix"])
def test_each_operation_returns_images_of_the_requested_size(
    engine: Engine, request_for: Build, photo: Image.Image, operation: str
) -> None:
    request = all_operations(request_for, photo)[operation]
    (result,) = engine.generate([request])
    assert len(result.images) == 1
    assert result.images[0].size == (64, 64) and result.images[0].mode == "RGB"
    assert result.seeds == (request.seed,)


@pytest.mark.parametrize("operation", ["txt2img", "img2img", "inpaint", "mix"])
def test_width_and_height_are_not_swapped(
    engine: Engine, request_for: Build, photo: Image.Image, operation: str
) -> None:
    """diffusers 0.42.1's img2img gives its image processor (width, height) where it takes (height, width)."""
    prompt, inputs = {
        "txt2img": ("a cat", {}),
        "img2img": ("a cat", {"image": photo}),
        "inpaint": ("a cat", {"image": photo, "mask": RegionMask(25, 25, 50, 50)}),
        "mix": ("", {"mix": [photo, "a cat"]}),
    }[operation]
    request = request_for(operation, prompt, width=128, height=64, steps=2, prior_steps=2, **inputs)
    (result,) = engine.generate([request])
    assert result.images[0].size == (128, 64)


@pytest.mark.parametrize("operation", ["img2img", "inpaint"])
@pytest.mark.parametrize(
    ("source", "size", "expected"),
    [
        ((1200, 12), {}, (640, 64)),
        ((12, 1200), {}, (64, 640)),
        ((12, 1200), {"width": 128, "height": 64}, (128, 64)),
        ((1200, 12), {"width": 64, "height": 128}, (64, 128)),
    ],
)
def test_an_input_far_from_the_output_shape_is_fitted_the_right_way_round(
    engine: Engine,
    request_for: Build,
    operation: str,
    source: tuple[int, int],
    size: dict[str, int],
    expected: tuple[int, int],
) -> None:
    """Without a size the output takes the input's orientation; with one, the input is cropped to it."""
    image = Image.linear_gradient("L").resize(source).convert("RGB")
    options = {"mask": RegionMask(0, 0, 50, 50)} if operation == "inpaint" else {}
    request = request_for(operation, "a cat", image=image, steps=2, prior_steps=2, **size, **options)
    assert request.image is not None and request.image.size == expected
    assert engine.generate([request])[0].images[0].size == expected


@pytest.mark.parametrize("operation", ["txt2img", "img2img", "inpaint", "mix"])
def test_the_same_seed_gives_identical_pixels(
    engine: Engine, request_for: Build, photo: Image.Image, operation: str
) -> None:
    request = all_operations(request_for, photo)[operation]
    first = engine.generate([request])[0].images[0]
    second = engine.generate([request])[0].images[0]
    assert np.array_equal(pixels(first), pixels(second))


def test_different_seeds_give_different_pixels(engine: Engine, request_for: Build) -> None:
    first = engine.generate([request_for("txt2img", seed=1)])[0].images[0]
    second = engine.generate([request_for("txt2img", seed=2)])[0].images[0]
    assert not np.array_equal(pixels(first), pixels(second))


def test_pixels_outside_the_inpaint_mask_are_kept(engine: Engine, request_for: Build, photo: Image.Image) -> None:
    request = request_for("inpaint", "a blue dog", image=photo, mask=RegionMask(25, 25, 50, 50), seed=3)
    output = pixels(engine.generate([request])[0].images[0])
    source = pixels(photo)
    outside = np.asarray(request.mask) == 0
    assert np.abs(output - source)[outside].max() == 0
    assert np.abs(output - source)[~outside].mean() > 10


def test_grey_mask_values_blend_between_input_and_generation(
    engine: Engine, request_for: Build, photo: Image.Image
) -> None:
    mask = Image.new("L", (64, 64), 255)
    full = engine.generate([request_for("inpaint", image=photo, mask=MaskImage(mask), seed=5)])[0].images[0]
    mask.paste(128, (0, 0, 32, 64))
    half = engine.generate([request_for("inpaint", image=photo, mask=MaskImage(mask), seed=5)])[0].images[0]
    expected = pixels(photo)[:, :32] * (127 / 255) + pixels(full)[:, :32] * (128 / 255)
    assert np.abs(pixels(half)[:, :32] - expected).max() <= 1
    assert np.array_equal(pixels(half)[:, 32:], pixels(full)[:, 32:])


def test_img2img_keeps_more_of_the_input_at_lower_strength(
    engine: Engine, request_for: Build, photo: Image.Image
) -> None:
    def change(strength: float) -> float:
        request = request_for("img2img", image=photo, steps=20, strength=strength, seed=9)
        return float(np.abs(pixels(engine.generate([request])[0].images[0]) - pixels(photo)).mean())

    assert change(0.1) < change(1.0)


def test_a_batch_of_four_returns_four_images_with_their_own_seeds(engine: Engine, request_for: Build) -> None:
    batch = [request_for("txt2img", f"a cat number {index}", seed=100 + index) for index in range(4)]
    results = engine.generate(batch)
    assert [result.request for result in results] == batch
    assert [result.seeds for result in results] == [(100,), (101,), (102,), (103,)]
    for request, result in zip(batch, results, strict=True):
        alone = engine.generate([request])[0].images[0]
        assert np.abs(pixels(result.images[0]) - pixels(alone)).max() <= BATCH_TOLERANCE


def test_img2img_requests_batch_with_their_own_images(engine: Engine, request_for: Build, photo: Image.Image) -> None:
    other = Image.new("RGB", (64, 64), (20, 200, 20))
    batch = [request_for("img2img", image=photo, seed=1), request_for("img2img", image=other, seed=1)]
    first, second = engine.generate(batch)
    assert not np.array_equal(pixels(first.images[0]), pixels(second.images[0]))
    alone = engine.generate([batch[1]])[0].images[0]
    assert np.abs(pixels(second.images[0]) - pixels(alone)).max() <= BATCH_TOLERANCE


def test_image_n_of_a_request_is_reproducible_on_its_own(engine: Engine, request_for: Build) -> None:
    (result,) = engine.generate([request_for("txt2img", negative_prompt="blurry", count=3, seed=40)])
    assert result.seeds == (40, 41, 42) and len(result.images) == 3
    alone = engine.generate([request_for("txt2img", negative_prompt="blurry", seed=42)])[0].images[0]
    assert np.abs(pixels(result.images[2]) - pixels(alone)).max() <= BATCH_TOLERANCE


@pytest.mark.parametrize("operation", ["inpaint", "mix"])
def test_several_images_of_one_request(engine: Engine, request_for: Build, photo: Image.Image, operation: str) -> None:
    base = all_operations(request_for, photo)[operation]
    options = {"image": photo, "mask": RegionMask(0, 0, 50, 50)} if operation == "inpaint" else {"mix": ["a", photo]}
    request = request_for(operation, base.prompt, count=2, seed=7, **options)
    (result,) = engine.generate([request])
    assert len(result.images) == 2 and result.seeds == (7, 8)
    assert not np.array_equal(pixels(result.images[0]), pixels(result.images[1]))


def test_the_negative_prompt_changes_the_result(engine: Engine, request_for: Build) -> None:
    plain = engine.generate([request_for("txt2img", seed=5)])[0].images[0]
    negative = engine.generate([request_for("txt2img", negative_prompt="dark", seed=5)])[0].images[0]
    assert not np.array_equal(pixels(plain), pixels(negative))


def test_mix_weights_change_the_result(engine: Engine, request_for: Build, photo: Image.Image) -> None:
    def mixed(weights: list[float]) -> np.ndarray:
        request = request_for("mix", "", mix=[photo, "a cat"], weights=weights, seed=4)
        return pixels(engine.generate([request])[0].images[0])

    assert not np.array_equal(mixed([0.9, 0.1]), mixed([0.1, 0.9]))


def test_incompatible_requests_are_not_batched(engine: Engine, request_for: Build, photo: Image.Image) -> None:
    with pytest.raises(ValueError, match="cannot share"):
        engine.generate([request_for("txt2img"), request_for("txt2img", steps=5)])
    inpaint = request_for("inpaint", image=photo, mask=RegionMask(0, 0, 50, 50))
    with pytest.raises(ValueError, match="cannot share"):
        engine.generate([inpaint, inpaint])
    with pytest.raises(ValueError, match="empty"):
        engine.generate([])


@pytest.mark.parametrize("operation", ["txt2img", "img2img", "inpaint", "mix"])
def test_progress_covers_prior_and_decoder_and_ends_at_one(
    engine: Engine, request_for: Build, photo: Image.Image, operation: str
) -> None:
    request = all_operations(request_for, photo)[operation]
    seen: list[float] = []
    engine.generate([request], on_progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert len(seen) == total_steps([request])  # one report per denoising step after the first, then done
    assert all(0 < value <= 1 for value in seen)


@pytest.mark.parametrize("operation", ["txt2img", "mix"])
@pytest.mark.parametrize("stop_after", [1, 3, 5])
def test_cancellation_stops_within_one_step_and_the_next_request_works(
    engine: Engine, request_for: Build, photo: Image.Image, operation: str, stop_after: int
) -> None:
    if operation == "mix":
        request = request_for("mix", "", mix=[photo, "a cat"], steps=8, prior_steps=4, seed=4)
    else:
        request = request_for("txt2img", steps=8, prior_steps=4, seed=1)
    expected = engine.generate([request])[0].images[0]
    steps_run = 0

    def count_step(_: float) -> None:
        nonlocal steps_run
        steps_run += 1

    with pytest.raises(GenerationCancelled):
        engine.generate([request], on_progress=count_step, should_cancel=lambda: steps_run >= stop_after)
    assert steps_run == stop_after
    after = engine.generate([request])[0].images[0]
    assert np.array_equal(pixels(after), pixels(expected))


def test_cancellation_during_the_decoder_leaves_the_pipeline_usable(engine: Engine, request_for: Build) -> None:
    request = request_for("txt2img", steps=10, prior_steps=2, seed=11)
    expected = engine.generate([request])[0].images[0]
    fractions: list[float] = []
    with pytest.raises(GenerationCancelled):
        engine.generate([request], on_progress=fractions.append, should_cancel=lambda: len(fractions) >= 6)
    assert len(fractions) == 6  # stopped inside the decoder stage, after 2 prior and 4 decoder steps
    assert np.array_equal(pixels(engine.generate([request])[0].images[0]), pixels(expected))


def test_weights_are_shared_between_operations() -> None:
    models = load_models(ModelSettings(preset="tiny"))
    assert models.img2img.unet is models.decoder.unet
    assert models.img2img.movq is models.decoder.movq
    assert not models.inpaint_loaded
    assert models.inpaint_pipeline().movq is models.decoder.movq
    assert models.inpaint_pipeline().unet is not models.decoder.unet
    assert models.inpaint_pipeline().unet.config.in_channels == 9
    assert models.inpaint_loaded


def test_the_inpaint_decoder_loads_on_first_use(request_for: Build, photo: Image.Image) -> None:
    models = load_models(ModelSettings(preset="tiny"))
    engine = Engine(models)
    operations = all_operations(request_for, photo)
    for name in ("txt2img", "img2img", "mix"):
        engine.generate([operations[name]])
    assert not models.inpaint_loaded
    engine.generate([operations["inpaint"]])
    assert models.inpaint_loaded


def test_preload_inpaint_loads_it_at_start() -> None:
    assert load_models(ModelSettings(preset="tiny", preload_inpaint=True)).inpaint_loaded


def test_the_tiny_preset_is_deterministic_and_seeded(request_for: Build) -> None:
    request = request_for("txt2img", seed=1)
    fresh = Engine(load_models(ModelSettings(preset="tiny"))).generate([request])[0].images[0]
    same = Engine(load_models(ModelSettings(preset="tiny"))).generate([request])[0].images[0]
    other = Engine(load_models(ModelSettings(preset="tiny", tiny_seed=5))).generate([request])[0].images[0]
    assert np.array_equal(pixels(fresh), pixels(same))
    assert not np.array_equal(pixels(fresh), pixels(other))


def test_building_the_tiny_preset_leaves_the_global_random_state_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    load_models(ModelSettings(preset="tiny"))
    assert torch.equal(torch.rand(3), expected)


def test_attention_slicing_can_be_enabled(request_for: Build) -> None:
    models: KandinskyModels = load_models(ModelSettings(preset="tiny", attention_slicing=True))
    (result,) = Engine(models).generate([request_for("txt2img", seed=1)])
    assert result.images[0].size == (64, 64)


def test_channels_last_puts_every_unet_in_that_layout(request_for: Build, engine: Engine) -> None:
    models: KandinskyModels = load_models(ModelSettings(preset="tiny", channels_last=True))
    unets = (models.decoder.unet, models.img2img.unet, models.inpaint_pipeline().unet)
    assert all(unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last) for unet in unets)
    assert not engine.models.decoder.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    request = request_for("txt2img", seed=1)
    (tuned,) = Engine(models).generate([request])
    (plain,) = engine.generate([request])
    assert np.abs(pixels(tuned.images[0]) - pixels(plain.images[0])).max() <= BATCH_TOLERANCE


def test_compile_wraps_each_unet_once_for_the_pipelines_that_share_it() -> None:
    models: KandinskyModels = load_models(ModelSettings(preset="tiny", compile=True))
    assert isinstance(models.decoder.unet, OptimizedModule)
    assert models.img2img.unet is models.decoder.unet
    assert isinstance(models.inpaint_pipeline().unet, OptimizedModule)
    assert models.placement.compile_backend == "inductor"
    assert not isinstance(load_models(ModelSettings(preset="tiny")).decoder.unet, OptimizedModule)


def test_a_compiled_unet_reports_progress_and_stops_on_cancel(request_for: Build, engine: Engine) -> None:
    """The step hooks sit on the compiler's wrapper. The eager backend traces like inductor, without its codegen."""
    placement = replace(engine.models.placement, compile_backend="eager")
    compiled = Engine(_tiny_models(0, placement))
    request = request_for("txt2img", seed=1)
    fractions: list[float] = []
    (result,) = compiled.generate([request], on_progress=fractions.append)
    assert fractions == pytest.approx([step / total_steps([request]) for step in range(1, total_steps([request]) + 1)])
    (plain,) = engine.generate([request])
    assert np.abs(pixels(result.images[0]) - pixels(plain.images[0])).max() <= BATCH_TOLERANCE
    seen: list[float] = []
    with pytest.raises(GenerationCancelled):  # at the decoder's third step: the prior makes the first two calls
        compiled.generate([request], on_progress=seen.append, should_cancel=lambda: len(seen) >= 3)
    assert len(seen) == 3


@pytest.mark.parametrize("guidance", [0.0, 1.0, 7.5])
@pytest.mark.parametrize("negative", ["", "blurry"])
@pytest.mark.parametrize("operation", ["txt2img", "img2img", "inpaint", "mix"])
def test_every_guidance_and_negative_combination_runs(
    engine: Engine, request_for: Build, photo: Image.Image, operation: str, negative: str, guidance: float
) -> None:
    """Guidance at or below 1 switches classifier-free guidance off, which changes the batch layout."""
    inputs = {
        "txt2img": {},
        "img2img": {"image": photo},
        "inpaint": {"image": photo, "mask": RegionMask(0, 0, 50, 50)},
        "mix": {"mix": ["a cat", photo]},
    }[operation]
    request = request_for(
        operation,
        "" if operation == "mix" else "a cat",
        negative_prompt=negative,
        guidance_scale=guidance,
        prior_guidance_scale=guidance,
        count=2,
        steps=2,
        **inputs,
    )
    (result,) = engine.generate([request])
    assert [image.size for image in result.images] == [(64, 64), (64, 64)]


def test_the_cpu_thread_count_is_a_setting() -> None:
    before = torch.get_num_threads()
    try:
        load_models(ModelSettings(preset="tiny", threads=1))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_the_inpaint_decoder_loads_beside_the_other_jobs_once_an_inpaint_job_is_queued(
    tiny_models: KandinskyModels, request_for: Build, photo: Image.Image, caplog: pytest.LogCaptureFixture
) -> None:
    """Its first job's turn may come minutes later: meanwhile other users' jobs run; the load is logged, timed."""
    caplog.set_level(logging.INFO, logger="generation.lazy")
    released, loads = threading.Event(), []

    def slow_load(movq: VQModel) -> KandinskyV22InpaintPipeline:
        loads.append(threading.current_thread().name)
        assert released.wait(30)
        return tiny_models.inpaint_pipeline()

    models = KandinskyModels(tiny_models.prior, tiny_models.decoder, slow_load, tiny_models.placement)
    engine = Engine(models)
    inpaint = request_for("inpaint", "a cat", image=photo, mask=RegionMask(25, 25, 50, 50), steps=2, prior_steps=2)
    engine.prepare(inpaint)
    engine.prepare(inpaint)  # once
    while not loads:
        time.sleep(0.01)
    drawn = request_for("txt2img", steps=2, prior_steps=2)
    assert engine.ready(drawn) and not engine.ready(inpaint)  # the worker runs other jobs meanwhile
    assert engine.generate([drawn])[0].images  # the engine's thread is not held by the load either
    assert not models.inpaint_loaded
    released.set()
    assert engine.generate([inpaint])[0].images and engine.ready(inpaint)
    assert loads == ["easel-model-loader"]
    messages = [record.getMessage() for record in caplog.records]
    assert "loading the inpaint decoder" in messages
    assert any(message.startswith("the inpaint decoder loaded in ") for message in messages)
