"""Zoom out, pan and remix through the engine on the tiny preset: the same diffusers pipeline classes as the real
model (the inpaint decoder paints the border; the prior's emb2emb moves an image's embedding)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from PIL import Image

from generation.costs import job_cost
from generation.embeddings import remix_embeddings
from generation.engine import Engine, total_steps
from generation.requests import GenerationRequest

Build = Callable[..., GenerationRequest]


@pytest.mark.parametrize(
    ("options", "size", "box"),
    [
        ({"zoom": 2.0}, (128, 128), (32, 32, 96, 96)),
        ({"pan": "left"}, (128, 64), (64, 0, 128, 64)),
        ({"pan": "down"}, (64, 128), (0, 0, 64, 64)),
    ],
)
def test_outpaint_paints_only_the_border_and_keeps_every_source_pixel(
    engine: Engine,
    request_for: Build,
    photo: Image.Image,
    options: dict[str, object],
    size: tuple[int, int],
    box: tuple[int, int, int, int],
) -> None:
    request = request_for("outpaint", "a wide meadow", image=photo, seed=5, **options)
    (result,) = engine.generate([request])
    (image,) = result.images
    assert image.size == size
    assert np.array_equal(np.asarray(image.crop(box)), np.asarray(photo))
    border = np.asarray(image).astype(np.int16)
    border[box[1] : box[3], box[0] : box[2]] = -1
    padded = np.asarray(request.image).astype(np.int16)
    outside = border >= 0
    assert np.abs(border[outside] - padded[outside]).mean() > 5, "the border was painted, not left as filled"


def test_outpaint_is_reproducible_and_batches_alone(engine: Engine, request_for: Build, photo: Image.Image) -> None:
    first = request_for("outpaint", "a wide meadow", image=photo, seed=9, pan="right")
    second = request_for("outpaint", "a wide meadow", image=photo, seed=9, pan="right")
    (a,), (b,) = engine.generate([first]), engine.generate([second])
    assert np.array_equal(np.asarray(a.images[0]), np.asarray(b.images[0]))
    assert first.batch_key is None
    assert engine.ready(first) == engine.models.inpaint_loaded


def test_remix_runs_the_emb2emb_prior_and_the_decoder_at_the_image_size(
    engine: Engine, request_for: Build, photo: Image.Image
) -> None:
    wide = photo.resize((128, 64))
    request = request_for(
        "remix", "in watercolour", image=wide, seed=3, prior_steps=10, strength=0.5, width=128, height=64
    )
    fractions: list[float] = []
    (result,) = engine.generate([request], on_progress=lambda fraction, previews=(): fractions.append(fraction))
    assert result.images[0].size == (128, 64)
    assert total_steps([request]) == 5 + request.steps
    assert len(fractions) == total_steps([request]) and fractions[-1] == 1.0


def test_remix_strength_changes_the_result(engine: Engine, request_for: Build, photo: Image.Image) -> None:
    def remix(strength: float) -> np.ndarray:
        request = request_for("remix", "in watercolour", image=photo, seed=3, prior_steps=10, strength=strength)
        return np.asarray(engine.generate([request])[0].images[0])

    assert not np.array_equal(remix(0.2), remix(1.0))


def test_remix_without_a_negative_prompt_uses_the_blank_image_embedding(
    engine: Engine, request_for: Build, photo: Image.Image
) -> None:
    """Not `interpolate`'s random negative: the same seed gives the same image, and the negative is what the
    image encoder makes of a blank picture."""
    request = request_for("remix", "in watercolour", image=photo, seed=4, prior_steps=4)
    embeds, negative = remix_embeddings(engine.models.remix_prior, request)
    blank = engine.models.remix_prior.get_zero_embed(1, device=negative.device)
    assert torch.allclose(negative, blank)
    again, _ = remix_embeddings(engine.models.remix_prior, request)
    assert torch.equal(embeds, again)
    with_negative = request_for("remix", "in watercolour", image=photo, seed=4, prior_steps=4, negative_prompt="dark")
    (result,) = engine.generate([with_negative])
    assert result.images[0].size == (64, 64)


def test_costs_follow_the_work(request_for: Build, photo: Image.Image) -> None:
    """An outpaint costs its canvas, a remix only the prior steps its strength runs."""
    plain = request_for("img2img", "x", image=photo, strength=1.0)
    wide = request_for("outpaint", "x", image=photo, zoom=2.0)
    assert job_cost(wide) > job_cost(plain)
    light = request_for("remix", "x", image=photo, prior_steps=10, strength=0.2)
    heavy = request_for("remix", "x", image=photo, prior_steps=10, strength=1.0)
    assert job_cost(light) < job_cost(heavy)
