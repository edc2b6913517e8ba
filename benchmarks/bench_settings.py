"""Settings the benchmarks share: the tiny preset over a SQLite file and a file store in a scratch directory."""

from __future__ import annotations

from pathlib import Path

from bots.config import Settings, load_settings

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
"""What would send the benchmarks' calls to the fake platform servers on 127.0.0.1 through a proxy."""


def bench_settings(root: Path, jobs: int) -> Settings:
    """Storage in `root`, and caps and quotas high enough that none of `jobs` is refused."""
    settings = load_settings(None, environ={"EASEL_MODEL__PRESET": "tiny"})
    storage = settings.storage.model_copy(
        update={"database_url": f"sqlite+aiosqlite:///{root / 'easel.db'}", "outputs_dir": root / "files"}
    )
    queue = settings.queue.model_copy(update={"max_pending_per_user": jobs, "max_queue": jobs})
    tier = settings.tier("default").model_copy(update={"images_per_day": 1_000_000, "gpu_seconds_per_day": 1e9})
    return settings.model_copy(
        update={"storage": storage, "queue": queue, "tiers": {**settings.tiers, "default": tier}}
    )
