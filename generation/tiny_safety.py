"""The `tiny` safety preset: ViT image-classification classes with small seeded random weights.

Built offline and deterministically, so tests and the tiny `easel run` exercise the production
scoring code without downloading a classifier. Its weights are random, so what it says about a picture
means nothing; `bias` decides its scores instead: the random logits stay within a few hundredths of
zero, and `bias` is added to the `nsfw` logit, so every image scores about 1 / (1 + exp(-bias)).
"""

from __future__ import annotations

import torch
from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessorPil

LABELS = ("normal", "nsfw")
_IMAGE_SIZE = 32


def image_processor() -> ViTImageProcessorPil:
    return ViTImageProcessorPil(size={"height": _IMAGE_SIZE, "width": _IMAGE_SIZE})


def model(seed: int, bias: float) -> ViTForImageClassification:
    config = ViTConfig(
        image_size=_IMAGE_SIZE,
        patch_size=8,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        id2label=dict(enumerate(LABELS)),
        label2id={label: index for index, label in enumerate(LABELS)},
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        classifier = ViTForImageClassification(config).eval()
    with torch.no_grad():
        classifier.classifier.bias.copy_(torch.tensor([0.0, bias]))
    return classifier
