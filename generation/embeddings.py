"""The prior's half of every operation: image embeddings (and their negatives) for the decoders to draw.

txt2img and the image operations embed their prompts (the negatives as extra rows of the same call); mix blends
its items through `interpolate`; remix moves its image's own embedding towards the prompt (emb2emb). Each image
draws from a CPU generator of its own seed, so the same seed gives the same image on any device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from diffusers import KandinskyV22PriorEmb2EmbPipeline, KandinskyV22PriorPipeline

from generation.requests import GenerationRequest

Embeddings = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class Row:
    """One image to make: the request it belongs to and its own seed."""

    request: GenerationRequest
    seed: int


def generators(seeds: Sequence[int]) -> list[torch.Generator]:
    """CPU generators: the same seed gives the same image on any device."""
    return [torch.Generator("cpu").manual_seed(seed) for seed in seeds]


def text_embeddings(prior: KandinskyV22PriorPipeline, rows: list[Row]) -> Embeddings:
    head = rows[0].request
    negatives, seeds = _negatives([row.request.negative_prompt for row in rows], [row.seed for row in rows])
    output = prior(
        prompt=[row.request.prompt for row in rows],
        negative_prompt=negatives,
        num_inference_steps=head.prior_steps,
        guidance_scale=head.prior_guidance_scale,
        generator=generators(seeds),
        output_type="pt",
    )
    return output.image_embeds, output.negative_image_embeds


def remix_embeddings(remix_prior: KandinskyV22PriorEmb2EmbPipeline, request: GenerationRequest) -> Embeddings:
    """The image's own embedding moved towards the prompt by the prior (emb2emb). Without a negative prompt its
    negative is the embedding of a blank image, as the decoder expects, not `interpolate`'s random one."""
    negatives, seeds = _negatives([request.negative_prompt] * request.count, list(request.seeds))
    output = remix_prior(
        prompt=[request.prompt] * request.count,
        image=[request.image] * request.count,
        strength=request.strength,
        negative_prompt=negatives,
        num_inference_steps=request.prior_steps,
        guidance_scale=request.prior_guidance_scale,
        generator=generators(seeds),
        output_type="pt",
    )
    return output.image_embeds, output.negative_image_embeds


def mix_embeddings(prior: KandinskyV22PriorPipeline, request: GenerationRequest) -> Embeddings:
    output = prior.interpolate(
        [item.text if item.text is not None else item.image for item in request.mix],
        [item.weight for item in request.mix],
        num_images_per_prompt=request.count,
        num_inference_steps=request.prior_steps,
        generator=generators(request.seeds),
        negative_prompt=request.negative_prompt,
        guidance_scale=request.prior_guidance_scale,
        device=prior._execution_device,
    )
    return output.image_embeds, output.negative_image_embeds


def _negatives(texts: list[str], seeds: list[int]) -> tuple[list[str] | None, list[int]]:
    """The negative prompts, if any, and the seeds of every row the prior runs: the negatives are extra rows."""
    if not any(texts):
        return None, seeds
    return texts, seeds + seeds
