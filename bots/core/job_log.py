"""A log line when a job is queued, starts and ends, its fields also as keys of their own (`--log-format json`):
how an operator sees who waits how long and what the GPU spends, not only what failed."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from storage.records import Job

log = logging.getLogger("easel.jobs")


def queued(job: Job, platform_user: str, position: int | None) -> None:
    where = f", place {position}" if position is not None else ""
    log.info(
        "job %s queued: %s for %s:%s%s",
        job.id,
        job.operation,
        job.platform,
        platform_user,
        where,
        extra={**_fields(job), "event": "queued", "platform_user": platform_user, "position": position},
    )


def started(job: Job) -> None:
    waited = _seconds(job.created_at, job.started_at)
    log.info(
        "job %s started after %.1f s queued",
        job.id,
        waited,
        extra={**_fields(job), "event": "started", "wait_seconds": waited},
    )


def done(job_id: str, started_job: Job | None, finished_at: datetime, gpu_seconds: float) -> None:
    """`started_job`: the job as it started here; None where another process started it (its wait unknown)."""
    fields: dict[str, Any] = {"job_id": job_id, "event": "done", "gpu_seconds": round(gpu_seconds, 3)}
    if started_job is None:
        log.info("job %s done: %.1f s generating", job_id, gpu_seconds, extra=fields)
        return
    fields |= _fields(started_job) | _durations(started_job, finished_at)
    log.info(
        "job %s done: %.1f s generating, %.1f s after it was queued",
        job_id,
        gpu_seconds,
        fields["total_seconds"],
        extra=fields,
    )


def ended(job_id: str, started_job: Job | None, finished_at: datetime, state: str, error_key: str | None) -> None:
    """A job failed or cancelled (queued or running); the failure's cause, where it is a bug, is logged apart."""
    fields: dict[str, Any] = {"job_id": job_id, "event": state, "error": error_key}
    if started_job is not None:
        fields |= _fields(started_job) | _durations(started_job, finished_at)
    log.info("job %s %s%s", job_id, state, f" ({error_key})" if error_key else "", extra=fields)


def _fields(job: Job) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "operation": job.operation,
        "platform": job.platform,
        "user_id": job.owner_id,
        "community_id": job.community_id,
    }


def _durations(job: Job, finished_at: datetime) -> dict[str, float]:
    return {
        "wait_seconds": _seconds(job.created_at, job.started_at),
        "total_seconds": _seconds(job.created_at, finished_at),
    }


def _seconds(since: datetime, until: datetime | None) -> float:
    return round((until - since).total_seconds(), 3) if until is not None else 0.0
