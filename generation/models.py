"""Loading Kandinsky 2.2 once, with every weight shared between the operations.

The prior (with its text and image encoders) serves every operation, remix through its emb2emb form; the
decoder's UNet and MoVQ serve txt2img, img2img and remix; the inpaint decoder brings only its own 9-channel UNet
and borrows the MoVQ, and is loaded the first time an inpaint or outpaint is asked for unless `preload_inpaint`
is set; the depth ControlNet decoder (its UNet, borrowing the MoVQ too) and the depth estimator likewise for depth.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import torch
from diffusers import (
    DiffusionPipeline,
    KandinskyV22ControlnetImg2ImgPipeline,
    KandinskyV22ControlnetPipeline,
    KandinskyV22Img2ImgPipeline,
    KandinskyV22InpaintPipeline,
    KandinskyV22Pipeline,
    KandinskyV22PriorEmb2EmbPipeline,
    KandinskyV22PriorPipeline,
    VQModel,
)
from diffusers.image_processor import VaeImageProcessor

from generation import tiny
from generation.config import ModelSettings
from generation.depth import DepthModels
from generation.errors import ModelLoadError
from generation.hub import load_failure
from generation.lazy import LazyLoad

log = logging.getLogger(__name__)

PipelineT = TypeVar("PipelineT", bound=DiffusionPipeline)
_PRIORS = (KandinskyV22PriorPipeline, KandinskyV22PriorEmb2EmbPipeline)
"""Pipelines without a UNet: attention slicing has nothing to slice in them."""
InpaintLoader = Callable[[VQModel], KandinskyV22InpaintPipeline]
DepthLoader = Callable[[VQModel], tuple[Any, Any, KandinskyV22ControlnetPipeline]]
"""Given the MoVQ to share: the depth estimator, its image processor and the ControlNet decoder."""


@dataclass(frozen=True)
class Placement:
    device: torch.device
    dtype: torch.dtype
    cpu_offload: bool
    attention_slicing: bool
    channels_last: bool = False
    compile_backend: str | None = None  # torch.compile's backend for the UNets; None runs them eagerly

    def apply(self, pipe: DiffusionPipeline) -> None:
        pipe.set_progress_bar_config(disable=True)
        if pipe.dtype != self.dtype:
            pipe.to(dtype=self.dtype)
        if self.attention_slicing and not isinstance(pipe, _PRIORS):
            pipe.enable_attention_slicing()
        if self.cpu_offload:
            pipe.enable_model_cpu_offload(device=self.device)
        else:
            pipe.to(self.device)

    def tune_unet(self, unet: torch.nn.Module) -> torch.nn.Module:
        """The UNet in the memory layout and compiled form asked for: only the UNet runs long enough to gain.

        Compiling wraps the UNet (`torch.compile(unet)`, as diffusers does) rather than compiling it in place:
        the engine's step hooks then sit on the wrapper and run as plain Python outside the compiled graph, and
        the pipelines that share this UNet share the wrapper, so it compiles once per input shape.
        """
        if self.channels_last:
            unet.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs omit it
        if self.compile_backend is None:
            return unet
        return cast(torch.nn.Module, torch.compile(unet, backend=self.compile_backend))


def _keep_input_size(img2img: KandinskyV22Img2ImgPipeline | KandinskyV22ControlnetImg2ImgPipeline) -> None:
    """Stop img2img from resizing its input image, because diffusers 0.42.1 swaps the size it resizes to.

    `pipeline_kandinsky2_2_img2img.py` calls `image_processor.preprocess(i, width, height)`, whose signature is
    `(image, height, width)`: the input was resized to height x width, and a non-square result came out
    transposed. easel fits every input to the output size before it reaches the engine
    (`generation.requests.make_request`), so the resize is not needed, and without it the order of the two
    arguments no longer matters. The other pipelines easel uses are right in 0.42.1: the decoder and the
    inpaint decoder pass (height, width) in order, and the prior (its `interpolate` for mix included) takes
    no size. Remove this once diffusers passes the size by name; tests/integration/test_engine.py checks
    every operation's output size.
    """
    img2img.image_processor = VaeImageProcessor.from_config(img2img.image_processor.config, do_resize=False)


def pick_device(setting: str) -> torch.device:
    """CUDA, then Apple's MPS, then the CPU, unless the config names one."""
    if setting != "auto":
        return torch.device(setting)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(setting: str, device: torch.device) -> torch.dtype:
    """Half precision on CUDA, where it halves memory at no visible cost; full precision elsewhere."""
    if setting != "auto":
        return getattr(torch, setting)
    return torch.float16 if device.type == "cuda" else torch.float32


