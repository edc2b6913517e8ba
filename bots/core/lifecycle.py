"""A job from the GPU's point of view: started, progress, done, failed, cancelled.

This is the worker's `JobSink`. Post-generation moderation happens here, since only now are the
translation's words and the images' safety scores known. A grid's cells are told as their grid
(`GridSheets`); what a restart finds is `Recovery`'s.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

from PIL import Image

from bots.config import Settings
from bots.core import job_log
from bots.core.accounts import Accounts, now
from bots.core.announcer import Announcer
from bots.core.deliveries import FINAL_KINDS
from bots.core.files import Files
from bots.core.grid_sheets import GridSheets
from bots.core.languages import untranslated
from bots.core.metrics import Metrics
from bots.core.persistence import persistently
from bots.core.positions import Positions
from bots.core.types import EventKind
from bots.errors import UserError
from bots.moderation.commands import Moderation
from generation.asks import build_request
from generation.codec import decode, stored_paths
from generation.engine import GenerationResult
from generation.previews import Preview
from generation.requests import GenerationRequest
from generation.translation import PromptTranslation
from generation.worker import Done, Ending, Worker
from storage.database import Database
from storage.records import Community, Job, JobState, OutputDraft
from storage.turns import urgent

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 2  # a job interrupted by a crash is retried once
PREVIEW_JPEG_QUALITY = 80

Announcement = Callable[[], Awaitable[None]]
"""Tells a written ending to its user; kept apart from the writing so that a batch's endings are told in order."""


