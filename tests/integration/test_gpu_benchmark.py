"""benchmarks/gpu.py as a process: its dry run goes through every section, and without CUDA it refuses in one line.

No GPU is needed: the dry run builds the tiny configs on the CPU (and the real ones on the meta device), and
CUDA is hidden from the refusal's process, so it refuses even on a machine with a GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu.py"
SECTIONS = {"operations", "batches", "previews", "channels_last", "compile", "cpu_offload"}
# Published sizes of the kandinsky-community weights, in millions of parameters (as in test_real_loading.py).
REAL_PARAMETERS_M = {
    "prior": 1026,
    "text_encoder": 695,
    "image_encoder": 1845,
    "unet": 1253,
    "inpaint_unet": 1253,
    "movq": 68,
}


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300
    )


def test_the_dry_run_goes_through_every_section_and_ends_with_one_json_line() -> None:
    done = run_script("--dry-run")
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.splitlines()[-1])
    assert (figures["benchmark"], figures["dry_run"], figures["preset"]) == ("gpu", True, "tiny")
    assert figures["failed"] == {} and figures["skipped"] == {}, done.stderr[-3000:]
    assert SECTIONS <= set(figures)
    assert set(figures["operations"]) == {"txt2img", "img2img", "inpaint", "mix", "outpaint", "remix", "depth"}
    assert all(figure["seconds_per_image"] > 0 for figure in figures["operations"].values())
    assert set(figures["batches"]) == {"1", "2", "4"}
    assert figures["compile"]["backend"] == "eager" and figures["compile"]["seconds_per_image"] > 0
    assert figures["channels_last"]["seconds_per_image"] > 0 and figures["cpu_offload"]["seconds_per_image"] > 0
    previews = figures["previews"]
    assert 0 < previews["preview_decode_s"] and 0 < previews["share_at_default_interval"] < 1
    assert figures["real_parameters_m"] == pytest.approx(REAL_PARAMETERS_M, rel=0.01)


def test_without_cuda_it_refuses_in_one_line() -> None:
    done = run_script()
    assert done.returncode == 2
    assert done.stdout == ""
    assert "needs a CUDA GPU" in done.stderr and "--dry-run" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
