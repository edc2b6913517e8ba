"""The weights easel loads, fetched ahead of time (`easel models download`), and the one line that says so when
they are missing.

Each hub repository holds every weight twice, as `.safetensors` and as pickled `.bin` (and some in half precision
besides): only the safetensors of the components easel loads are fetched, so the real model is about half the
download. The files go through huggingface_hub, which shows progress and resumes what an interruption left.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from generation.config import ModelSettings, SafetySettings, TranslationSettings, uses_tiny
from generation.errors import ModelLoadError

CONFIG_SUFFIXES = (".json", ".txt", ".model")
"""Configs, tokenizer vocabularies and merges, sentencepiece models."""
WEIGHT_SUFFIX = ".safetensors"
FALLBACK_WEIGHT_SUFFIX = ".bin"
VARIANTS = (".fp16.", ".bf16.", ".fp32.")
"""Other precisions of the same weights; the loaders read the plain files."""


@dataclass(frozen=True)
class Source:
    """One repository easel loads, where its setting names it, and the folders of it that it reads (None: all)."""

    setting: str
    repo_id: str
    folders: tuple[str, ...] | None = None

    @property
    def directory_name(self) -> str:
        return self.repo_id.rsplit("/", 1)[-1]


class WeightsMissing(ModelLoadError):
    """The weights are neither a local directory nor in the cache, and cannot be downloaded now."""

    def __init__(self, setting: str, source: str) -> None:
        super().__init__(
            f"{setting}: the weights of {source} are not on this machine and cannot be downloaded now. Fetch them "
            "with `easel models download` (where there is a network; it prints the config lines that point at "
            "them), or try easel without them: EASEL_MODEL__PRESET=tiny"
        )


def sources(model: ModelSettings, translation: TranslationSettings, safety: SafetySettings) -> list[Source]:
    """What the configured operations load; a local directory needs no download and is left out."""
    found: list[Source] = []
    if model.preset != "tiny":
        found += [
            Source("model.prior", model.prior),
            Source("model.decoder", model.decoder, ("unet", "movq", "scheduler")),
            Source("model.inpaint_decoder", model.inpaint_decoder, ("unet", "scheduler")),  # the decoder's MoVQ
            Source("model.controlnet_depth_decoder", model.controlnet_depth_decoder, ("unet", "scheduler")),
            Source("model.depth_estimator", model.depth_estimator),
        ]
    if translation.enabled and not uses_tiny(translation.preset, model):
        found.append(Source("translation.model", translation.model))
    if safety.enabled and not uses_tiny(safety.preset, model):
        found.append(Source("safety.model", safety.model))
    return [source for source in found if not Path(source.repo_id).exists()]


def wanted_files(source: Source, files: Sequence[str]) -> list[str]:
    """Of a repository's files, those its loader reads: configs, and each folder's weights as safetensors, as
    `.bin` only in a folder that has no safetensors."""
    chosen: list[str] = []
    weights: dict[str, list[str]] = {}
    for name in files:
        path = PurePosixPath(name)
        folder = str(path.parent) if len(path.parts) > 1 else ""
        if source.folders is not None and folder and path.parts[0] not in source.folders:
            continue
        if any(variant in path.name for variant in VARIANTS):
            continue
        if path.suffix in CONFIG_SUFFIXES:
            chosen.append(name)
        elif path.suffix in (WEIGHT_SUFFIX, FALLBACK_WEIGHT_SUFFIX) and "/" not in folder:
            weights.setdefault(folder, []).append(name)
    for folder_weights in weights.values():
        safe = [name for name in folder_weights if name.endswith(WEIGHT_SUFFIX)]
        chosen += safe or folder_weights
    return sorted(chosen)


def download(
    model: ModelSettings,
    translation: TranslationSettings,
    safety: SafetySettings,
    to: Path | None,
    report: Callable[[str], None] = print,
) -> list[tuple[Source, Path]]:
    """Fetch every configured source's files; where they went, by source."""
    from huggingface_hub import HfApi, snapshot_download

    api = HfApi()
    fetched = []
    for source in sources(model, translation, safety):
        listing = [sibling.rfilename for sibling in api.model_info(source.repo_id).siblings or []]
        files = wanted_files(source, listing)
        skipped = len(listing) - len(files)
        report(f"{source.setting}: {source.repo_id}, {len(files)} file(s) ({skipped} not needed are left out)")
        if any(name.endswith(FALLBACK_WEIGHT_SUFFIX) for name in files):
            report(f"{source.setting}: {source.repo_id} has no safetensors for some weights; their .bin is fetched")
        target = to / source.directory_name if to is not None else None
        where = snapshot_download(
            source.repo_id, allow_patterns=files, local_dir=target, cache_dir=model.cache_dir if to is None else None
        )
        fetched.append((source, Path(where)))
    return fetched


def config_lines(fetched: Sequence[tuple[Source, Path]], into_directory: bool) -> Iterator[str]:
    """The config.toml lines that make easel load what was fetched without the network."""
    sections: dict[str, list[str]] = {}
    for source, where in fetched:
        section, key = source.setting.split(".")
        lines = sections.setdefault(section, [])
        if into_directory:
            lines.append(f'{key} = "{where}"')
    for section, lines in sections.items():
        yield f"[{section}]"
        yield from lines
        yield "local_files_only = true"


def unreachable(error: BaseException) -> bool:
    """Whether loading failed for want of the network or of cached files, rather than for bad files."""
    seen: BaseException | None = error
    while seen is not None:
        name = type(seen).__name__
        text = str(seen)
        if isinstance(seen, socket.gaierror | ConnectionError | TimeoutError) or "Connect" in name:
            return True
        if "LocalEntryNotFound" in name or "OfflineModeIsEnabled" in name or "cached" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def load_failure(setting: str, source: str, error: BaseException, what: str) -> ModelLoadError:
    """The error to raise when `what` cannot be loaded from `source`: one line that says what to do."""
    if not Path(source).exists() and unreachable(error):
        return WeightsMissing(setting, source)
    return ModelLoadError(f"cannot load {what} from {source}: {error}")