def placement_for(settings: ModelSettings) -> Placement:
    device = pick_device(settings.device)
    offload = settings.cpu_offload and device.type == "cuda"
    if settings.cpu_offload and not offload:
        log.warning("cpu_offload needs a CUDA device; running everything on %s instead", device)
    return Placement(
        device,
        pick_dtype(settings.dtype, device),
        offload,
        settings.attention_slicing,
        channels_last=settings.channels_last,
        compile_backend="inductor" if settings.compile else None,
    )


class KandinskyModels:
    """The loaded pipelines; one instance per process, used only from the engine's thread."""

    def __init__(
        self,
        prior: KandinskyV22PriorPipeline,
        decoder: KandinskyV22Pipeline,
        load_inpaint: InpaintLoader,
        placement: Placement,
        load_depth: DepthLoader | None = None,
    ) -> None:
        self.placement = placement
        self.prior = prior
        self.decoder = decoder
        self.img2img = KandinskyV22Img2ImgPipeline(unet=decoder.unet, scheduler=decoder.scheduler, movq=decoder.movq)
        _keep_input_size(self.img2img)
        self.remix_prior = KandinskyV22PriorEmb2EmbPipeline(**prior.components)
        for pipe in (prior, self.remix_prior, decoder, self.img2img):
            placement.apply(pipe)
        decoder.unet = self.img2img.unet = placement.tune_unet(decoder.unet)
        self._load_inpaint = load_inpaint
        self._load_depth = load_depth
        self.inpaint = LazyLoad("the inpaint decoder", self._placed_inpaint)
        self.depth = LazyLoad("the depth ControlNet decoder and depth estimator", self._placed_depth)

    @property
    def device(self) -> torch.device:
        return self.placement.device

    @property
    def inpaint_loaded(self) -> bool:
        return self.inpaint.loaded

    def inpaint_pipeline(self) -> KandinskyV22InpaintPipeline:
        """The inpaint pipeline, loading its decoder on the first call (or waiting for the load started ahead)."""
        return self.inpaint.get()

    def _placed_inpaint(self) -> KandinskyV22InpaintPipeline:
        pipe = self._load_inpaint(self.decoder.movq)
        self.placement.apply(pipe)
        pipe.unet = self.placement.tune_unet(pipe.unet)
        return pipe

    def _placed_depth(self) -> DepthModels:
        """The ControlNet decoder (borrowing the MoVQ), its img2img form sharing its UNet, and the estimator."""
        if self._load_depth is None:
            raise ModelLoadError("depth-guided generation is not set up in this process")
        estimator, processor, decoder = self._load_depth(self.decoder.movq)
        parts = {"unet": decoder.unet, "scheduler": decoder.scheduler, "movq": decoder.movq}
        img2img = KandinskyV22ControlnetImg2ImgPipeline(**parts)
        _keep_input_size(img2img)
        for pipe in (decoder, img2img):
            self.placement.apply(pipe)
        decoder.unet = img2img.unet = self.placement.tune_unet(decoder.unet)
        estimator.to(device=self.placement.device, dtype=self.placement.dtype).eval()
        return DepthModels(estimator, processor, decoder, img2img)


def load_models(settings: ModelSettings) -> KandinskyModels:
    if settings.threads:
        torch.set_num_threads(settings.threads)
    placement = placement_for(settings)
    if settings.preset == "tiny":
        models = _tiny_models(settings.tiny_seed, placement)
    else:
        models = _pretrained_models(settings, placement)
    if settings.preload_inpaint:
        models.inpaint_pipeline()
    if settings.preload_depth:
        models.depth.get()
    log.info("model %s ready on %s (%s)", settings.preset, placement.device, placement.dtype)
    return models


