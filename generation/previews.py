"""Live previews: a small picture of what a running job is becoming, every `interval_seconds` of its GPU time.

A preview shows the denoiser's own prediction of the final image at that step (the scheduler's
`pred_original_sample`), not the noisy latents: with the DDPM schedule the latents are mostly noise for the first
half of the steps, while the prediction shows the composition from the first steps on. It is decoded by the same
MoVQ as the result, on latents scaled down so that the picture is about `size` pixels on its longer side: the
decoder's cost grows with its pixels (a 256 px preview of a 768 px image took 14 times less than the whole decode
on the real MoVQ, docs/benchmarks.md). Only the first image of each request is previewed; for inpaint, what the
mask keeps comes from the source, as in the result. `benchmarks/engine.py` measures the cost.

A preview carries what the core needs to judge it as it will judge the result: its own safety score, the highest
score of the request's input images and the request's translation. A preview that cannot be made (the device
refuses the small decode, memory runs short) turns previews off for the rest of the batch; the batch goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from generation.config import PreviewSettings
from generation.translation import PromptTranslation

log = logging.getLogger(__name__)

Clock = Callable[[], float]


@dataclass(frozen=True, eq=False)
class Preview:
    """One request's picture; the scores come from the safety classifier, None without one."""

    image: Image.Image
    nsfw_score: float | None = None
    input_nsfw_score: float | None = None
    """The highest score of the request's input images, None without inputs."""
    translation: PromptTranslation | None = None
    """The English the request runs on, when its prompt was translated."""


@dataclass(frozen=True)
class Judged:
    """What each request of a batch brings to its previews, in the batch's order."""

    input_nsfw_scores: Sequence[float | None]
    translations: Sequence[PromptTranslation | None]


PreviewSink = Callable[[Sequence[Preview]], None]
"""Takes one preview per request of the batch, in the batch's order; called from the GPU thread."""


class Previewer:
    """Decides when a batch's next preview is due and makes it, from inside the decoder's step callback."""

    def __init__(
        self,
        settings: PreviewSettings,
        first_rows: Sequence[int],
        judged: Judged,
        make: Callable[[torch.Tensor], list[Image.Image]],
        score: Callable[[list[Image.Image]], list[float]] | None,
        sink: PreviewSink,
        clock: Clock = time.monotonic,
    ) -> None:
        self.interval = settings.interval_seconds
        self.first_rows = list(first_rows)
        self.judged = judged
        self._make = make
        self._score = score
        self._sink = sink
        self._clock = clock
        self._next = clock() + self.interval
        self.predicted: torch.Tensor | None = None
        self.made = 0
        self.broken = False

    def step_end(self, pipe: Any, step: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        """The pipelines' `callback_on_step_end`: a preview when one is due, never on the last step (the result
        follows it at once). The interval runs in the GPU thread's time from the end of the last preview (from
        the batch's start, prior included, for the first)."""
        if self.broken or step + 1 >= pipe.num_timesteps or self._clock() < self._next:
            return tensors
        latents = self.predicted if self.predicted is not None else tensors["latents"]
        if "mask_image" in tensors:  # inpaint: what the mask keeps is the source, as in the result
            kept = tensors["mask_image"][: latents.shape[0]]
            latents = latents * (1 - kept) + tensors["masked_image"][: latents.shape[0]]
        try:
            self.show(latents)
        except Exception:
            log.warning("a live preview could not be made; no more previews in this batch", exc_info=True)
            self.broken = True
        self._next = self._clock() + self.interval
        return tensors

    def show(self, latents: torch.Tensor) -> None:
        images = self._make(latents[self.first_rows])
        scores: Sequence[float | None] = self._score(images) if self._score is not None else [None] * len(images)
        self.made += 1
        judged = zip(images, scores, self.judged.input_nsfw_scores, self.judged.translations, strict=True)
        self._sink([Preview(image, score, inputs, translation) for image, score, inputs, translation in judged])

    @contextmanager
    def predicting(self, scheduler: Any) -> Iterator[None]:
        """Keep the scheduler's prediction of the final latents at each step, where its step reports one."""
        step = scheduler.step

        def recording(*args: Any, **kwargs: Any) -> Any:
            output = step(*args, **kwargs)
            self.predicted = getattr(output, "pred_original_sample", None)
            return output

        scheduler.step = recording
        try:
            yield
        finally:
            del scheduler.step


def decode_small(movq: Any, latents: torch.Tensor, size: int) -> list[Image.Image]:
    """MoVQ-decoded pictures of `latents`, scaled down first so their longer side is about `size` pixels."""
    factor = 2 ** (len(movq.config.block_out_channels) - 1)
    height, width = latents.shape[-2:]
    scale = min(1.0, size / (factor * max(height, width)))
    if scale < 1.0:
        target = (max(1, round(height * scale)), max(1, round(width * scale)))
        latents = F.interpolate(latents.float(), size=target, mode="bilinear", antialias=True).to(latents.dtype)
    pixels = movq.decode(latents.to(movq.dtype), force_not_quantize=True)["sample"]
    pixels = (pixels.float() * 0.5 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(np.round(image * 255).astype(np.uint8)) for image in pixels]
