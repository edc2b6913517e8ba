"""The engine: runs a batch of compatible requests through the Kandinsky pipelines.

Synchronous by design: it owns the GPU and is called from one dedicated thread. Progress and
cancellation go through forward pre-hooks on the two denoisers (the prior transformer and the decoder
UNet), because `KandinskyV22PriorPipeline.interpolate` takes no step callback; a hook sees every step
of every operation alike. Raising from a hook stops within one step and leaves the pipelines usable.

Texts in another language than English are translated first, in this same thread and in one call for
the whole batch, so translation shares the device with the pipelines instead of competing for it.
The safety classifier, when there is one, scores the batch's input images before generation (so that live
previews are judged with them) and its outputs after, one call each; the engine only reports the scores, the chat
core decides.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import accumulate
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image

from generation.config import PreviewSettings
from generation.embeddings import Row, generators, mix_embeddings, remix_embeddings, text_embeddings
from generation.errors import GenerationCancelled
from generation.lazy import LazyLoad
from generation.models import KandinskyModels
from generation.previews import Judged, Preview, Previewer, decode_small
from generation.requests import GenerationRequest, MixItem, Operation
from generation.safety import SafetyChecker
from generation.translation import ENGLISH, PromptTranslation, SourceText, Translator

log = logging.getLogger(__name__)


class ProgressCallback(Protocol):
    """The fraction of the batch's steps done; with previews (one per request, in order) when some are made."""

    def __call__(self, fraction: float, previews: Sequence[Preview] = ()) -> None: ...


CancelCheck = Callable[[], bool]
INPAINT_PREVIEW_TENSORS = ["latents", "masked_image", "mask_image"]
"""What an inpaint preview needs besides the latents: the source's latents where the mask keeps them, and the mask."""


@dataclass(frozen=True, eq=False)
class GenerationResult:
    """`request` is the request as submitted; `translation` the English it ran on, None if it needed none.

    `nsfw_scores` has one score per image (empty without a safety checker); `input_nsfw_score` is the
    highest score among the request's input images (None without inputs or without a checker).
    """

    request: GenerationRequest
    images: tuple[Image.Image, ...]
    seeds: tuple[int, ...]
    translation: PromptTranslation | None = None
    nsfw_scores: tuple[float, ...] = ()
    input_nsfw_score: float | None = None


class _StepCounter:
    """Counts denoiser calls across all stages of a batch, reports the fraction, and stops on request."""

    def __init__(self, total: int, on_progress: ProgressCallback | None, should_cancel: CancelCheck | None) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.on_progress = on_progress
        self.should_cancel = should_cancel

    @property
    def fraction(self) -> float:
        return min(self.done / self.total, 1.0)

    def __call__(self, _module: torch.nn.Module, _args: object) -> None:
        if self.should_cancel is not None and self.should_cancel():
            raise GenerationCancelled
        if self.done and self.on_progress is not None:
            self.on_progress(self.fraction)
        self.done += 1


def total_steps(batch: Sequence[GenerationRequest]) -> int:
    """Denoiser calls a batch will make; batched requests share their calls."""
    head = batch[0]
    return head.prior_denoising_steps * head.prior_runs + head.denoising_steps


def check_batch(batch: Sequence[GenerationRequest]) -> None:
    if not batch:
        raise ValueError("an empty batch")
    keys = {request.batch_key for request in batch}
    if len(batch) > 1 and (None in keys or len(keys) > 1):
        raise ValueError(f"requests cannot share a pipeline call: {[r.operation for r in batch]}")


