"""The real Kandinsky 2.2 architectures with random weights, for benchmarks/gpu.py.

Speed does not depend on weight values, so the published configs are enough: each component is built from
its config straight on the device (in float32, then converted there, one component at a time), which takes
seconds and never holds the 12 GiB of weights in CPU memory. The configs are the hub repositories' own,
kept in tests/fixtures/kandinsky-2.2, where tests/integration/test_real_loading.py checks that they give
the published parameter counts. The tokenizer is the tiny preset's: the real CLIP vocabulary is not in
the repository, and the prior pads every prompt to 77 tokens anyway, so the text encoder does the same work.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from diffusers import (
    DDPMScheduler,
    KandinskyV22ControlnetPipeline,
    KandinskyV22InpaintPipeline,
    KandinskyV22Pipeline,
    KandinskyV22PriorPipeline,
    PriorTransformer,
    UnCLIPScheduler,
    UNet2DConditionModel,
    VQModel,
)
from transformers import (
    CLIPImageProcessor,
    CLIPTextConfig,
    CLIPTextModelWithProjection,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
)

from generation import tiny
from generation.models import KandinskyModels, Placement

CONFIGS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "kandinsky-2.2"
ModuleT = TypeVar("ModuleT", bound=torch.nn.Module)


@dataclass(frozen=True)
class Architecture:
    """Every component's config, in the form its class is built from."""

    prior: Mapping[str, Any]
    text_encoder: CLIPTextConfig
    image_encoder: CLIPVisionConfig
    image_processor: Mapping[str, Any]
    prior_scheduler: Mapping[str, Any]
    unet: Mapping[str, Any]
    inpaint_unet: Mapping[str, Any]
    movq: Mapping[str, Any]
    decoder_scheduler: Mapping[str, Any]

    @property
    def controlnet_unet(self) -> dict[str, Any]:
        """The depth ControlNet decoder's UNet: the decoder's, with the hint's 4 channels beside the latents' and
        the hint embedding (kandinsky-2-2-controlnet-depth's config is not among the fixtures)."""
        return {**self.unet, "in_channels": 8, "addition_embed_type": "image_hint"}


def real_architecture() -> Architecture:
    def read(path: str) -> dict[str, Any]:
        config: dict[str, Any] = json.loads((CONFIGS / path).read_text())
        return config

    return Architecture(
        prior=read("kandinsky-2-2-prior/prior/config.json"),
        text_encoder=CLIPTextConfig.from_dict(read("kandinsky-2-2-prior/text_encoder/config.json")),
        image_encoder=CLIPVisionConfig.from_dict(read("kandinsky-2-2-prior/image_encoder/config.json")),
        image_processor=read("kandinsky-2-2-prior/image_processor/preprocessor_config.json"),
        prior_scheduler=read("kandinsky-2-2-prior/scheduler/scheduler_config.json"),
        unet=read("kandinsky-2-2-decoder/unet/config.json"),
        inpaint_unet=read("kandinsky-2-2-decoder-inpaint/unet/config.json"),
        movq=read("kandinsky-2-2-decoder/movq/config.json"),
        decoder_scheduler=read("kandinsky-2-2-decoder/scheduler/scheduler_config.json"),
    )


def tiny_architecture() -> Architecture:
    """The tiny preset's configs, read off its components: the dry run builds them the way the real ones are."""
    return Architecture(
        prior=tiny.prior(0).config,
        text_encoder=tiny.text_encoder(0, vocab_size=len(tiny.tokenizer())).config,
        image_encoder=tiny.image_encoder(0).config,
        image_processor=tiny.image_processor().to_dict(),
        prior_scheduler=tiny.prior_scheduler().config,
        unet=tiny.unet(0, in_channels=4).config,
        inpaint_unet=tiny.unet(0, in_channels=9).config,
        movq=tiny.movq(0).config,
        decoder_scheduler=tiny.decoder_scheduler().config,
    )


@dataclass(frozen=True)
class Components:
    """The weights, built once; every `assemble` shares them, as `KandinskyModels` shares them between pipelines."""

    architecture: Architecture
    prior: PriorTransformer
    text_encoder: CLIPTextModelWithProjection
    image_encoder: CLIPVisionModelWithProjection
    unet: UNet2DConditionModel
    inpaint_unet: UNet2DConditionModel
    controlnet_unet: UNet2DConditionModel
    movq: VQModel

    def parameters_m(self) -> dict[str, float]:
        names = ("prior", "text_encoder", "image_encoder", "unet", "inpaint_unet", "movq")
        return {name: round(_millions(getattr(self, name)), 1) for name in names}


def build(architecture: Architecture, device: torch.device, dtype: torch.dtype) -> Components:
    """Random weights on `device` in `dtype`; on the `meta` device nothing is allocated (a check of the configs)."""

    def make(factory: Callable[[], ModuleT]) -> ModuleT:
        with torch.device(device):
            module = factory()
        return module.to(dtype=dtype).eval()

    return Components(
        architecture=architecture,
        prior=make(lambda: PriorTransformer.from_config(architecture.prior)),
        text_encoder=make(lambda: CLIPTextModelWithProjection(architecture.text_encoder)),
        image_encoder=make(lambda: CLIPVisionModelWithProjection(architecture.image_encoder)),
        unet=make(lambda: UNet2DConditionModel.from_config(architecture.unet)),
        inpaint_unet=make(lambda: UNet2DConditionModel.from_config(architecture.inpaint_unet)),
        controlnet_unet=make(lambda: UNet2DConditionModel.from_config(architecture.controlnet_unet)),
        movq=make(lambda: VQModel.from_config(architecture.movq)),
    )


def assemble(parts: Components, placement: Placement) -> KandinskyModels:
    """easel's own `KandinskyModels` over these weights, placed and tuned as `placement` says."""
    architecture = parts.architecture
    prior = KandinskyV22PriorPipeline(
        prior=parts.prior,
        image_encoder=parts.image_encoder,
        text_encoder=parts.text_encoder,
        tokenizer=tiny.tokenizer(),
        scheduler=UnCLIPScheduler.from_config(architecture.prior_scheduler),
        image_processor=CLIPImageProcessor.from_dict(dict(architecture.image_processor)),
    )
    decoder = KandinskyV22Pipeline(
        unet=parts.unet, scheduler=DDPMScheduler.from_config(architecture.decoder_scheduler), movq=parts.movq
    )

    def load_inpaint(movq: VQModel) -> KandinskyV22InpaintPipeline:
        scheduler = DDPMScheduler.from_config(architecture.decoder_scheduler)
        return KandinskyV22InpaintPipeline(unet=parts.inpaint_unet, scheduler=scheduler, movq=movq)

    def load_depth(movq: VQModel) -> tuple[Any, Any, KandinskyV22ControlnetPipeline]:
        """The tiny depth estimator: DPT-Hybrid's config is not among the fixtures (its time is the map's only)."""
        scheduler = DDPMScheduler.from_config(architecture.decoder_scheduler)
        estimator, processor = tiny.depth_estimator(0)
        controlnet = KandinskyV22ControlnetPipeline(unet=parts.controlnet_unet, scheduler=scheduler, movq=movq)
        return estimator, processor, controlnet

    models = KandinskyModels(prior, decoder, load_inpaint, placement, load_depth)
    models.inpaint_pipeline()  # everything loaded, as with `preload_inpaint` and `preload_depth`
    models.depth.get()
    return models


def _millions(module: torch.nn.Module) -> float:
    return sum(parameter.numel() for parameter in module.parameters()) / 1e6