@dataclass(eq=False)
class Lifecycle:
    settings: Settings
    db: Database
    files: Files
    worker: Worker
    accounts: Accounts
    moderation: Moderation
    announcer: Announcer
    positions: Positions
    grids: GridSheets
    metrics: Metrics
    _running: dict[str, Job] = field(default_factory=dict, init=False)
    """Jobs started here, as they started: their end's log line says how long they waited."""

    # --- JobSink: what the worker reports --------------------------------------------------

    async def on_started(self, job_ids: Sequence[str]) -> None:
        """The batch's jobs written running in one transaction, then announced. The worker does not wait for this
        (a job's done report does), and the users still waiting are told their places by `Positions`, not here."""
        self.positions.forget(job_ids)
        self.positions.moved(len(job_ids))
        at = now()
        with urgent():
            running = await persistently(
                lambda: self.db.mark_running_many(job_ids, at), f"the start of job(s) {', '.join(job_ids)}"
            )
        for job in running:
            self._running[job.id] = job
            job_log.started(job)
            self.metrics.started(job)
        await self.grids.started([job for job in running if job.grid_id is not None])
        started = {job.id for job in running}
        for job_id in job_ids:
            if self.grids.is_cell(job_id):
                continue
            if job_id not in started:  # cancelled in the instant before the GPU took it
                log.info("job %s started after it ended", job_id)
                continue
            await self.announcer.emit(EventKind.STARTED, job_id)

    async def on_progress(self, job_ids: Sequence[str], fraction: float, previews: Sequence[Preview] = ()) -> None:
        """Progress, with each job's preview where the result, judged now, would be shown: a preview whose
        translation holds a banned word, or whose scores (its own, its inputs') the community's NSFW policy would
        block, is left out; one the policy would hide goes behind a spoiler. A grid's cells tell their grid."""
        job_ids, previews = await self.grids.progress(job_ids, fraction, previews)
        if not previews:
            for job_id in job_ids:
                await self.announcer.emit(EventKind.PROGRESS, job_id, progress=fraction)
            return
        encoded = await asyncio.to_thread(lambda: [_jpeg(preview.image) for preview in previews])
        for job_id, preview, data in zip(job_ids, previews, encoded, strict=True):
            verdict = await self._preview_verdict(job_id, preview)
            shown = data if verdict != "block" else None
            await self.announcer.emit(
                EventKind.PROGRESS, job_id, progress=fraction, preview=shown, spoiler=verdict == "spoiler"
            )

    async def _preview_verdict(self, job_id: str, preview: Preview) -> str:
        """As `_settle_done` judges the result, without its log and its ending (the result's own check does those);
        most previews need neither check, and skip reading the job."""
        scores = [score for score in (preview.nsfw_score, preview.input_nsfw_score) if score is not None]
        translation = preview.translation
        if translation is None and not self.moderation.flagged(scores):
            return "allow"
        job = await self.db.get_job(job_id)
        if job is None:
            return "block"
        community = await self.accounts.community_by_id(job.community_id)
        if translation is not None and self.moderation.holds_banned_word(community, _texts_of(translation)):
            return "block"
        return self.moderation.nsfw_verdict(community, scores, bool(job.parameters.get("nsfw_channel")))

    async def on_ended(self, endings: Sequence[Ending]) -> None:
        """A batch's endings told in its fair order, each once the one before is delivered. Each is judged, stored
        and written in that order too, as soon as the one before is written: while one user's images are sent (a
        platform's answer takes a while), the next one's are already written, and only telling waits its turn."""
        settled = [asyncio.get_running_loop().create_future() for _ in endings]

        async def settle() -> None:
            for ending, future in zip(endings, settled, strict=True):
                future.set_result(await self._settled(ending))

        async with asyncio.TaskGroup() as group:
            group.create_task(settle())
            for ending, future in zip(endings, settled, strict=True):
                announce: Announcement | None = await future
                if announce is None:
                    continue
                try:
                    await announce()
                except Exception:
                    log.exception("announcing the end of job %s failed", ending.job_id)

    async def _settled(self, ending: Ending) -> Announcement | None:
        """The ending written; what tells it, or None when nothing is to be told (or writing it failed: logged)."""
        try:
            with urgent():
                if isinstance(ending, Done):
                    return await self._settle_done(ending.job_id, ending.result, ending.gpu_seconds)
                return await self._end(ending.job_id, JobState.CANCELLED)
        except Exception:
            log.exception("recording the end of job %s failed", ending.job_id)
            return None

    async def _settle_done(self, job_id: str, result: GenerationResult, gpu_seconds: float) -> Announcement | None:
        """Apply the community's rules to what the worker made (the translation's words, the images' safety
        scores), then store and write it; what tells it is returned (for a grid's cell, what tells the grid). Most
        results need neither check, and skip reading the job."""
        translation = result.translation
        english = _translated_prompt(translation) if translation is not None else None
        scores = [*result.nsfw_scores, *([result.input_nsfw_score] if result.input_nsfw_score is not None else [])]
        verdict = "allow"
        if translation is not None or self.moderation.flagged(scores):
            job = await persistently(lambda: self.db.get_job(job_id), f"the result of job {job_id}")
            if job is None:
                log.error("job %s finished but is not in the database", job_id)
                return None
            community = await persistently(
                lambda: self.accounts.community_by_id(job.community_id), f"the result of job {job_id}"
            )
            if translation is not None:
                refused = await self._translation_refused(job, community, translation)
                if refused is not None:
                    return await self._end(job_id, JobState.FAILED, error_key=refused.key)
            verdict = self.moderation.nsfw_verdict(community, scores, bool(job.parameters.get("nsfw_channel")))
            if verdict == "block":
                await self.moderation.log_nsfw_block(job, scores)
                return await self._end(job_id, JobState.FAILED, error_key="moderation.nsfw")
        outputs = await asyncio.to_thread(self._store_outputs, result)
        finished = now()

        async def write() -> None:
            await self.files.share(output.path for output in outputs)  # before the rows that name them
            await self.db.mark_done(job_id, finished, outputs, gpu_seconds=gpu_seconds, processed_prompt=english)

        await persistently(write, f"the result of job {job_id}")
        started = self._running.pop(job_id, None)
        job_log.done(job_id, started, finished, gpu_seconds)
        self.metrics.done(started, gpu_seconds)
        if (grid_id := self.grids.running_cell(job_id)) is not None:
            return await self.grids.cell_ended(grid_id)
        return partial(
            self.announcer.emit,
            EventKind.DONE,
            job_id,
            files=tuple(self.files.path_of(output.path) for output in outputs),
            seeds=result.seeds,
            translation=english,
            source_language=translation.language if translation is not None else None,
            untranslated=untranslated(self.settings.translation, result.request.language),
            spoiler=verdict == "spoiler",
            first_delivery=True,
        )

    async def on_failed(self, job_id: str, error: BaseException) -> None:
        log.error("job %s failed: %r", job_id, error)
        with urgent():
            await self.close(job_id, JobState.FAILED, error_key="error.internal", message=repr(error))

    async def requests(self, job_ids: Sequence[str]) -> dict[str, GenerationRequest]:
        """The requests of jobs another process queued, rebuilt from their rows as `recover` does (one read, one
        hop to a thread: this lies between two pipeline calls); one that cannot be rebuilt fails."""
        jobs = await persistently(lambda: self.db.get_jobs(job_ids), f"the requests of job(s) {', '.join(job_ids)}")
        for job_id in job_ids:
            if job_id not in jobs:
                log.error("job %s was taken from the queue but is not in the database", job_id)
        inputs = [path for job in jobs.values() for path in stored_paths(job.parameters)]
        await persistently(lambda: self.files.fetch(inputs), f"the inputs of job(s) {', '.join(job_ids)}")
        built = await asyncio.to_thread(lambda: {job_id: self._rebuilt(job) for job_id, job in jobs.items()})
        requests = {}
        for job_id, request in built.items():
            if isinstance(request, GenerationRequest):
                requests[job_id] = request
            else:
                log.error("job %s cannot be rebuilt on this host: %s", job_id, request)
                await self.close(job_id, JobState.FAILED, error_key="error.internal")
        return requests

    def _rebuilt(self, job: Job) -> GenerationRequest | Exception:
        try:
            return self.rebuild(job)
        except (ValueError, KeyError, OSError) as error:  # a damaged row, a newer codec, a missing input
            return error

    async def close(self, job_id: str, state: JobState, error_key: str | None = None, message: str = "") -> None:
        """Fail or cancel a job: written, quota refunded, then announced."""
        announce = await self._end(job_id, state, error_key, message)
        await announce()

    async def _end(self, job_id: str, state: JobState, error_key: str | None = None, message: str = "") -> Announcement:
        """Fail or cancel a job, its quota refunded; what announces it."""
        ended, what = now(), f"the end of job {job_id}"
        if state is JobState.FAILED:
            await persistently(lambda: self.db.mark_failed(job_id, ended, error_key or "error.internal", message), what)
        else:
            await persistently(lambda: self.db.mark_cancelled(job_id, ended), what)
        await persistently(lambda: self.db.refund_quota(job_id), what)
        started = self._running.pop(job_id, None)
        job_log.ended(job_id, started, ended, state.value, error_key)
        job = started or await persistently(lambda: self.db.get_job(job_id), what)  # metrics; a grid's cell?
        self.metrics.ended(job, state.value)
        if job is not None and job.grid_id is not None:
            self.grids.running_cell(job_id)
            return await self.grids.cell_ended(job.grid_id)
        return partial(self.announcer.emit, FINAL_KINDS[state], job_id, error_key=error_key)

    def rebuild(self, job: Job) -> GenerationRequest:
        """The stored request, built again exactly as it was accepted."""
        ask = decode(job.parameters, job.seed, self.files.read)
        return build_request(ask, defaults=self.settings.generation_defaults, limits=self.settings.limits)

    # --- internals -----------------------------------------------------------------------------

    async def _translation_refused(
        self, job: Job, community: Community | None, translation: PromptTranslation
    ) -> UserError | None:
        """Banned words are matched against the translation too; it is known only once the worker made it."""
        owner = await self.db.get_user(job.owner_id)
        if owner is None:
            return None
        try:
            await self.moderation.screen(owner, community, _texts_of(translation))
        except UserError as error:
            return error
        return None

    def _store_outputs(self, result: GenerationResult) -> list[OutputDraft]:
        outputs = []
        scores: Sequence[float | None] = result.nsfw_scores or [None] * len(result.images)
        for index, (image, seed, score) in enumerate(zip(result.images, result.seeds, scores, strict=True)):
            buffer = io.BytesIO()
            image.save(buffer, "PNG")
            stored = self.files.put(buffer.getvalue(), ".png")
            outputs.append(
                OutputDraft(
                    index=index,
                    path=stored.path,
                    sha256=stored.sha256,
                    size=stored.size,
                    width=image.width,
                    height=image.height,
                    seed=seed,
                    nsfw_score=score,
                )
            )
        return outputs


def _texts_of(translation: PromptTranslation) -> list[str]:
    texts = [translation.prompt, translation.negative_prompt, *(text for text in translation.mix_texts if text)]
    return [text for text in texts if text]


def _translated_prompt(translation: PromptTranslation) -> str:
    """What to show of a translation: the prompt, or for a mix its text items."""
    return translation.prompt or " + ".join(text for text in translation.mix_texts if text)


def user_key(user_id: int) -> str:
    return f"user:{user_id}"


def community_key(community_id: int | None) -> str | None:
    return None if community_id is None else f"community:{community_id}"


def _jpeg(image: Image.Image) -> bytes:
    """A preview as the platforms take a photo: a small JPEG (a 256 px preview is about 10 KB)."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=PREVIEW_JPEG_QUALITY)
    return buffer.getvalue()
