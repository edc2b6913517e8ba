"""The platform-neutral core: the use cases that every chat adapter calls.

submit -> (ban, validate, quota, persist, enqueue); the worker reports back through `JobSink`, and
every state change is written before it is announced. Adapters register one listener per platform;
a final event (done, failed, cancelled) counts as delivered when the listener returns, and is
delivered again later (and after a restart) when it raises.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bots.config import Settings, TierSettings
from bots.errors import UserError, from_generation, from_queue
from bots.moderation.policy import Moderation, Moderator
from generation.config import GenerationDefaults, Limits
from generation.costs import job_cost
from generation.engine import GenerationResult
from generation.errors import InvalidImage, InvalidRequest
from generation.images import AlphaMask, MaskImage, RegionMask, decode_image, has_alpha
from generation.requests import GenerationRequest, Operation, make_request
from generation.scheduler import QueueRefused
from generation.translation import PromptTranslation, detect_language
from generation.worker import Worker, WorkItem
from storage.database import Database
from storage.errors import InvalidTransition, QuotaExceeded
from storage.files import FileStore
from storage.records import Community, Job, JobDraft, JobState, MessageLink, Output, OutputDraft, QuotaReservation, User

log = logging.getLogger(__name__)

FINAL_KINDS = frozenset({"done", "failed", "cancelled"})
ACTIVE_STATES = (JobState.QUEUED, JobState.RUNNING)
SHORT_ID_LENGTH = 8
MIN_JOB_REFERENCE = 4
PREFERENCE_KEYS = frozenset(
    {"width", "height", "steps", "prior_steps", "guidance_scale", "prior_guidance_scale", "negative_prompt", "count"}
)
"""What a user may keep as their own defaults (`/settings`); a request's own options still win."""
SIZE_KEYS = frozenset({"width", "height"})
"""Preferences that an operation sized by its input image ignores: the image decides."""
MAX_ATTEMPTS = 2  # a job interrupted by a crash is retried once
MAX_DELIVERY_ATTEMPTS = 10


@dataclass(frozen=True)
class Actor:
    """Who asks: a user of one platform."""

    platform: str
    user_id: str
    display_name: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class Place:
    """Where they ask: a channel or chat, inside a community (guild, group) when there is one."""

    platform: str
    channel_id: str
    community_id: str | None = None
    community_name: str | None = None
    message_id: str | None = None
    """The message that asked, so that replies can answer it; not kept across a restart."""
    nsfw: bool = False
    """An age-restricted channel (Discord's NSFW channels), where a community may allow NSFW images."""


@dataclass(frozen=True)
class Ask:
    """What a user asked for, before validation: `options` are `make_request` keywords."""

    operation: str
    prompt: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    image: bytes | None = None
    mask_image: bytes | None = None
    mix: tuple[bytes | str, ...] = ()


@dataclass(frozen=True)
class Receipt:
    job_id: str
    position: int | None
    eta_seconds: float | None


@dataclass(frozen=True)
class JobEvent:
    kind: str  # queued, started, progress, position, done, failed, cancelled
    job_id: str
    platform: str
    channel_id: str
    user_id: str
    language: str | None
    prompt: str = ""
    progress: float = 0.0
    position: int | None = None
    eta_seconds: float | None = None
    files: tuple[Path, ...] = ()
    seeds: tuple[int, ...] = ()
    error_key: str | None = None
    translation: str | None = None
    """The English prompt the model was given, when the user's prompt was translated."""
    spoiler: bool = False
    """Show the images behind a spoiler (the community allows NSFW images that way)."""
    source_language: str | None = None
    """The language detected in the user's prompt (ISO 639-1)."""
    reply_to: str | None = None
    """The message that asked for the job, when it is known (`Place.message_id`)."""


@dataclass(frozen=True)
class JobSummary:
    job_id: str
    state: str
    operation: str
    prompt: str
    seed: int
    created_at: datetime
    files: tuple[Path, ...] = ()


@dataclass(frozen=True)
class QueueEntry:
    job_id: str
    state: str
    prompt: str
    position: int | None
    eta_seconds: float | None


@dataclass(frozen=True)
class Cancellation:
    job_id: str
    outcome: str  # "queued": removed from the queue; "running": stops at its next step


