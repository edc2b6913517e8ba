"""GPU benchmark: the real Kandinsky 2.2 architectures through easel's engine, with random weights.

Why it exists: every figure of the real model so far is a guess. This script turns one run on a CUDA GPU
into facts: seconds per image for each operation at the preset's default size and steps (768x768, 25 prior
and 50 decoder steps, img2img strength 0.5), images per second with batches of 1, 2 and 4, GPU memory with
everything loaded and with `cpu_offload`, and what `channels_last` and `compile` ([model] settings, off by
default) gain on the UNet. The components are built from their published configs straight on the GPU in
float16 (benchmarks/gpu_models.py), so nothing is downloaded; speed does not depend on the weights' values.
They run through easel's own `KandinskyModels` and `Engine`, the code path of `easel run`.

Run it from the repository root on a machine with a CUDA GPU:

    python benchmarks/gpu.py [--repeats N] [--budget SECONDS]
    python benchmarks/gpu.py --dry-run        # the whole script on the CPU with the tiny configs

Each figure is the median of N timed calls after one untimed warm-up call. Sections run in order and each
is time-boxed so that the run ends within the budget (420 s by default, counted from the process start);
a section that does not fit is skipped, and one that fails or runs out of time is recorded, not fatal.
torch.compile's first call (the compilation) is reported apart from the timed calls. Progress goes to
stderr; the last line of stdout is one JSON object with every figure. Without CUDA, and without
--dry-run, it refuses with one line and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="the tiny configs on the CPU, to check the script")
    parser.add_argument("--repeats", type=int, default=1, help="timed calls per figure after a warm-up (default 1)")
    parser.add_argument("--budget", type=float, default=420.0, help="seconds for the whole run (default 420)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if not args.dry_run and not torch.cuda.is_available():
        print(
            f"benchmarks/gpu.py needs a CUDA GPU, and torch {torch.__version__} sees none here; "
            "--dry-run runs it on the CPU with the tiny configs",
            file=sys.stderr,
        )
        sys.exit(2)
    from gpu_sections import benchmark  # only now: transformers warns on stderr as it loads

    print(json.dumps(benchmark(args.dry_run, args.repeats, args.budget)), flush=True)
    sys.stderr.flush()
    # Every figure is out. A compilation stopped by its time box may leave inductor's worker processes
    # busy, and waiting for them at exit could overrun the budget; nothing else is left to clean up.
    os._exit(0)


if __name__ == "__main__":
    main()
