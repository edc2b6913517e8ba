"""Texts built from several values, shared by every adapter so that each platform says the same thing."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from bots.service import JobEvent, JobSummary, QueueEntry, QuotaStatus, short_id
from bots.texts import render

_PREFERENCE_NAMES = {
    "width": "--width",
    "height": "--height",
    "steps": "--steps",
    "prior_steps": "--prior-steps",
    "guidance_scale": "--guidance",
    "prior_guidance_scale": "prior guidance",
    "negative_prompt": "--neg",
    "count": "--count",
}


def eta_text(seconds: float | None, language: str | None = None) -> str:
    if seconds is None or seconds < 5:
        return render("eta.moment", language)
    if seconds < 90:
        return render("eta.seconds", language, seconds=math.ceil(seconds))
    return render("eta.minutes", language, minutes=math.ceil(seconds / 60))


def queued_text(position: int | None, eta_seconds: float | None, language: str | None = None) -> str:
    return render("status.queued", language, position=position or 1, eta=eta_text(eta_seconds, language))


def progress_text(fraction: float, language: str | None = None) -> str:
    return render("status.progress", language, percent=int(fraction * 100))


def result_caption(event: JobEvent, limit: int = 1024) -> str:
    """The prompt, the seeds and the short job id, cut to the platform's caption limit (prompt first)."""
    seeds = ", ".join(str(seed) for seed in event.seeds)
    caption = render("result.caption", event.language, prompt=event.prompt, seeds=seeds, job_id=short_id(event.job_id))
    if len(caption) <= limit:
        return caption
    overflow = len(caption) - limit + 1
    prompt = event.prompt[: max(0, len(event.prompt) - overflow)] + "…"
    return render("result.caption", event.language, prompt=prompt, seeds=seeds, job_id=short_id(event.job_id))


def preferences_text(preferences: Mapping[str, Any]) -> str:
    return ", ".join(f"{_PREFERENCE_NAMES.get(key, key)} {value}" for key, value in sorted(preferences.items()))


def history_lines(jobs: Sequence[JobSummary], language: str | None = None) -> list[str]:
    return [
        render(
            "history.line",
            language,
            job_id=short_id(job.job_id),
            state=render(f"state.{job.state}", language),
            operation=render(f"operation.{job.operation}", language),
            seed=job.seed,
            prompt=job.prompt,
        )
        for job in jobs
    ]


def queue_lines(entries: Sequence[QueueEntry], language: str | None = None) -> list[str]:
    return [
        render("queue.running_line", language, job_id=short_id(entry.job_id), prompt=entry.prompt)
        if entry.state == "running"
        else render(
            "queue.line",
            language,
            job_id=short_id(entry.job_id),
            state=render(f"state.{entry.state}", language),
            position=entry.position or 1,
            eta=eta_text(entry.eta_seconds, language),
            prompt=entry.prompt,
        )
        for entry in entries
    ]


def quota_text(status: QuotaStatus, language: str | None = None) -> str:
    return render(
        "quota.status",
        language,
        images=status.images,
        images_limit=status.images_limit,
        seconds=status.gpu_seconds,
        seconds_limit=int(status.gpu_seconds_limit),
    )