@dataclass(frozen=True)
class QuotaStatus:
    images: int
    images_limit: int
    gpu_seconds: float
    gpu_seconds_limit: float


Listener = Callable[[JobEvent], Awaitable[None]]


@dataclass(frozen=True)
class _Route:
    """Where a job's events go."""

    platform: str
    channel_id: str
    user_id: str
    language: str | None
    prompt: str
    reply_to: str | None = None


class Service:
    def __init__(self, settings: Settings, db: Database, files: FileStore) -> None:
        self.settings = settings
        self.db = db
        self.files = files
        self.worker: Worker | None = None
        self.moderation = Moderation(settings, db)
        self._listeners: dict[str, Listener] = {}
        self._routes: dict[str, _Route] = {}
        self._delivering: set[str] = set()

    def attach(self, worker: Worker) -> None:
        self.worker = worker

    def listen(self, platform: str, listener: Listener) -> None:
        self._listeners[platform] = listener

    def has_pending(self, platform: str) -> bool:
        """Whether any job of this platform is still to finish or to be announced."""
        return any(route.platform == platform for route in self._routes.values())

    # --- use cases -------------------------------------------------------------------------

    async def submit(self, actor: Actor, place: Place, ask: Ask, parent_job_id: str | None = None) -> Receipt:
        worker = self._worker()
        user = await self._user(actor)
        community = await self._community(place)
        community_id = community.id if community is not None else None
        texts = [ask.prompt, str(ask.options.get("negative_prompt", "")), *(t for t in ask.mix if isinstance(t, str))]
        await self.moderation.check_request(user, community, [text for text in texts if text], place.channel_id)
        options = {**_preferences_for(ask, user.preferences), **ask.options}
        if "language" not in options:
            options["language"] = detect_language(" ".join([ask.prompt, *(t for t in ask.mix if isinstance(t, str))]))
        ask = replace(ask, options=options)
        overrides = self.moderation.limits_for(community)
        request, inputs = await asyncio.to_thread(self._build, ask, None, _limits(self.settings.limits, overrides))
        tier = _tier(self.settings.tier(user.tier), overrides)
        estimate = worker.throughput.seconds(request)
        await self._check_quota(user, tier, request.count, estimate)
        try:
            worker.scheduler.check_capacity(_user_key(user))
        except QueueRefused as error:
            raise from_queue(error) from None
        stored = await asyncio.to_thread(self._store_inputs, inputs)
        draft = JobDraft(
            owner_id=user.id,
            community_id=community_id,
            platform=place.platform,
            channel_id=place.channel_id,
            operation=str(request.operation),
            parameters={**request.describe(), "inputs": stored, "nsfw_channel": place.nsfw},
            prompt=ask.prompt or " + ".join(item for item in ask.mix if isinstance(item, str)),
            negative_prompt=request.negative_prompt,
            seed=request.seed,
            cost=job_cost(request),
            parent_id=parent_job_id,
        )
        reservation = QuotaReservation(_today(), request.count, estimate, tier.images_per_day, tier.gpu_seconds_per_day)
        try:
            job = await self.db.create_job(draft, reservation)
        except QuotaExceeded as error:  # another request of the same user got there first
            raise _quota_error(error.resource, tier) from None
        language = actor.language or user.language or request.language
        self._routes[job.id] = _Route(
            place.platform, place.channel_id, actor.user_id, language, job.prompt, place.message_id
        )
        try:
            worker.submit(WorkItem(job.id, request, _user_key(user), _community_key(community_id), tier.weight))
        except QueueRefused as error:
            await self._close(job.id, JobState.FAILED, error_key="queue.refused")
            raise from_queue(error) from None
        receipt = Receipt(job.id, worker.position(job.id), worker.eta(job.id))
        await self._emit("queued", job.id, position=receipt.position, eta_seconds=receipt.eta_seconds)
        return receipt

    async def cancel(
        self, actor: Actor, reference: str | None = None, moderator: Moderator | None = None
    ) -> Cancellation:
        """Cancel one of the actor's own jobs, named by its id or an unambiguous start of it; without a
        reference, their newest job that is still queued or running. A moderator may cancel any job of their
        community by its full id."""
        if reference:
            job = await self._own_job(actor, reference, moderator, "cancel")
        else:
            job = await self._newest_active(actor)
        outcome = self._worker().cancel(job.id)
        if outcome == "queued":
            await self._close(job.id, JobState.CANCELLED)
            return Cancellation(job.id, "queued")
        if outcome == "running":
            return Cancellation(job.id, "running")
        raise UserError("job.not_cancellable", job_id=short_id(job.id), state=job.state.value)

    async def reroll(self, actor: Actor, place: Place, job_id: str) -> Receipt:
        """The same request with a new seed, for whoever asks: the new job is theirs, and so is its cost."""
        job = await self._visible_job(job_id)
        ask = await asyncio.to_thread(self._ask_of, job)
        options = {key: value for key, value in ask.options.items() if key != "seed"}
        return await self.submit(actor, place, replace(ask, options=options), job.id)

    async def variations(self, actor: Actor, place: Place, job_id: str, index: int = 0) -> Receipt:
        """An img2img of one of the job's images with its own prompt, at the default strength."""
        job, output, data = await self._output(job_id, index)
        ask = Ask("img2img", job.prompt or "a variation", {"width": output.width, "height": output.height}, image=data)
        return await self.submit(actor, place, ask, job.id)

    async def edit(
        self, actor: Actor, place: Place, job_id: str, index: int, prompt: str, options: Mapping[str, Any]
    ) -> Receipt:
        """An img2img of one of the job's images after a new prompt: a reply to a bot image, an Edit button."""
        job, output, data = await self._output(job_id, index)
        sized = {"width": output.width, "height": output.height, **options}
        return await self.submit(actor, place, Ask("img2img", prompt, sized, image=data), job.id)

    async def delete(self, actor: Actor, job_id: str, moderator: Moderator | None = None) -> list[MessageLink]:
        """Delete the images of the actor's own job (or, for a moderator, of any job in their community);
        returns the messages that showed them, for the adapter to remove. The job row stays, marked deleted."""
        job = await self._own_job(actor, job_id, moderator, "delete")
        if job.state in ACTIVE_STATES:
            raise UserError("job.not_finished", job_id=short_id(job.id))
        return await self._delete(job)

    async def purge(self, moderator: Moderator, platform_user_id: str) -> list[MessageLink]:
        """Delete every finished image a user made in the moderator's community; returns their messages."""
        community = await self.moderation.community_of(moderator)
        target = await self.db.get_or_create_user(moderator.platform, platform_user_id)
        finished = [JobState.DONE, JobState.FAILED, JobState.CANCELLED]
        links: list[MessageLink] = []
        for job in await self.db.owner_jobs(target.id, finished, limit=100_000, community_id=community.id):
            if job.deleted_at is None:
                links += await self._delete(job)
        await self.moderation.record(moderator, "purge", f"user:{target.id}", community_id=community.id)
        return links

    async def _delete(self, job: Job) -> list[MessageLink]:
        paths = [output.path for output in await self.db.outputs_of(job.id)]
        await self.db.mark_deleted(job.id, _now())
        shared = await self.db.paths_shared(paths, job.id)
        await asyncio.to_thread(self._remove_files, [path for path in paths if path not in shared])
        return await self.db.messages_of(job.id)

    async def link_message(
        self, platform: str, chat_id: str, message_id: str, job_id: str, output_index: int | None = None
    ) -> None:
        """Remember that a platform message shows a job (or its image `output_index`)."""
        await self.db.link_message(platform, chat_id, message_id, job_id, output_index)

    async def job_of_message(self, platform: str, chat_id: str, message_id: str) -> MessageLink | None:
        return await self.db.find_message(platform, chat_id, message_id)

    async def messages_of(self, job_id: str) -> list[MessageLink]:
        """The messages that show a job: after a restart, what an adapter already posted for it."""
        return await self.db.messages_of(job_id)

    async def upload_operation(self, data: bytes) -> str:
        """What an image sent with only a prompt asks for: inpaint when some of its pixels are transparent
        (they mark what to repaint), img2img otherwise."""
        try:
            image = await asyncio.to_thread(decode_image, data, self.settings.limits.max_input_pixels)
        except InvalidImage as error:
            raise from_generation(error) from None
        lowest_alpha, _ = image.convert("RGBA").getchannel("A").getextrema()
        transparent = has_alpha(image) and isinstance(lowest_alpha, int) and lowest_alpha < 255
        return Operation.INPAINT.value if transparent else Operation.IMG2IMG.value

    async def queue(self, actor: Actor) -> list[QueueEntry]:
        """The actor's jobs still queued or running, with their place in the queue."""
        user = await self._user(actor)
        worker = self._worker()
        return [
            QueueEntry(job.id, job.state.value, job.prompt, worker.position(job.id), worker.eta(job.id))
            for job in reversed(await self.db.owner_jobs(user.id, ACTIVE_STATES, limit=100))
        ]

    async def preferences(self, actor: Actor) -> dict[str, Any]:
        return dict((await self._user(actor)).preferences)

    async def set_preferences(self, actor: Actor, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change the actor's own defaults (a None value removes one); refused when the result would make an
        invalid request, so a bad default can never break later requests."""
        user = await self._user(actor)
        unknown = sorted(set(changes) - PREFERENCE_KEYS)
        if unknown:
            raise UserError("settings.unknown", option=", ".join(unknown))
        merged = {key: value for key, value in {**user.preferences, **changes}.items() if value is not None}
        try:
            make_request(
                "txt2img", "check", defaults=self.settings.generation_defaults, limits=self.settings.limits, **merged
            )
        except InvalidRequest as error:
            raise from_generation(error) from None
        return dict((await self.db.set_user_preferences(user.id, merged)).preferences)

    async def reset_preferences(self, actor: Actor) -> None:
        user = await self._user(actor)
        await self.db.set_user_preferences(user.id, {})

    async def history(self, actor: Actor, limit: int = 10) -> list[JobSummary]:
        user = await self._user(actor)
        summaries = []
        for job in await self.db.owner_jobs(user.id, limit=limit):
            outputs = [] if job.deleted_at is not None else await self.db.outputs_of(job.id)
            summaries.append(
                JobSummary(
                    job.id,
                    job.state.value,
                    job.operation,
                    job.prompt,
                    job.seed,
                    job.created_at,
                    tuple(self.files.path_of(output.path) for output in outputs),
                )
            )
        return summaries

    async def quota(self, actor: Actor) -> QuotaStatus:
        user = await self._user(actor)
        tier = self.settings.tier(user.tier)
        usage = await self.db.quota_usage(user.id, _today())
        return QuotaStatus(usage.images, tier.images_per_day, usage.gpu_seconds, tier.gpu_seconds_per_day)

    async def recover(self) -> int:
        """Re-enqueue what a previous run left queued or running; running jobs are retried once."""
        worker = self._worker()
        recovered = 0
        for job in await self.db.jobs_in_states([JobState.QUEUED, JobState.RUNNING]):
            owner = await self._route_stored(job)
            if job.state is JobState.RUNNING and job.attempts >= MAX_ATTEMPTS:
                log.error("job %s was interrupted %d times; giving up", job.id, job.attempts)
                await self._close(job.id, JobState.FAILED, error_key="error.internal")
                continue
            try:
                request, _ = await asyncio.to_thread(self._build, await asyncio.to_thread(self._ask_of, job), job.seed)
            except (UserError, OSError) as error:
                log.error("job %s cannot be rebuilt after a restart: %s", job.id, error)
                await self._close(job.id, JobState.FAILED, error_key="error.internal")
                continue
            if job.state is JobState.RUNNING:
                await self.db.requeue_job(job.id)
            weight = self.settings.tier(owner.tier).weight
            item = WorkItem(job.id, request, _user_key(owner), _community_key(job.community_id), weight)
            try:
                worker.submit(item)
            except QueueRefused as error:  # the caps were lowered since the job was accepted
                await self._close(job.id, JobState.FAILED, error_key=from_queue(error).key)
                continue
            recovered += 1
        if recovered:
            log.info("re-enqueued %d jobs left by the previous run", recovered)
        return recovered

    async def redeliver(self) -> int:
        """Announce again the final results that were never delivered."""
        count = 0
        for job in await self.db.undelivered_jobs():
            if job.platform not in self._listeners or job.id in self._routes or job.id in self._delivering:
                continue  # no adapter for it, or this run is announcing it right now
            await self._route_stored(job)
            kind = {JobState.DONE: "done", JobState.FAILED: "failed", JobState.CANCELLED: "cancelled"}[job.state]
            outputs = await self.db.outputs_of(job.id)
            await self._emit(
                kind,
                job.id,
                error_key=job.error_code,
                delivery_attempts=job.delivery_attempts,
                files=tuple(self.files.path_of(output.path) for output in outputs),
                seeds=tuple(output.seed for output in outputs),
                translation=job.processed_prompt,
                source_language=job.parameters.get("language") if job.processed_prompt else None,
                spoiler=await self._spoilered(job, [o.nsfw_score for o in outputs if o.nsfw_score is not None]),
            )
            count += 1
        return count

    # --- JobSink: what the worker reports --------------------------------------------------

    async def on_started(self, job_ids: Sequence[str]) -> None:
        now = _now()
        for job_id in job_ids:
            try:
                await self.db.mark_running(job_id, now)
            except InvalidTransition as error:  # cancelled in the instant before the GPU took it
                log.info("job %s started after it ended: %s", job_id, error)
                continue
            await self._emit("started", job_id)
        await self._announce_positions()

    async def on_progress(self, job_ids: Sequence[str], fraction: float) -> None:
        for job_id in job_ids:
            await self._emit("progress", job_id, progress=fraction)

    async def on_done(self, job_id: str, result: GenerationResult, gpu_seconds: float) -> None:
        """Apply the community's rules to what the worker made (the translation's words, the images' safety
        scores), then store and announce it. Most results need neither check, and skip reading the job."""
        translation = result.translation
        english = _translated_prompt(translation) if translation is not None else None
        scores = [*result.nsfw_scores, *([result.input_nsfw_score] if result.input_nsfw_score is not None else [])]
        verdict = "allow"
        if translation is not None or self.moderation.flagged(scores):
            job = await self.db.get_job(job_id)
            if job is None:
                log.error("job %s finished but is not in the database", job_id)
                return
            community = await self.db.get_community(job.community_id) if job.community_id is not None else None
            if translation is not None and not await self._translation_allowed(job, community, translation):
                return
            verdict = self.moderation.nsfw_verdict(community, scores, bool(job.parameters.get("nsfw_channel")))
            if verdict == "block":
                await self.moderation.log_nsfw_block(job, scores)
                await self._close(job_id, JobState.FAILED, error_key="moderation.nsfw")
                return
        outputs = await asyncio.to_thread(self._store_outputs, result)
        await self.db.mark_done(job_id, _now(), outputs, gpu_seconds=gpu_seconds, processed_prompt=english)
        await self._emit(
            "done",
            job_id,
            files=tuple(self.files.path_of(output.path) for output in outputs),
            seeds=result.seeds,
            translation=english,
            source_language=translation.language if translation is not None else None,
            spoiler=verdict == "spoiler",
        )

    async def _spoilered(self, job: Job, scores: Sequence[float]) -> bool:
        if not self.moderation.flagged(scores):
            return False
        community = await self.db.get_community(job.community_id) if job.community_id is not None else None
        return self.moderation.nsfw_verdict(community, scores, bool(job.parameters.get("nsfw_channel"))) == "spoiler"

    async def _translation_allowed(self, job: Job, community: Community | None, translation: PromptTranslation) -> bool:
        """Banned words are matched against the translation too; it is known only once the worker made it."""
        owner = await self.db.get_user(job.owner_id)
        if owner is None:
            return True
        texts = [translation.prompt, translation.negative_prompt, *(text for text in translation.mix_texts if text)]
        try:
            await self.moderation.screen(owner, community, [text for text in texts if text])
        except UserError as error:
            await self._close(job.id, JobState.FAILED, error_key=error.key)
            return False
        return True

    async def on_failed(self, job_id: str, error: BaseException) -> None:
        log.error("job %s failed: %r", job_id, error)
        await self._close(job_id, JobState.FAILED, error_key="error.internal", message=repr(error))

    async def on_cancelled(self, job_id: str) -> None:
        await self._close(job_id, JobState.CANCELLED)

    # --- internals -------------------------------------------------------------------------

    def _worker(self) -> Worker:
        if self.worker is None:
            raise RuntimeError("the service has no worker attached")
        return self.worker

    async def _user(self, actor: Actor) -> User:
        user = await self.db.get_or_create_user(actor.platform, actor.user_id, actor.display_name, actor.language)
        if user.is_banned(_now()):
            assert user.banned_until is not None
            if user.banned_permanently:
                raise UserError("user.banned", reason=user.ban_reason or "-")
            raise UserError(
                "user.banned_until", until=f"{user.banned_until:%Y-%m-%d %H:%M}", reason=user.ban_reason or "-"
            )
        return user

    async def _route_stored(self, job: Job) -> User:
        """Route the events of a job found in the database (after a restart) to its owner."""
        owner = await self.db.get_user(job.owner_id)
        assert owner is not None, f"job {job.id} has no owner"
        self._routes[job.id] = _Route(job.platform, job.channel_id, owner.platform_user_id, owner.language, job.prompt)
        return owner

    async def _community(self, place: Place) -> Community | None:
        if place.community_id is None:
            return None
        return await self.db.get_or_create_community(place.platform, place.community_id, place.community_name)

    async def _own_job(self, actor: Actor, reference: str, moderator: Moderator | None = None, action: str = "") -> Job:
        """The actor's job named by its full id or by the start of one of their own job ids; or, named by its
        full id, another user's job that `moderator` may act on (logged as `action`)."""
        user = await self._user(actor)
        reference = reference.strip().lower()
        job = await self.db.get_job(reference)
        if job is not None:
            if job.owner_id == user.id:
                return job
            if not await self.moderation.may_act_on(moderator, job):
                raise UserError("job.not_yours", job_id=short_id(job.id))
            assert moderator is not None
            await self.moderation.record(moderator, action, f"job:{job.id}", community_id=job.community_id)
            return job
        if len(reference) < MIN_JOB_REFERENCE:
            raise UserError("job.not_found", job_id=reference)
        matches = await self.db.owner_jobs(user.id, id_prefix=reference, limit=2)
        if not matches:
            raise UserError("job.not_found", job_id=reference)
        if len(matches) > 1:
            raise UserError("job.ambiguous", job_id=reference)
        return matches[0]

    async def _newest_active(self, actor: Actor) -> Job:
        user = await self._user(actor)
        active = await self.db.owner_jobs(user.id, ACTIVE_STATES, limit=1)
        if not active:
            raise UserError("job.none_active")
        return active[0]

    async def _visible_job(self, job_id: str) -> Job:
        """A job that anyone who sees its message may build on (reroll, vary, edit): not deleted."""
        job = await self.db.get_job(job_id)
        if job is None or job.deleted_at is not None:
            raise UserError("job.not_found", job_id=short_id(job_id))
        return job

    async def _output(self, job_id: str, index: int) -> tuple[Job, Output, bytes]:
        job = await self._visible_job(job_id)
        outputs = await self.db.outputs_of(job_id)
        if not outputs:
            raise UserError("job.no_images", job_id=short_id(job_id))
        if not 0 <= index < len(outputs):
            raise UserError("job.no_such_image", job_id=short_id(job_id), number=index + 1, count=len(outputs))
        output = outputs[index]
        try:
            data = await asyncio.to_thread(self.files.read, output.path)
        except OSError:
            raise UserError("job.not_found", job_id=short_id(job_id)) from None
        return job, output, data

    def _remove_files(self, paths: Sequence[str]) -> None:
        for path in paths:
            self.files.path_of(path).unlink(missing_ok=True)

    async def _place_of(self, job: Job) -> Place:
        community = await self.db.get_community(job.community_id) if job.community_id is not None else None
        return Place(job.platform, job.channel_id, community.platform_id if community else None)

    async def _check_quota(self, user: User, tier: TierSettings, images: int, gpu_seconds: float) -> None:
        usage = await self.db.quota_usage(user.id, _today())
        if usage.images + images > tier.images_per_day:
            raise _quota_error("images", tier)
        if usage.gpu_seconds + gpu_seconds > tier.gpu_seconds_per_day:
            raise _quota_error("gpu_seconds", tier)

    async def _close(self, job_id: str, state: JobState, error_key: str | None = None, message: str = "") -> None:
        """Fail or cancel a job: written, quota refunded, then announced."""
        if state is JobState.FAILED:
            await self.db.mark_failed(job_id, _now(), error_key or "error.internal", message)
        else:
            await self.db.mark_cancelled(job_id, _now())
        await self.db.refund_quota(job_id)
        await self._emit("failed" if state is JobState.FAILED else "cancelled", job_id, error_key=error_key)

    async def _announce_positions(self) -> None:
        worker = self._worker()
        etas = worker.etas()
        for job_id, position in worker.positions().items():
            await self._emit("position", job_id, position=position, eta_seconds=etas.get(job_id))

    async def _emit(self, kind: str, job_id: str, delivery_attempts: int = 0, **values: Any) -> None:
        """Tell the job's platform; a final event counts as delivered once its listener returns."""
        route = self._routes.get(job_id)
        if route is None:
            return
        event = JobEvent(
            kind,
            job_id,
            route.platform,
            route.channel_id,
            route.user_id,
            route.language,
            route.prompt,
            reply_to=route.reply_to,
            **values,
        )
        listener = self._listeners.get(route.platform)
        if kind in FINAL_KINDS:
            self._routes.pop(job_id, None)
        if listener is None:
            return
        if kind not in FINAL_KINDS:
            try:
                await listener(event)
            except Exception as error:
                log.warning("announcing %s of job %s failed: %r", kind, job_id, error)
            return
        self._delivering.add(job_id)
        try:
            await self._deliver(listener, event, delivery_attempts)
        finally:
            self._delivering.discard(job_id)

    async def _deliver(self, listener: Listener, event: JobEvent, delivery_attempts: int) -> None:
        """A final event: delivered when the listener returns, recorded as a failed attempt when it raises."""
        try:
            await listener(event)
        except Exception as error:
            final = delivery_attempts + 1 >= MAX_DELIVERY_ATTEMPTS
            log.log(
                logging.ERROR if final else logging.WARNING,
                "delivering job %s failed (attempt %d of %d): %r",
                event.job_id,
                delivery_attempts + 1,
                MAX_DELIVERY_ATTEMPTS,
                error,
            )
            await self.db.mark_delivery_failed(event.job_id, _now(), repr(error), final=final)
            return
        await self.db.mark_delivered(event.job_id, _now())

    def _build(
        self, ask: Ask, seed: int | None, limits: Limits | None = None
    ) -> tuple[GenerationRequest, dict[str, Any]]:
        """Decode and validate; also returns the raw inputs to keep, so a restart can rebuild the request."""
        limits = limits or self.settings.limits
        options = dict(ask.options)
        if seed is not None:
            options["seed"] = seed
        inputs: dict[str, Any] = {}
        try:
            if ask.image is not None:
                image = decode_image(ask.image, limits.max_input_pixels)
                options["image"] = image
                inputs["image"] = ask.image
                if ask.operation == Operation.INPAINT and "mask" not in options:
                    if ask.mask_image is not None:
                        options["mask"] = MaskImage(decode_image(ask.mask_image, limits.max_input_pixels))
                        inputs["mask_image"] = ask.mask_image
                    elif has_alpha(image):
                        options["mask"] = AlphaMask()
            if ask.mix:
                options["mix"] = [
                    item if isinstance(item, str) else decode_image(item, limits.max_input_pixels) for item in ask.mix
                ]
                inputs["mix"] = list(ask.mix)
            region = options.get("mask")
            if isinstance(region, RegionMask):
                inputs["region"] = [region.x, region.y, region.width, region.height]
            request = make_request(
                ask.operation,
                ask.prompt,
                defaults=_defaults_within(self.settings.generation_defaults, limits),
                limits=limits,
                **options,
            )
        except (InvalidRequest, InvalidImage) as error:
            raise from_generation(error) from None
        return request, inputs

    def _store_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Uploads go to the file store; the job keeps their paths."""
        stored: dict[str, Any] = {}
        for key in ("image", "mask_image"):
            if key in inputs:
                stored[key] = self.files.put(inputs[key], ".bin", kind="inputs").path
        if "mix" in inputs:
            stored["mix"] = [
                {"text": item} if isinstance(item, str) else {"image": self.files.put(item, ".bin", kind="inputs").path}
                for item in inputs["mix"]
            ]
        if "region" in inputs:
            stored["region"] = inputs["region"]
        return stored

    def _ask_of(self, job: Job) -> Ask:
        """The stored request, resolved values included, as an Ask again."""
        parameters = job.parameters
        stored = parameters.get("inputs", {})
        options: dict[str, Any] = {
            key: parameters[key]
            for key in ("width", "height", "steps", "prior_steps", "guidance_scale", "prior_guidance_scale", "count")
        }
        options["seed"] = job.seed
        options["negative_prompt"] = parameters.get("negative_prompt", "")
        options["language"] = parameters.get("language")
        if parameters.get("strength") is not None:
            options["strength"] = parameters["strength"]
        if "region" in stored:
            options["mask"] = RegionMask(*stored["region"])
        mix: tuple[bytes | str, ...] = ()
        if "mix" in stored:
            mix = tuple(item["text"] if "text" in item else self.files.read(item["image"]) for item in stored["mix"])
            options["weights"] = parameters["mix_weights"]
        return Ask(
            operation=job.operation,
            prompt=parameters.get("prompt", ""),
            options=options,
            image=self.files.read(stored["image"]) if "image" in stored else None,
            mask_image=self.files.read(stored["mask_image"]) if "mask_image" in stored else None,
            mix=mix,
        )

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


def _translated_prompt(translation: PromptTranslation) -> str:
    """What to show of a translation: the prompt, or for a mix its text items."""
    return translation.prompt or " + ".join(text for text in translation.mix_texts if text)


def short_id(job_id: str) -> str:
    """The id shown to users: enough to tell their jobs apart, and accepted back by `cancel`."""
    return job_id[:SHORT_ID_LENGTH]


def _preferences_for(ask: Ask, preferences: Mapping[str, Any]) -> dict[str, Any]:
    """The user's defaults that apply to this request: an input image decides its own size."""
    sized_by_image = ask.image is not None
    return {
        key: value
        for key, value in preferences.items()
        if key in PREFERENCE_KEYS and not (sized_by_image and key in SIZE_KEYS)
    }


