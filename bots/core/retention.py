"""Retention: the images and uploads of a job that ended more than `storage.keep_days` ago (or its community's own
`storage.community_keep_days`) are deleted, as `/delete` deletes them; the job's row stays for quotas, history and
the audit trail, marked deleted. `easel run` prunes once a day; `easel storage prune` on request."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bots.config import StorageSettings
from bots.core.accounts import now
from bots.core.files import Files
from generation.codec import stored_paths
from storage import Database, Job

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
PRUNE_INTERVAL_SECONDS = 24 * 3600.0
RETRY_SECONDS = 3600.0
"""After a prune that failed (the database unreachable): sooner than the next day."""


@dataclass(frozen=True)
class Pruned:
    jobs: int = 0
    files: int = 0
    bytes: int = 0

    def __add__(self, other: Pruned) -> Pruned:
        return Pruned(self.jobs + other.jobs, self.files + other.files, self.bytes + other.bytes)

    def __str__(self) -> str:
        return f"{self.files} file(s), {self.bytes / 1_000_000:.1f} MB, of {self.jobs} job(s)"


def keeps_everything(storage: StorageSettings) -> bool:
    return storage.keep_days == 0 and not any(storage.community_keep_days.values())


async def prune(storage: StorageSettings, db: Database, files: Files, at: datetime, *, dry_run: bool = False) -> Pruned:
    """Delete what has expired at `at` (with `dry_run`, only count it): community by community where one has its
    own keep_days, then everything else by the global one."""
    overrides: dict[int, int] = {}
    for name, days in storage.community_keep_days.items():
        platform, platform_id = name.split(":", 1)
        community = await db.find_community(platform, platform_id)
        if community is not None:
            overrides[community.id] = days
    rules: list[tuple[int, list[int] | None, list[int]]] = [
        (days, [community_id], []) for community_id, days in overrides.items() if days > 0
    ]
    if storage.keep_days > 0:
        rules.append((storage.keep_days, None, list(overrides)))
    total = Pruned()
    for days, community_ids, excluding in rules:
        before, after = at - timedelta(days=days), None
        while batch := await db.expired_jobs(before, community_ids=community_ids, excluding=excluding, after=after):
            total += await _prune_batch(db, files, batch, at, dry_run)
            after = batch[-1]
    return total


async def _prune_batch(db: Database, files: Files, batch: Sequence[Job], at: datetime, dry_run: bool) -> Pruned:
    job_ids = [job.id for job in batch]
    outputs = await db.outputs_of_jobs(job_ids)
    paths = {output.path for made in outputs.values() for output in made} | {
        path for job in batch for path in stored_paths(job.parameters)
    }
    kept = await db.paths_kept(paths, job_ids)
    doomed = sorted(paths - kept)
    size = await asyncio.to_thread(_size_here, files, doomed)
    if not dry_run:
        await db.mark_deleted_many(job_ids, at)  # before the files go: no undeleted row names a missing file
        await files.remove(doomed)
    return Pruned(len(batch), len(doomed), size)


def _size_here(files: Files, paths: Sequence[str]) -> int:
    """The bytes of those files on this host (a file kept only in the database between hosts counts as 0)."""
    total = 0
    for path in paths:
        try:
            total += files.path_of(path).stat().st_size
        except FileNotFoundError:
            pass
    return total


async def prune_daily(storage: StorageSettings, db: Database, files: Files, clock: Clock = now) -> None:
    """At start-up, then once a day, for as long as the service runs."""
    while True:
        try:
            pruned = await prune(storage, db, files, clock())
        except Exception:
            log.exception("retention: pruning failed; trying again in %.0f s", RETRY_SECONDS)
            await asyncio.sleep(RETRY_SECONDS)
            continue
        if pruned.jobs:
            log.info("retention: deleted %s that ended over keep_days ago", pruned)
        await asyncio.sleep(PRUNE_INTERVAL_SECONDS)
