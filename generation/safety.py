"""Image safety scores: how likely each picture is NSFW, from a transformers image classifier.

The engine scores every generated image and every input image in its own thread, on the image models'
device, so the classifier shares the GPU with the pipelines instead of competing for it. It only
measures: each community's policy (block, spoiler, allow) is applied by the chat core from the scores.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoModelForImageClassification, PreTrainedModel
from transformers.image_processing_utils import BaseImageProcessor

from generation import tiny_safety
from generation.config import ModelSettings, SafetySettings, uses_tiny
from generation.errors import ModelLoadError
from generation.hub import load_failure
from generation.models import pick_device, pick_dtype

log = logging.getLogger(__name__)


class SafetyChecker:
    """Scores images with a single-label classifier; used from one thread (the engine's) at a time."""

    def __init__(self, model: PreTrainedModel, processor: BaseImageProcessor, nsfw_labels: Sequence[str]) -> None:
        labels = {str(label).lower(): int(index) for index, label in (model.config.id2label or {}).items()}
        wanted = [label.lower() for label in nsfw_labels]
        self.nsfw_indices = sorted({labels[label] for label in wanted if label in labels})
        if not self.nsfw_indices:
            raise ModelLoadError(
                f"the safety model has no label among nsfw_labels {list(nsfw_labels)}; its labels are {sorted(labels)}"
            )
        self.model = model
        self.processor = processor

    @torch.inference_mode()
    def scores(self, images: Sequence[Image.Image]) -> list[float]:
        """The probability that each image is NSFW, in [0, 1]: the softmax mass of the NSFW labels.

        All images go through the model in one forward call.
        """
        if not images:
            return []
        inputs = self.processor(images=[image.convert("RGB") for image in images], return_tensors="pt")
        pixels = inputs["pixel_values"].to(self.model.device, self.model.dtype)
        logits = self.model(pixel_values=pixels).logits
        # Softmax in float32: half-precision logits would round scores near the threshold.
        probabilities = logits.float().softmax(dim=-1)[:, self.nsfw_indices].sum(dim=-1)
        return [min(max(score, 0.0), 1.0) for score in probabilities.tolist()]


def load_safety_checker(settings: SafetySettings, model_settings: ModelSettings) -> SafetyChecker | None:
    """The checker on the image models' device and precision; None when the safety check is off."""
    if not settings.enabled:
        return None
    device = pick_device(model_settings.device)
    dtype = pick_dtype(model_settings.dtype, device)
    tiny = uses_tiny(settings.preset, model_settings)
    if tiny:
        model: PreTrainedModel = tiny_safety.model(settings.tiny_seed, settings.tiny_bias)
        processor: BaseImageProcessor = tiny_safety.image_processor()
    else:
        model, processor = _pretrained(settings, dtype)
    model.to(device, dtype)  # type: ignore[arg-type]  # transformers types `to` through a decorator mypy misreads
    log.info("safety model %s ready on %s (%s)", "tiny" if tiny else settings.model, device, dtype)
    return SafetyChecker(model, processor, settings.nsfw_labels)


def _pretrained(settings: SafetySettings, dtype: torch.dtype) -> tuple[PreTrainedModel, BaseImageProcessor]:
    options: dict[str, Any] = {"cache_dir": settings.cache_dir, "local_files_only": settings.local_files_only}
    try:
        model = AutoModelForImageClassification.from_pretrained(settings.model, dtype=dtype, **options)
        # The PIL backend resizes as the checkpoints were trained, and needs no torchvision.
        processor = AutoImageProcessor.from_pretrained(settings.model, backend="pil", **options)
    except (OSError, ValueError) as error:
        raise load_failure("safety.model", settings.model, error, "the safety model") from error
    return model.eval(), processor
