"""The sections of benchmarks/gpu.py, its budget and its time boxes; imported once CUDA is known to be there."""

from __future__ import annotations

import os
import platform
import signal
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

import diffusers
import torch
import transformers
from gpu_models import Components, assemble, build, real_architecture, tiny_architecture
from PIL import Image

from generation.config import PRESET_DEFAULTS, GenerationDefaults, Limits, PreviewSettings
from generation.engine import Engine
from generation.images import RegionMask
from generation.models import Placement
from generation.previews import decode_small
from generation.requests import GenerationRequest, Operation, make_request

GIB = 1024**3
PROMPTS = (
    "a lighthouse on a cliff at dawn",
    "a red cat asleep on a windowsill",
    "a bowl of lemons, oil painting",
    "a city street in the rain at night",
)
BATCHES = (2, 4)  # batch 1 is the txt2img figure of the operations section
OFFLOAD_RESERVE_S = 60.0  # kept for the cpu_offload section by every section before it
COMPILE_GUESS_S = 60.0  # a guess at the least a compilation takes: with less time left, compile is not started


class OutOfTime(BaseException):
    """Raised by the section's alarm; a BaseException so that no library's `except Exception` swallows it."""


def since_start() -> float:
    """Seconds since this process started (Linux), so that the budget counts the imports too."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        return float(Path("/proc/uptime").read_text().split()[0]) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def one_line(error: Exception) -> str:
    return f"{type(error).__name__}: {error}".splitlines()[0][:300]


def log(message: str) -> None:
    print(f"[{since_start():6.1f} s] {message}", file=sys.stderr, flush=True)


class Run:
    """The budget, the sections' figures, and what was skipped or failed."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self.figures: dict[str, Any] = {}
        self.skipped: dict[str, str] = {}
        self.failed: dict[str, str] = {}

    def left(self) -> float:
        return self.budget_s - since_start()

    def section(
        self, name: str, need_s: float, body: Callable[[dict[str, Any]], None], reserve_s: float = OFFLOAD_RESERVE_S
    ) -> None:
        """Run `body` if about `need_s` fits in the budget less `reserve_s`, and stop it when that runs out.

        `body` writes its figures under `name` as it measures them, so a section that fails or overruns keeps
        what it had; the failure is recorded in one line, and the run goes on.
        """
        box_s = self.left() - reserve_s
        if need_s == float("inf"):
            self.skipped[name] = "needs the operations section's txt2img figure"
        elif box_s < need_s:
            kept = f" once {reserve_s:.0f} s are kept for cpu_offload" if reserve_s else ""
            self.skipped[name] = f"{max(box_s, 0):.0f} s of the budget left{kept}, needs about {need_s:.0f} s"
        if name in self.skipped:
            log(f"{name}: skipped ({self.skipped[name]})")
            return
        log(f"{name}: started (at most {box_s:.0f} s)")
        try:
            with alarm(box_s):
                body(self.figures.setdefault(name, {}))
        except OutOfTime:
            self.failed[name] = f"stopped after its {box_s:.0f} s time box"
        except Exception as error:  # a failed section is a finding; the others still run
            traceback.print_exc(file=sys.stderr)
            self.failed[name] = one_line(error)
        log(f"{name}: {self.failed.get(name, 'done')}")


@contextmanager
def alarm(seconds: float) -> Iterator[None]:
    def expire(_signal: int, _frame: FrameType | None) -> None:
        raise OutOfTime

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Gauge:
    """Waits for the GPU and reads its memory; on the CPU (the dry run) there is nothing to read."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def reset(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    def now(self) -> dict[str, float | None]:
        if not self.cuda:
            return {"allocated_gib": None, "reserved_gib": None}
        torch.cuda.synchronize()
        return {
            "allocated_gib": _gib(torch.cuda.memory_allocated()),
            "reserved_gib": _gib(torch.cuda.memory_reserved()),
        }

    def peak(self) -> dict[str, float | None]:
        if not self.cuda:
            return {"peak_allocated_gib": None, "peak_reserved_gib": None}
        torch.cuda.synchronize()
        return {
            "peak_allocated_gib": _gib(torch.cuda.max_memory_allocated()),
            "peak_reserved_gib": _gib(torch.cuda.max_memory_reserved()),
        }


def _gib(size: int) -> float:
    return round(size / GIB, 2)


def source_image(defaults: GenerationDefaults) -> Image.Image:
    """A picture with structure (a gradient and a square) for the operations that take an image."""
    width, height = defaults.width, defaults.height
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    image.paste((200, 30, 30), (width // 4, height // 4, 3 * width // 4, 3 * height // 4))
    return image


def request(operation: Operation, defaults: GenerationDefaults, seed: int = 1) -> GenerationRequest:
    """One image at the preset's default size and steps, as a user who names nothing gets."""
    prompt = PROMPTS[seed % len(PROMPTS)]
    photo = source_image(defaults)
    inputs: dict[Operation, dict[str, Any]] = {
        Operation.TXT2IMG: {},
        Operation.IMG2IMG: {"image": photo},
        Operation.INPAINT: {"image": photo, "mask": RegionMask(25, 25, 50, 50)},
        Operation.MIX: {"mix": [prompt, photo], "weights": [0.5, 0.5]},
        Operation.OUTPAINT: {"image": photo, "zoom": 2.0},  # the Zoom out 2x button: a 1024x1024 canvas
        Operation.REMIX: {"image": photo},
        Operation.DEPTH: {"image": photo},
    }
    if operation is Operation.MIX:
        prompt = ""
    return make_request(operation, prompt, defaults=defaults, limits=Limits(), seed=seed, **inputs[operation])