class Engine:
    def __init__(
        self,
        models: KandinskyModels,
        translator: Translator | None = None,
        safety: SafetyChecker | None = None,
        previews: PreviewSettings | None = None,
    ) -> None:
        self.models = models
        self.translator = translator
        self.safety = safety
        self.previews = previews

    def prepare(self, request: GenerationRequest) -> None:
        """A job was queued: a model that only its operation needs starts loading now, not when its turn comes."""
        lazy = self._lazy(request.operation)
        if lazy is not None:
            lazy.soon()

    def ready(self, request: GenerationRequest) -> bool:
        """Whether the job may run: the models only its operation needs are loaded, or their load ahead failed (the
        job then tries once more and fails with the reason). Until then the worker runs other jobs."""
        lazy = self._lazy(request.operation)
        return lazy is None or lazy.settled

    def _lazy(self, operation: Operation) -> LazyLoad[Any] | None:
        if operation.inpaints:
            return self.models.inpaint
        return self.models.depth if operation is Operation.DEPTH else None

    def generate(
        self,
        batch: Sequence[GenerationRequest],
        on_progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
    ) -> list[GenerationResult]:
        """Run compatible requests in one pipeline call; each image keeps its own seed.

        Raises `GenerationCancelled` when `should_cancel` turns true, at the next denoising step (or
        generated token of a translation).
        """
        check_batch(batch)
        translations = self._translate(batch, should_cancel)
        if should_cancel is not None and should_cancel():
            raise GenerationCancelled
        english = [
            request if translation is None else _in_english(request, translation)
            for request, translation in zip(batch, translations, strict=True)
        ]
        rows = [Row(request, seed) for request in english for seed in request.seeds]
        counter = _StepCounter(total_steps(batch), on_progress, should_cancel)
        input_scores = self._input_scores(batch)
        previewer = self._previewer(batch, counter, on_progress, Judged(input_scores, translations))
        started = time.perf_counter()
        with self._hooked(counter, batch[0].operation):
            images = self._run(batch[0].operation, rows, previewer)
        output_scores = self._output_scores(images)
        if on_progress is not None:
            on_progress(1.0)
        log.debug("%s x%d in %.2fs", batch[0].operation, len(rows), time.perf_counter() - started)
        results = []
        offset = 0
        for request, translation, input_score in zip(batch, translations, input_scores, strict=True):
            chunk = slice(offset, offset + request.count)
            offset += request.count
            result = GenerationResult(
                request, tuple(images[chunk]), request.seeds, translation, tuple(output_scores[chunk]), input_score
            )
            results.append(result)
        return results

    def _input_scores(self, batch: Sequence[GenerationRequest]) -> list[float | None]:
        """The highest NSFW score of each request's input images, from one classifier call; known before the
        pipeline runs, so that previews are judged with them as the result will be."""
        inputs = [_input_images(request) for request in batch]
        if self.safety is None or not any(inputs):
            return [None] * len(batch)
        scores = iter(self.safety.scores([image for request_inputs in inputs for image in request_inputs]))
        return [max((next(scores) for _ in request_inputs), default=None) for request_inputs in inputs]

    def _output_scores(self, images: list[Image.Image]) -> list[float]:
        """The NSFW score of every output, from one classifier call (none without a checker)."""
        if self.safety is None:
            return []
        started = time.perf_counter()
        scores = self.safety.scores(images)
        log.debug("scored %d images in %.2fs", len(scores), time.perf_counter() - started)
        return scores

    def _translate(
        self, batch: Sequence[GenerationRequest], should_cancel: CancelCheck | None
    ) -> list[PromptTranslation | None]:
        """Every text of the batch's non-English requests in one translator call; None where nothing changed."""
        languages = [_foreign_language(request) for request in batch]
        sources = [
            SourceText(text, language)
            for request, language in zip(batch, languages, strict=True)
            if language is not None
            for text in _texts(request)
        ]
        if self.translator is None or not sources:
            return [None] * len(batch)
        started = time.perf_counter()
        english = iter(self.translator.translate(sources, should_cancel))
        log.debug("translated %d texts in %.2fs", len(sources), time.perf_counter() - started)
        translations: list[PromptTranslation | None] = []
        for request, language in zip(batch, languages, strict=True):
            texts = [next(english) for _ in _texts(request)] if language is not None else _texts(request)
            changed = texts != _texts(request)
            translations.append(_translation(request, language, texts) if language is not None and changed else None)
        return translations

    def _previewer(
        self,
        batch: Sequence[GenerationRequest],
        counter: _StepCounter,
        on_progress: ProgressCallback | None,
        judged: Judged,
    ) -> Previewer | None:
        """Previews of the batch's first image of each request, when they are on and someone listens. Not under
        `cpu_offload`: each decode would move the UNet off the GPU and back."""
        settings = self.previews
        if settings is None or not settings.enabled or on_progress is None or self.models.placement.cpu_offload:
            return None
        if batch[0].operation is Operation.DEPTH:
            return None  # the ControlNet pipelines take no step-end callback
        size, movq, safety, report = settings.size, self.models.decoder.movq, self.safety, on_progress
        first_rows = [0, *accumulate(request.count for request in batch)][:-1]
        return Previewer(
            settings,
            first_rows,
            judged,
            lambda latents: decode_small(movq, latents, size),
            safety.scores if safety is not None else None,
            lambda previews: report(counter.fraction, previews),
        )

    @contextmanager
    def _hooked(self, counter: _StepCounter, operation: Operation) -> Iterator[None]:
        if operation.inpaints:
            unet = self.models.inpaint_pipeline().unet
        elif operation is Operation.DEPTH:
            unet = self.models.depth.get().decoder.unet
        else:
            unet = self.models.decoder.unet
        handles = [module.register_forward_pre_hook(counter) for module in (self.models.prior.prior, unet)]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _run(self, operation: Operation, rows: list[Row], previewer: Previewer | None) -> list[Image.Image]:
        head = rows[0].request
        if operation is Operation.MIX:
            embeds, negative = mix_embeddings(self.models.prior, head)
        elif operation is Operation.REMIX:
            embeds, negative = remix_embeddings(self.models.remix_prior, head)
        else:
            embeds, negative = text_embeddings(self.models.prior, rows)
        common: dict[str, Any] = {
            "image_embeds": embeds,
            "negative_image_embeds": negative,
            "width": head.width,
            "height": head.height,
            "num_inference_steps": head.steps,
            "guidance_scale": head.guidance_scale,
            "generator": generators([row.seed for row in rows]),
            "output_type": "np",
        }
        if previewer is None:
            return self._decode(operation, rows, common)
        decoder = self.models.inpaint_pipeline() if operation.inpaints else self.models.decoder
        common["callback_on_step_end"] = previewer.step_end
        if operation.inpaints:
            common["callback_on_step_end_tensor_inputs"] = INPAINT_PREVIEW_TENSORS
        with previewer.predicting(decoder.scheduler):
            return self._decode(operation, rows, common)

    def _decode(self, operation: Operation, rows: list[Row], common: dict[str, Any]) -> list[Image.Image]:
        head = rows[0].request
        if operation is Operation.IMG2IMG:
            pixels = self.models.img2img(image=[row.request.image for row in rows], strength=head.strength, **common)
        elif operation is Operation.DEPTH:
            pixels = self._depth(rows, common)
        elif operation.inpaints:
            assert head.image is not None and head.mask is not None
            inpaint = self.models.inpaint_pipeline()
            pixels = inpaint(image=[head.image] * len(rows), mask_image=[head.mask] * len(rows), **common)
            return [_keep_unmasked(image, head.image, head.mask) for image in pixels.images]
        else:
            pixels = self.models.decoder(**common)
        return [_to_pil(image) for image in pixels.images]

    def _depth(self, rows: list[Row], common: dict[str, Any]) -> Any:
        """The ControlNet decoder following each image's depth map: from noise, or from the image at a strength."""
        head, depth = rows[0].request, self.models.depth.get()
        images = [row.request.image for row in rows]
        hint = depth.hints(images, head.width, head.height).to(self.models.device, self.models.placement.dtype)
        if head.strength is None:
            return depth.decoder(hint=hint, **common)
        return depth.img2img(image=images, strength=head.strength, hint=hint, **common)


