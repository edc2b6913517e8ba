"""Image safety scores with the tiny ViT preset: the checker alone, its settings, and the engine's use of it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from PIL import Image

from bots.config import load_settings
from generation.config import ModelSettings, SafetySettings
from generation.engine import Engine
from generation.errors import ModelLoadError
from generation.hub import WeightsMissing
from generation.images import RegionMask
from generation.models import KandinskyModels
from generation.requests import GenerationRequest
from generation.safety import SafetyChecker, load_safety_checker

Build = Callable[..., GenerationRequest]

REPO = Path(__file__).resolve().parents[2]
TINY = ModelSettings(preset="tiny")


class ForwardSpy:
    """Records the batch size of every forward call of the classifier."""

    def __init__(self, checker: SafetyChecker) -> None:
        self.batches: list[int] = []
        self.handle = checker.model.register_forward_pre_hook(self, with_kwargs=True)

    def __call__(self, _module: torch.nn.Module, _args: tuple[object, ...], kwargs: dict[str, torch.Tensor]) -> None:
        self.batches.append(int(kwargs["pixel_values"].shape[0]))


def checker_with(**options: object) -> SafetyChecker:
    checker = load_safety_checker(SafetySettings.model_validate(options), TINY)
    assert checker is not None
    return checker


@pytest.fixture(scope="module")
def checker() -> SafetyChecker:
    return checker_with()


@pytest.fixture
def spy(checker: SafetyChecker) -> Iterator[ForwardSpy]:
    recorder = ForwardSpy(checker)
    yield recorder
    recorder.handle.remove()


@pytest.fixture
def pictures(photo: Image.Image) -> list[Image.Image]:
    """Different sizes and modes, as users send them."""
    return [photo, photo.rotate(90), Image.new("RGB", (300, 120), (250, 240, 230)), photo.convert("L")]


@pytest.fixture
def safe_engine(tiny_models: KandinskyModels, checker: SafetyChecker) -> Engine:
    return Engine(tiny_models, safety=checker)


def test_tiny_scores_are_probabilities_and_always_the_same(checker: SafetyChecker, pictures: list[Image.Image]) -> None:
    scores = checker.scores(pictures)
    assert len(scores) == len(pictures)
    assert all(0.0 <= score <= 1.0 for score in scores)
    assert checker_with().scores(pictures) == scores
    assert checker.scores(pictures) == scores


def test_the_tiny_model_looks_at_the_picture(checker: SafetyChecker, pictures: list[Image.Image]) -> None:
    assert len(set(checker.scores(pictures))) > 1


def test_several_images_are_scored_in_one_forward_call(
    checker: SafetyChecker, spy: ForwardSpy, pictures: list[Image.Image]
) -> None:
    batched = checker.scores(pictures)
    assert spy.batches == [len(pictures)]
    alone = [checker.scores([picture])[0] for picture in pictures]
    assert batched == pytest.approx(alone, abs=1e-5)


def test_no_images_need_no_model_call(checker: SafetyChecker, spy: ForwardSpy) -> None:
    assert checker.scores([]) == []
    assert spy.batches == []


@pytest.mark.parametrize(("bias", "high"), [(8.0, True), (-8.0, False)])
def test_tiny_bias_forces_every_score_above_or_below_the_threshold(
    pictures: list[Image.Image], bias: float, high: bool
) -> None:
    settings = SafetySettings(tiny_bias=bias)
    scores = checker_with(tiny_bias=bias).scores(pictures)
    assert all((score >= settings.threshold) is high for score in scores)


def test_by_default_the_tiny_model_finds_nothing_nsfw(checker: SafetyChecker, pictures: list[Image.Image]) -> None:
    assert max(checker.scores(pictures)) < SafetySettings().threshold


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_the_checker_runs_in_the_image_models_precision(
    checker: SafetyChecker, pictures: list[Image.Image], dtype: str
) -> None:
    half = load_safety_checker(SafetySettings(), ModelSettings(preset="tiny", dtype=dtype))  # type: ignore[arg-type]
    assert half is not None and half.model.dtype == getattr(torch, dtype)
    assert half.scores(pictures) == pytest.approx(checker.scores(pictures), abs=1e-3)


def test_disabled_gives_no_checker() -> None:
    assert load_safety_checker(SafetySettings(enabled=False), TINY) is None


def test_auto_follows_the_model_preset_and_real_offline_without_weights_is_a_clear_error(tmp_path: Path) -> None:
    settings = SafetySettings(cache_dir=str(tmp_path), local_files_only=True)
    missing = "safety.model: the weights of Falconsai/nsfw_image_detection are not on this machine"
    with pytest.raises(WeightsMissing, match=missing):
        load_safety_checker(settings, ModelSettings())
    with pytest.raises(ModelLoadError, match=r"safety\.model"):
        load_safety_checker(settings.model_copy(update={"preset": "real"}), TINY)
    assert load_safety_checker(settings.model_copy(update={"preset": "tiny"}), ModelSettings()) is not None


def test_labels_the_model_lacks_are_refused_by_name() -> None:
    with pytest.raises(
        ModelLoadError, match=r"no label among nsfw_labels \['porn'\]; its labels are \['normal', 'nsfw'\]"
    ):
        checker_with(nsfw_labels=["porn"])


def test_nsfw_labels_are_matched_regardless_of_case(pictures: list[Image.Image], checker: SafetyChecker) -> None:
    assert checker_with(nsfw_labels=["NSFW"]).scores(pictures) == checker.scores(pictures)


def test_several_nsfw_labels_add_up(pictures: list[Image.Image]) -> None:
    assert checker_with(nsfw_labels=["nsfw", "normal"]).scores(pictures) == pytest.approx([1.0] * len(pictures))


def test_the_shipped_config_holds_the_defaults() -> None:
    assert load_settings(REPO / "config.toml", environ={}).safety == SafetySettings()


@pytest.mark.parametrize("threshold", [-0.1, 1.1])
def test_a_threshold_outside_zero_to_one_is_refused(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        SafetySettings(threshold=threshold)


def test_without_a_checker_the_engine_reports_no_scores(engine: Engine, request_for: Build, photo: Image.Image) -> None:
    (result,) = engine.generate([request_for("img2img", image=photo, count=2)])
    assert result.nsfw_scores == ()
    assert result.input_nsfw_score is None


# Each case: how to build the request from the helper and a photo, and how many input images it has.
CASES: dict[str, tuple[Callable[[Build, Image.Image], GenerationRequest], int]] = {
    "txt2img": (lambda build, photo: build("txt2img", count=2), 0),
    "img2img": (lambda build, photo: build("img2img", image=photo, count=2), 1),
    "inpaint": (lambda build, photo: build("inpaint", image=photo, mask=RegionMask(16, 16, 32, 32)), 1),
    "mix with images": (lambda build, photo: build("mix", "", mix=[photo, "a cat", photo.rotate(90)], count=2), 2),
    "mix of texts": (lambda build, photo: build("mix", "", mix=["a cat", "a dog"], count=2), 0),
}


@pytest.mark.parametrize("case", CASES)
def test_the_engine_scores_each_output_and_the_highest_input(
    safe_engine: Engine, checker: SafetyChecker, spy: ForwardSpy, request_for: Build, photo: Image.Image, case: str
) -> None:
    build, inputs = CASES[case]
    request = build(request_for, photo)
    (result,) = safe_engine.generate([request])
    assert spy.batches == ([inputs] if inputs else []) + [request.count]  # the inputs before the pipeline runs
    assert len(result.nsfw_scores) == request.count
    assert result.nsfw_scores == pytest.approx(checker.scores(list(result.images)), abs=1e-5)
    sent = [request.image] if request.image is not None else [item.image for item in request.mix if item.image]
    if inputs:
        assert result.input_nsfw_score == pytest.approx(max(checker.scores(sent)), abs=1e-5)
    else:
        assert result.input_nsfw_score is None


def test_a_batchs_inputs_and_outputs_are_scored_in_one_call_each_and_split_per_request(
    safe_engine: Engine, spy: ForwardSpy, request_for: Build, photo: Image.Image
) -> None:
    first = request_for("img2img", image=photo, count=2, seed=1)
    second = request_for("img2img", "a blue dog", image=photo.rotate(90), count=1, seed=7)
    results = safe_engine.generate([first, second])
    assert spy.batches == [1 + 1, 2 + 1]
    assert [len(result.nsfw_scores) for result in results] == [2, 1]
    assert all(result.input_nsfw_score is not None for result in results)
    assert results[0].input_nsfw_score != results[1].input_nsfw_score


def test_forced_high_scores_reach_the_result(
    tiny_models: KandinskyModels, request_for: Build, photo: Image.Image
) -> None:
    engine = Engine(tiny_models, safety=checker_with(tiny_bias=8.0))
    (result,) = engine.generate([request_for("img2img", image=photo, count=2)])
    threshold = SafetySettings().threshold
    assert all(score >= threshold for score in result.nsfw_scores)
    assert result.input_nsfw_score is not None and result.input_nsfw_score >= threshold


def test_progress_still_ends_at_one_after_scoring(safe_engine: Engine, request_for: Build) -> None:
    seen: list[float] = []
    safe_engine.generate([request_for("txt2img")], on_progress=seen.append)
    assert seen[-1] == 1.0 and seen == sorted(seen)
