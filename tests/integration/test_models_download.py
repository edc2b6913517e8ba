"""`easel models download` against a hub on 127.0.0.1 that serves the tiny preset saved in the hub layout, with
the pickled `.bin` and half-precision copies the real repositories hold beside every safetensors file."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fake_hub import serving

from generation.config import ModelSettings, SafetySettings, TranslationSettings
from generation.hub import Source, sources, wanted_files
from generation.models import KandinskyModels, load_models

ROOT = Path(__file__).resolve().parents[2]
EASEL = [sys.executable, "-c", "import sys; from bots.cli import main; sys.exit(main())"]


@pytest.fixture(scope="module")
def hub_layout(tmp_path_factory: pytest.TempPathFactory, tiny_models: KandinskyModels) -> Path:
    root = tmp_path_factory.mktemp("hub")
    community = root / "kandinsky-community"
    tiny_models.prior.save_pretrained(community / "kandinsky-2-2-prior")
    tiny_models.decoder.save_pretrained(community / "kandinsky-2-2-decoder")
    tiny_models.inpaint_pipeline().save_pretrained(community / "kandinsky-2-2-decoder-inpaint")
    depth = tiny_models.depth.get()
    depth.decoder.save_pretrained(community / "kandinsky-2-2-controlnet-depth")
    depth.estimator.save_pretrained(root / "Intel" / "dpt-hybrid-midas")
    depth.processor.save_pretrained(root / "Intel" / "dpt-hybrid-midas")
    for weights in list(root.rglob("*.safetensors")):
        weights.with_suffix(".bin").write_bytes(b"pickled copy")
        weights.with_name(weights.name.replace(".safetensors", ".fp16.safetensors")).write_bytes(b"half copy")
    (community / "kandinsky-2-2-prior" / "README.md").write_text("a model card")
    return root


def download(hub_url: str, workdir: Path, *options: str) -> subprocess.CompletedProcess[str]:
    config = workdir / "config.toml"
    config.write_text("[translation]\nenabled = false\n[safety]\nenabled = false\n")
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("EASEL_", "HF_", "TRANSFORMERS_"))
    }
    environment |= {"HF_ENDPOINT": hub_url, "HF_HOME": str(workdir / "hf"), "PYTHONPATH": str(ROOT)}
    command = [*EASEL, "--config", str(config), "models", "download", *options]
    return subprocess.run(command, capture_output=True, text=True, env=environment, cwd=workdir, timeout=120)


def test_only_the_safetensors_the_loaders_read_are_fetched_and_they_load_offline(
    hub_layout: Path, tmp_path: Path, tiny_models: KandinskyModels, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "weights"
    with serving(hub_layout) as hub:
        result = download(hub.url, tmp_path, "--to", str(target))
        assert result.returncode == 0, result.stderr
        fetched = sorted(str(path.relative_to(target)) for path in target.rglob("*") if ".cache" not in path.parts)
        fetched = [name for name in fetched if (target / name).is_file()]
        assert fetched and not any(name.endswith((".bin", ".fp16.safetensors", ".md")) for name in fetched)
        assert "kandinsky-2-2-decoder-inpaint/unet/diffusion_pytorch_model.safetensors" in fetched
        assert not any(name.startswith("kandinsky-2-2-decoder-inpaint/movq") for name in fetched)  # shared
        assert sum(count for name, count in hub.downloads.items() if name.endswith(".safetensors")) == sum(
            name.endswith(".safetensors") for name in fetched
        )
        sent = sum(hub.downloads.values())
        again = download(hub.url, tmp_path, "--to", str(target))
        assert again.returncode == 0, again.stderr
        assert sum(hub.downloads.values()) == sent  # complete files are not fetched twice
    lines = result.stdout.splitlines()
    assert "  [model]" in lines and "  local_files_only = true" in lines
    assert f'  prior = "{target / "kandinsky-2-2-prior"}"' in lines
    assert f'  inpaint_decoder = "{target / "kandinsky-2-2-decoder-inpaint"}"' in lines

    settings = ModelSettings(
        prior=str(target / "kandinsky-2-2-prior"),
        decoder=str(target / "kandinsky-2-2-decoder"),
        inpaint_decoder=str(target / "kandinsky-2-2-decoder-inpaint"),
        controlnet_depth_decoder=str(target / "kandinsky-2-2-controlnet-depth"),
        depth_estimator=str(target / "dpt-hybrid-midas"),
        local_files_only=True,
        device="cpu",
    )
    loaded = load_models(settings)
    inpaint = loaded.inpaint_pipeline()
    original = tiny_models.inpaint_pipeline()
    for mine, theirs in zip(inpaint.unet.parameters(), original.unet.parameters(), strict=True):
        assert torch.equal(mine, theirs)
    caplog.set_level(logging.INFO, logger="generation")
    depth, original_depth = loaded.depth.get(), tiny_models.depth.get()
    said = caplog.text  # what a lazy load fetches, and from where, is in the log
    assert f"the depth models come from {settings.controlnet_depth_decoder} and {settings.depth_estimator}" in said
    assert "the depth ControlNet decoder and depth estimator loaded in" in said
    for module, theirs_module in (
        (depth.decoder.unet, original_depth.decoder.unet),
        (depth.estimator, original_depth.estimator),
    ):
        for mine, theirs in zip(module.parameters(), theirs_module.parameters(), strict=True):
            assert torch.equal(mine, theirs)


def test_a_hub_that_cannot_be_reached_is_one_line(tmp_path: Path) -> None:
    result = download("http://127.0.0.1:9", tmp_path)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("easel: error: the hub cannot be reached")


def test_a_folder_without_safetensors_falls_back_to_its_bin_and_local_directories_need_nothing(tmp_path: Path) -> None:
    listing = ["config.json", "pytorch_model.bin", "sentencepiece.bpe.model", "vocab.json", "flax_model.msgpack"]
    assert wanted_files(Source("translation.model", "facebook/m2m100_418M"), listing) == [
        "config.json",
        "pytorch_model.bin",
        "sentencepiece.bpe.model",
        "vocab.json",
    ]
    sharded = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"]
    assert wanted_files(Source("safety.model", "a/b"), [*sharded, "pytorch_model.bin"]) == sorted(sharded)
    local = ModelSettings(
        prior=str(tmp_path),
        decoder=str(tmp_path),
        inpaint_decoder=str(tmp_path),
        controlnet_depth_decoder=str(tmp_path),
        depth_estimator=str(tmp_path),
    )
    assert sources(local, TranslationSettings(enabled=False), SafetySettings(enabled=False)) == []
    assert [source.setting for source in sources(ModelSettings(), TranslationSettings(), SafetySettings())] == [
        "model.prior",
        "model.decoder",
        "model.inpaint_decoder",
        "model.controlnet_depth_decoder",
        "model.depth_estimator",
        "translation.model",
        "safety.model",
    ]
    assert sources(ModelSettings(preset="tiny"), TranslationSettings(), SafetySettings()) == []