def _texts(request: GenerationRequest) -> list[str]:
    """The prompt, the negative prompt and the mix's text items, in that order."""
    return [request.prompt, request.negative_prompt, *(item.text for item in request.mix if item.text is not None)]


def _input_images(request: GenerationRequest) -> list[Image.Image]:
    """The pictures a user sent with the request (img2img and inpaint's source, mix images); not masks."""
    mix_images = [item.image for item in request.mix if item.image is not None]
    return [request.image, *mix_images] if request.image is not None else mix_images


def _foreign_language(request: GenerationRequest) -> str | None:
    return request.language if request.language not in (None, ENGLISH) else None


def _translation(request: GenerationRequest, language: str, texts: list[str]) -> PromptTranslation:
    prompt, negative_prompt, *mix_texts = texts
    items = iter(mix_texts)
    return PromptTranslation(
        language=language,
        prompt=prompt,
        negative_prompt=negative_prompt,
        mix_texts=tuple(None if item.text is None else next(items) for item in request.mix),
    )


def _in_english(request: GenerationRequest, translation: PromptTranslation) -> GenerationRequest:
    mix = tuple(
        item if text is None else MixItem(weight=item.weight, text=text)
        for item, text in zip(request.mix, translation.mix_texts, strict=True)
    )
    return replace(request, prompt=translation.prompt, negative_prompt=translation.negative_prompt, mix=mix)


def _to_pil(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(np.round(pixels * 255).clip(0, 255).astype(np.uint8))


def _keep_unmasked(pixels: np.ndarray, source: Image.Image, mask: Image.Image) -> Image.Image:
    """Paste the generated pixels through the soft mask, so unmasked pixels stay exactly the input's.

    The pipeline only repaints at latent resolution and thresholds the mask; compositing in pixel
    space keeps the rest of the picture untouched and lets grey mask values blend.
    """
    weight = np.asarray(mask, dtype=np.float32)[..., None] / 255.0
    original = np.asarray(source, dtype=np.float32) / 255.0
    return _to_pil(original * (1.0 - weight) + pixels * weight)