def _pretrained_models(settings: ModelSettings, placement: Placement) -> KandinskyModels:
    """Hub ids or local directories, in the layout of the kandinsky-community repositories."""
    options: dict[str, Any] = {
        "dtype": placement.dtype,
        "cache_dir": settings.cache_dir,
        "local_files_only": settings.local_files_only,
    }
    prior = _from_pretrained(KandinskyV22PriorPipeline, "model.prior", settings.prior, options)
    decoder = _from_pretrained(KandinskyV22Pipeline, "model.decoder", settings.decoder, options)

    def load_inpaint(movq: VQModel) -> KandinskyV22InpaintPipeline:
        log.info("the inpaint decoder comes from %s", settings.inpaint_decoder)
        inpaint = {**options, "movq": movq}
        return _from_pretrained(KandinskyV22InpaintPipeline, "model.inpaint_decoder", settings.inpaint_decoder, inpaint)

    def load_depth(movq: VQModel) -> tuple[Any, Any, KandinskyV22ControlnetPipeline]:
        source = settings.controlnet_depth_decoder
        log.info("the depth models come from %s and %s", source, settings.depth_estimator)
        controlnet = _from_pretrained(
            KandinskyV22ControlnetPipeline, "model.controlnet_depth_decoder", source, {**options, "movq": movq}
        )
        estimator, processor = _depth_estimator(settings)
        return estimator, processor, controlnet

    return KandinskyModels(prior, decoder, load_inpaint, placement, load_depth)


def _depth_estimator(settings: ModelSettings) -> tuple[Any, Any]:
    """Any transformers depth-estimation model and its image processor (the slow one, which needs no torchvision)."""
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation

    source, cache, offline = settings.depth_estimator, settings.cache_dir, settings.local_files_only
    try:
        model = AutoModelForDepthEstimation.from_pretrained(source, cache_dir=cache, local_files_only=offline)
        processor = AutoImageProcessor.from_pretrained(
            source, use_fast=False, cache_dir=cache, local_files_only=offline
        )
    except (OSError, ValueError) as error:
        raise load_failure("model.depth_estimator", settings.depth_estimator, error, "depth estimator") from error
    return model, processor


def _from_pretrained(pipeline: type[PipelineT], setting: str, source: str, options: dict[str, Any]) -> PipelineT:
    try:
        return pipeline.from_pretrained(source, **options)
    except (OSError, ValueError) as error:
        raise load_failure(setting, source, error, pipeline.__name__) from error


def _tiny_models(seed: int, placement: Placement) -> KandinskyModels:
    tokenizer = tiny.tokenizer()
    prior = KandinskyV22PriorPipeline(
        prior=tiny.prior(seed),
        image_encoder=tiny.image_encoder(seed + 1),
        text_encoder=tiny.text_encoder(seed + 2, vocab_size=len(tokenizer)),
        tokenizer=tokenizer,
        scheduler=tiny.prior_scheduler(),
        image_processor=tiny.image_processor(),
    )
    decoder = KandinskyV22Pipeline(
        unet=tiny.unet(seed + 3, in_channels=4), scheduler=tiny.decoder_scheduler(), movq=tiny.movq(seed + 4)
    )

    def load_inpaint(movq: VQModel) -> KandinskyV22InpaintPipeline:
        return KandinskyV22InpaintPipeline(
            unet=tiny.unet(seed + 5, in_channels=9), scheduler=tiny.decoder_scheduler(), movq=movq
        )

    def load_depth(movq: VQModel) -> tuple[Any, Any, KandinskyV22ControlnetPipeline]:
        unet = tiny.unet(seed + 6, in_channels=8, addition="image_hint")
        controlnet = KandinskyV22ControlnetPipeline(unet=unet, scheduler=tiny.decoder_scheduler(), movq=movq)
        estimator, processor = tiny.depth_estimator(seed + 7)
        return estimator, processor, controlnet

    return KandinskyModels(prior, decoder, load_inpaint, placement, load_depth)
