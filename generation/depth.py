"""Depth-guided generation: "keep the shape of this image, change everything else".

A depth estimator (any transformers depth-estimation model; Intel's DPT-Hybrid MiDaS by default) turns the input
into a depth map, which Kandinsky 2.2's depth ControlNet decoder follows while the prompt decides the rest: from
noise (`KandinskyV22ControlnetPipeline`), or with a strength from the input itself
(`KandinskyV22ControlnetImg2ImgPipeline`, which shares the ControlNet's UNet). The map is scaled as transformers'
depth-estimation pipeline scales it (divided by its largest value), the input the ControlNet was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from diffusers import KandinskyV22ControlnetImg2ImgPipeline, KandinskyV22ControlnetPipeline
from PIL import Image


@dataclass(frozen=True)
class DepthModels:
    estimator: Any
    """A transformers model with a `predicted_depth` output (`AutoModelForDepthEstimation`)."""
    processor: Any
    """Its image processor."""
    decoder: KandinskyV22ControlnetPipeline
    img2img: KandinskyV22ControlnetImg2ImgPipeline

    @torch.no_grad()
    def hints(self, images: list[Image.Image], width: int, height: int) -> torch.Tensor:
        """Each image's depth map at the output size, as the ControlNet takes it: three equal channels in [0, 1]."""
        parameter = next(self.estimator.parameters())
        inputs = self.processor(images=images, return_tensors="pt")
        pixels = inputs["pixel_values"].to(device=parameter.device, dtype=parameter.dtype)
        depth = self.estimator(pixel_values=pixels).predicted_depth.float()
        depth = torch.nn.functional.interpolate(depth[:, None], size=(height, width), mode="bicubic")
        depth = depth.clamp_min(0)
        depth = depth / depth.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-8)
        return depth.repeat(1, 3, 1, 1)
