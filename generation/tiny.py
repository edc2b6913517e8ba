"""The `tiny` preset: Kandinsky 2.2's own component classes with a few thousand random weights.

Built offline and deterministically (seeded), so tests, benchmarks and a newcomer's first `easel run`
exercise exactly the code paths of the real model without a 21 GB download. Its images are noise.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from diffusers import DDPMScheduler, PriorTransformer, UnCLIPScheduler, UNet2DConditionModel, VQModel
from transformers import (
    CLIPImageProcessor,
    CLIPTextConfig,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
    DPTConfig,
    DPTForDepthEstimation,
    DPTImageProcessor,
)

EMBEDDING_DIM = 32
_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def tokenizer() -> CLIPTokenizer:
    """A character-level CLIP BPE tokenizer built in memory (no merges, printable ASCII)."""
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for code in range(33, 127):
        vocab.setdefault(chr(code), len(vocab))
        vocab.setdefault(chr(code) + "</w>", len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def text_encoder(seed: int, vocab_size: int) -> CLIPTextModelWithProjection:
    config = CLIPTextConfig(
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        hidden_size=EMBEDDING_DIM,
        projection_dim=EMBEDDING_DIM,
        intermediate_size=37,
        layer_norm_eps=1e-05,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=vocab_size,
        max_position_embeddings=77,
    )
    with _seeded(seed):
        return CLIPTextModelWithProjection(config).eval()


def image_encoder(seed: int) -> CLIPVisionModelWithProjection:
    config = CLIPVisionConfig(
        hidden_size=EMBEDDING_DIM,
        image_size=32,
        projection_dim=EMBEDDING_DIM,
        intermediate_size=37,
        num_attention_heads=4,
        num_channels=3,
        num_hidden_layers=2,
        patch_size=8,
    )
    with _seeded(seed):
        return CLIPVisionModelWithProjection(config).eval()


def image_processor() -> CLIPImageProcessor:
    return CLIPImageProcessor(
        crop_size=32,
        size=32,
        do_center_crop=True,
        do_normalize=True,
        do_resize=True,
        image_mean=_CLIP_MEAN,
        image_std=_CLIP_STD,
        resample=3,
    )


def prior(seed: int) -> PriorTransformer:
    with _seeded(seed):
        model = PriorTransformer(
            num_attention_heads=2, attention_head_dim=12, embedding_dim=EMBEDDING_DIM, num_layers=1
        )
        # The real prior stores CLIP statistics here; ones keep random outputs in a sane range.
        model.clip_std = torch.nn.Parameter(torch.ones(model.clip_std.shape))
    return model.eval()


def prior_scheduler() -> UnCLIPScheduler:
    return UnCLIPScheduler(
        variance_type="fixed_small_log",
        prediction_type="sample",
        num_train_timesteps=1000,
        clip_sample=True,
        clip_sample_range=10.0,
    )


def unet(seed: int, in_channels: int, addition: str = "image") -> UNet2DConditionModel:
    """The decoder UNet; 4 input channels for txt2img/img2img, 9 (latents, masked image, mask) for inpaint, 8
    (latents and the depth hint's features, `addition="image_hint"`) for the depth ControlNet."""
    with _seeded(seed):
        return UNet2DConditionModel(
            in_channels=in_channels,
            out_channels=8,  # Kandinsky predicts a learned variance beside the noise
            addition_embed_type=addition,
            down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
            up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
            mid_block_type="UNetMidBlock2DSimpleCrossAttn",
            block_out_channels=(32, 64),
            layers_per_block=1,
            encoder_hid_dim=EMBEDDING_DIM,
            encoder_hid_dim_type="image_proj",
            cross_attention_dim=32,
            attention_head_dim=32,
            resnet_time_scale_shift="scale_shift",
            class_embed_type=None,
        ).eval()


def movq(seed: int) -> VQModel:
    """Four levels, as the real MoVQ has: latents 8 times smaller than the image, so that the UNet's work grows
    with the image as the real one's does (with two levels, a 768x512 request took the tiny UNet minutes)."""
    with _seeded(seed):
        return VQModel(
            block_out_channels=[32, 32, 32, 64],
            down_block_types=[
                "DownEncoderBlock2D",
                "DownEncoderBlock2D",
                "DownEncoderBlock2D",
                "AttnDownEncoderBlock2D",
            ],
            in_channels=3,
            latent_channels=4,
            layers_per_block=1,
            norm_num_groups=8,
            norm_type="spatial",
            num_vq_embeddings=12,
            out_channels=3,
            up_block_types=["AttnUpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
            vq_embed_dim=4,
        ).eval()


def decoder_scheduler() -> DDPMScheduler:
    return DDPMScheduler(
        num_train_timesteps=1000,
        beta_schedule="linear",
        beta_start=0.00085,
        beta_end=0.012,
        clip_sample=False,
        steps_offset=1,
        prediction_type="epsilon",
        thresholding=False,
    )


def depth_estimator(seed: int) -> tuple[DPTForDepthEstimation, DPTImageProcessor]:
    """A DPT depth estimator (the real default's family) on 32x32 inputs, and its image processor."""
    config = DPTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=EMBEDDING_DIM,
        num_hidden_layers=4,
        backbone_out_indices=[0, 1, 2, 3],
        num_attention_heads=4,
        intermediate_size=37,
        neck_hidden_sizes=[16, 16, 32, 32],
        fusion_hidden_size=16,
    )
    with _seeded(seed):
        model = DPTForDepthEstimation(config).eval()
    return model, DPTImageProcessor(size={"height": 32, "width": 32}, keep_aspect_ratio=False)
