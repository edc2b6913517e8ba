"""Texts built from several values, shared by every adapter so that each platform says the same thing."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from bots.core.languages import LanguageChoice
from bots.core.styles import StyleList
from bots.core.types import Cancellation, JobEvent, JobSummary, QueueEntry, QuotaStatus, short_id
from bots.texts import OPTION_NAMES, language_name, languages_list, render, shortened


def eta_text(seconds: float | None, language: str | None = None) -> str:
    if seconds is None or seconds < 5:
        return render("eta.moment", language)
    if seconds < 90:
        return render("eta.seconds", language, seconds=math.ceil(seconds))
    return render("eta.minutes", language, minutes=math.ceil(seconds / 60))


def queued_text(position: int | None, eta_seconds: float | None, language: str | None = None) -> str:
    return render("status.queued", language, position=position or 1, eta=eta_text(eta_seconds, language))


EXPLAINED_FAILURES = frozenset({"queue.refused", "moderation.blocked", "moderation.nsfw"})
"""Failures whose own text tells the user more than "it failed" (and needs no values)."""


def ending_text(event: JobEvent) -> str:
    """What a job that ended without images says: cancelled, refused for a reason, or failed."""
    if event.kind == "cancelled":
        return render("cancelled", event.language, job_id=short_id(event.job_id))
    return render(failure_key(event.error_key), event.language, job_id=short_id(event.job_id))


def failure_key(error_key: str | None) -> str:
    """The text a failed job is explained by: its own reason where that tells more, else "failed" (job_id)."""
    return error_key if error_key in EXPLAINED_FAILURES else "failed"


def cancel_text(cancellation: Cancellation, language: str | None = None) -> str:
    """Removed from the queue, or stopping at the next step."""
    return render(f"cancel.{cancellation.outcome}", language, job_id=short_id(cancellation.job_id))


def progress_text(fraction: float, language: str | None = None) -> str:
    return render("status.progress", language, percent=int(fraction * 100))


def result_caption(event: JobEvent, limit: int = 1024) -> str:
    """The prompt (and its translation, when there was one), the seeds and the short job id, cut to the
    platform's caption limit (the prompt gives way first)."""
    seeds = ", ".join(str(seed) for seed in event.seeds)
    shown = event.prompt
    if event.translation:
        shown += "\n" + translation_note(event.source_language, event.translation, event.language)
    elif event.untranslated:
        shown += "\n" + untranslated_note(event.untranslated, event.language)
    caption = render("result.caption", event.language, prompt=shown, seeds=seeds, job_id=short_id(event.job_id))
    if len(caption) <= limit:
        return caption
    overflow = len(caption) - limit + 1
    shown = shown[: max(0, len(shown) - overflow)] + "…"
    return render("result.caption", event.language, prompt=shown, seeds=seeds, job_id=short_id(event.job_id))


def untranslated_note(source: str, language: str | None = None) -> str:
    """Why the image may miss the prompt: easel could not translate its language here."""
    return render("result.untranslated", language, source=language_name(source, language))


def translation_note(source: str | None, translation: str, language: str | None = None) -> str:
    """ "translated from Russian: ...", the language named in the reader's own language."""
    return render("result.translated", language, source=language_name(source, language), translation=translation)


def preferences_text(preferences: Mapping[str, Any]) -> str:
    return ", ".join(f"{OPTION_NAMES.get(key, key)} {value}" for key, value in sorted(preferences.items()))


def history_lines(jobs: Sequence[JobSummary], language: str | None = None) -> list[str]:
    """One line per job; a line names its job by the start of its prompt, so that ten of them fit a message."""
    return [
        render(
            "history.line",
            language,
            job_id=short_id(job.job_id),
            state=render(f"state.{job.state}", language),
            operation=render(f"operation.{job.operation}", language),
            seed=job.seed,
            prompt=shortened(job.prompt),
        )
        for job in jobs
    ]


def queue_lines(entries: Sequence[QueueEntry], language: str | None = None) -> list[str]:
    return [
        render("queue.running_line", language, job_id=short_id(entry.job_id), prompt=shortened(entry.prompt))
        if entry.state == "running"
        else render(
            "queue.line",
            language,
            job_id=short_id(entry.job_id),
            state=render(f"state.{entry.state}", language),
            position=entry.position or 1,
            eta=eta_text(entry.eta_seconds, language),
            prompt=shortened(entry.prompt),
        )
        for entry in entries
    ]


def styles_text(listing: StyleList, language: str | None = None) -> str:
    """The answer to `/styles`: each style with what it adds, then the community's own negative prompt."""
    title = "styles.title" if listing.styles else "styles.none"
    lines = [render(title, language)]
    for style in listing.styles:
        key = "styles.line_negative" if style.negative else "styles.line"
        lines.append(render(key, language, name=style.name, prompt=style.prompt, negative=style.negative))
    if listing.negative:
        lines.append(render("styles.community_negative", language, negative=listing.negative))
    return "\n".join(lines)


def quota_text(status: QuotaStatus, language: str | None = None) -> str:
    return render(
        "quota.status",
        language,
        images=status.images,
        images_limit=status.images_limit,
        seconds=status.gpu_seconds,
        seconds_limit=int(status.gpu_seconds_limit),
    )


def language_text(choice: LanguageChoice) -> str:
    """The answer to `/language`, in the language the user is answered in from now on."""
    name = language_name(choice.language, choice.language)
    if choice.changed:
        chosen = "language.chosen" if choice.chosen else "language.following"
        return render(chosen, choice.language, name=name)
    key = "language.current_chosen" if choice.chosen else "language.current_platform"
    return render(key, choice.language, name=name, languages=languages_list())