def _limits(limits: Limits, overrides: Mapping[str, int]) -> Limits:
    """A community's own size and step limits, where it set them, within the global ones."""
    changes = {key: overrides[key] for key in ("max_width", "max_height", "max_steps") if key in overrides}
    return limits.model_copy(update=changes) if changes else limits


def _defaults_within(defaults: GenerationDefaults, limits: Limits) -> GenerationDefaults:
    """Defaults that a community's smaller limits would refuse shrink to those limits: a request that names
    no size must still work there (a size the user names is refused, never clamped)."""
    width, height = min(defaults.width, limits.max_width), min(defaults.height, limits.max_height)
    steps = min(defaults.steps, limits.max_steps)
    if (width, height, steps) == (defaults.width, defaults.height, defaults.steps):
        return defaults
    return defaults.model_copy(update={"width": width, "height": height, "steps": steps})


def _tier(tier: TierSettings, overrides: Mapping[str, int]) -> TierSettings:
    if "images_per_day" not in overrides:
        return tier
    return tier.model_copy(update={"images_per_day": min(tier.images_per_day, overrides["images_per_day"])})


def _quota_error(resource: str, tier: TierSettings) -> UserError:
    if resource == "images":
        return UserError("quota.images", limit=tier.images_per_day)
    return UserError("quota.gpu_seconds", limit=int(tier.gpu_seconds_per_day))


def _user_key(user: User) -> str:
    return f"user:{user.id}"


def _community_key(community_id: int | None) -> str | None:
    return None if community_id is None else f"community:{community_id}"


def _now() -> datetime:
    return datetime.now(UTC)


def _today() -> date:
    return _now().date()