def seconds(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def call(engine: Engine, batch: list[GenerationRequest]) -> Callable[[], object]:
    return lambda: engine.generate(batch)


def timed(call: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(the first call's seconds, the median of `repeats` calls after it)."""
    first = seconds(call)
    return first, statistics.median(seconds(call) for _ in range(repeats))


class Benchmark:
    """The sections, each through easel's `Engine` over `KandinskyModels` assembled from the same weights."""

    def __init__(
        self, run: Run, parts: Components, placement: Placement, defaults: GenerationDefaults, repeats: int
    ) -> None:
        self.run = run
        self.parts = parts
        self.placement = placement
        self.defaults = defaults
        self.repeats = repeats
        self.gauge = Gauge(placement.device)
        self.engine = Engine(assemble(parts, placement))
        self.one_image_s = 0.0  # txt2img, batch 1: the baseline of the UNet settings

    def operations(self, figures: dict[str, Any]) -> None:
        for operation in Operation:
            self.gauge.reset()
            single = request(operation, self.defaults)
            first, median = timed(call(self.engine, [single]), self.repeats)
            figures[str(operation)] = {"seconds_per_image": round(median, 3), "first_call_s": round(first, 3)}
            figures[str(operation)].update(self.gauge.peak())
            log(f"  {operation}: {median:.3f} s per image (first call {first:.3f} s)")
            if operation is Operation.TXT2IMG:
                self.one_image_s = median

    def batches(self, figures: dict[str, Any]) -> None:
        figures["1"] = {"images_per_s": round(1 / self.one_image_s, 3), "from": "operations.txt2img"}
        for size in BATCHES:
            self.gauge.reset()
            batch = [request(Operation.TXT2IMG, self.defaults, seed) for seed in range(size)]
            first, median = timed(call(self.engine, batch), self.repeats)
            figures[str(size)] = {"images_per_s": round(size / median, 3), "seconds_per_call": round(median, 3)}
            figures[str(size)].update(self.gauge.peak())
            log(f"  batch {size}: {size / median:.3f} images/s")

    def previews(self, figures: dict[str, Any]) -> None:
        """One live preview at the default size against the whole decode of the same latents; the share of the GPU
        at the default interval follows (the safety score of a preview, a classifier not loaded here, is left out)."""
        settings, movq = PreviewSettings(), self.parts.movq
        factor = 2 ** (len(movq.config.block_out_channels) - 1)
        shape = (1, movq.config.latent_channels, self.defaults.height // factor, self.defaults.width // factor)
        latents = torch.randn(shape, device=self.placement.device, dtype=self.placement.dtype)
        with torch.no_grad():
            for name, size in (("preview", settings.size), ("whole", max(self.defaults.width, self.defaults.height))):
                _, median = timed(lambda side=size: decode_small(movq, latents, side), self.repeats)  # ends on the CPU
                figures[f"{name}_decode_s"] = round(median, 4)
        figures["share_at_default_interval"] = round(figures["preview_decode_s"] / settings.interval_seconds, 5)
        log(f"  preview: {figures['preview_decode_s']:.4f} s, whole decode {figures['whole_decode_s']:.4f} s")

    def channels_last(self, figures: dict[str, Any]) -> None:
        """txt2img with the UNet in channels_last; the layout is put back afterwards for the later sections."""
        engine = Engine(assemble(self.parts, replace(self.placement, channels_last=True)))
        try:
            _, median = timed(call(engine, [request(Operation.TXT2IMG, self.defaults)]), self.repeats)
        finally:
            for unet in (self.parts.unet, self.parts.inpaint_unet):
                unet.to(memory_format=torch.contiguous_format)  # type: ignore[attr-defined]
        figures.update(seconds_per_image=round(median, 3), speedup=round(self.one_image_s / median, 3))
        log(f"  channels_last: {median:.3f} s per image against {self.one_image_s:.3f} s")

    def compiled(self, backend: str, figures: dict[str, Any]) -> None:
        """txt2img with the UNet compiled: the compiling first call apart, then a new batch size if time allows."""
        engine = Engine(assemble(self.parts, replace(self.placement, compile_backend=backend)))
        figures["backend"] = backend
        try:
            first = seconds(call(engine, [request(Operation.TXT2IMG, self.defaults)]))
            figures["first_call_s"] = round(first, 1)
            log(f"  compiled: first call {first:.1f} s")
            median = statistics.median(
                seconds(call(engine, [request(Operation.TXT2IMG, self.defaults)])) for _ in range(self.repeats)
            )
            figures.update(seconds_per_image=round(median, 3), speedup=round(self.one_image_s / median, 3))
            log(f"  compiled: {median:.3f} s per image against {self.one_image_s:.3f} s")
            if self.run.left() > first + OFFLOAD_RESERVE_S:
                batch = [request(Operation.TXT2IMG, self.defaults, seed) for seed in range(2)]
                figures["first_call_batch_2_s"] = round(seconds(call(engine, batch)), 1)
                log(f"  compiled, first call with a batch of 2: {figures['first_call_batch_2_s']} s")
        finally:
            torch._dynamo.reset()

    def cpu_offload(self, figures: dict[str, Any]) -> None:
        """Everything loaded with `cpu_offload`; it moves the weights to the CPU, so it comes last."""
        self.engine = Engine(assemble(self.parts, replace(self.placement, cpu_offload=True)))
        self.gauge.reset()
        figures["resident"] = self.gauge.now()
        first, median = timed(call(self.engine, [request(Operation.TXT2IMG, self.defaults)]), self.repeats)
        figures.update(seconds_per_image=round(median, 3), first_call_s=round(first, 3), **self.gauge.peak())
        log(f"  cpu_offload: {median:.3f} s per image")


def machine(device: torch.device) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "cpus": os.cpu_count(),
    }
    if device.type == "cuda":
        figures.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda)
    return figures


def run_sections(run: Run, bench: Benchmark, backend: str) -> None:
    """In order of what an operator needs first; cpu_offload last, since it moves the weights to the CPU."""
    calls = bench.repeats + 1
    run.section("operations", 0.0, bench.operations)
    one = bench.one_image_s or float("inf")
    run.section("batches", calls * sum(BATCHES) * one, bench.batches)
    run.section("previews", calls * one, bench.previews)
    run.section("channels_last", calls * one, bench.channels_last)
    run.section("compile", calls * one + COMPILE_GUESS_S, lambda figures: bench.compiled(backend, figures))
    run.section("cpu_offload", 2 * calls * one, bench.cpu_offload, reserve_s=0.0)


def benchmark(dry_run: bool, repeats: int, budget_s: float) -> dict[str, Any]:
    run = Run(budget_s)
    if dry_run:
        device, dtype, preset, backend = torch.device("cpu"), torch.float32, "tiny", "eager"
        torch.set_num_threads(1)  # the tiny models gain nothing from more, and a busy machine slows threads down
        architecture = tiny_architecture()
        # The real configs built on the meta device: no memory, but the same construction as on a GPU.
        meta = build(real_architecture(), torch.device("meta"), torch.float16)
        run.figures["real_parameters_m"] = meta.parameters_m()
    else:
        device, dtype, preset, backend = torch.device("cuda"), torch.float16, "kandinsky-2.2", "inductor"
        architecture = real_architecture()
    defaults = PRESET_DEFAULTS[preset]
    log(f"building the {preset} architectures on {device} in {dtype}")
    placement = Placement(device, dtype, cpu_offload=False, attention_slicing=False)
    started = time.perf_counter()
    try:
        parts = build(architecture, device, dtype)
        bench = Benchmark(run, parts, placement, defaults, repeats)
    except Exception as error:  # nothing else can run, but the JSON line still says why
        traceback.print_exc(file=sys.stderr)
        run.failed["build"] = one_line(error)
    else:
        run.figures["build_s"] = round(time.perf_counter() - started, 1)
        run.figures["parameters_m"] = parts.parameters_m()
        bench.gauge.reset()  # the float32 copies made while building are freed, not held in the cache
        run.figures["loaded"] = bench.gauge.now()
        log(f"built in {run.figures['build_s']} s: {run.figures['loaded']}")
        run_sections(run, bench, backend)
    return {
        "benchmark": "gpu",
        "dry_run": dry_run,
        "preset": preset,
        "dtype": str(dtype).removeprefix("torch."),
        "size": f"{defaults.width}x{defaults.height}",
        "prior_steps": defaults.prior_steps,
        "steps": defaults.steps,
        "img2img_strength": defaults.strength,
        "repeats": repeats,
        **machine(device),
        **run.figures,
        "skipped": run.skipped,
        "failed": run.failed,
        "budget_s": budget_s,
        "wall_s": round(since_start(), 1),
    }
