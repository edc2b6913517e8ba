"""Admission: from an ask to a queued job, and the asks derived from earlier jobs (reroll, variations, edit,
zoom out and pan).

Ban, moderation, validation, quota and the queue's caps are checked in that order, the quota is reserved
and the job written (`queued`) before it reaches the worker; only then is the job real.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from bots.config import Settings, TierSettings
from bots.core import job_log
from bots.core.accounts import Accounts, now
from bots.core.announcer import Announcer, Route
from bots.core.files import Files
from bots.core.intake import answered
from bots.core.jobs import Jobs
from bots.core.languages import untranslated
from bots.core.lifecycle import Lifecycle, community_key, user_key
from bots.core.positions import Positions
from bots.core.styles import styled
from bots.core.types import Actor, EventKind, Place, Receipt
from bots.errors import UserError, user_error
from bots.moderation.commands import Moderation
from bots.moderation.tiers import tier_of
from generation.asks import Ask, Options, build_request
from generation.codec import decode, encode, stored_paths
from generation.config import GenerationDefaults, Limits
from generation.costs import job_cost
from generation.errors import InvalidImage, InvalidRequest, QueueRefused
from generation.images import decode_image, has_alpha
from generation.language_detection import detect_language
from generation.requests import GenerationRequest, Operation
from generation.worker import Worker, WorkItem
from storage.database import Database
from storage.errors import QuotaExceeded
from storage.records import Job, JobDraft, JobState, QuotaReservation, User

PREFERENCE_KEYS = frozenset(
    {"width", "height", "steps", "prior_steps", "guidance_scale", "prior_guidance_scale", "negative_prompt", "count"}
)
"""What a user may keep as their own defaults (`/settings`); a request's own options still win."""
SIZE_KEYS = ("width", "height")
"""Preferences that an operation sized by its input image ignores: the image decides."""


@dataclass(frozen=True)
class Prepared:
    """An ask ready to be built: its owner, their community, the ask as it will run, the prompt as shown."""

    user: User
    community_id: int | None
    ask: Ask
    shown_prompt: str
    limits: Limits
    tier: TierSettings

    def parts(self) -> tuple[User, int | None, Ask, str, Limits, TierSettings]:
        return self.user, self.community_id, self.ask, self.shown_prompt, self.limits, self.tier


@dataclass(eq=False)
class Admission:
    settings: Settings
    db: Database
    files: Files
    worker: Worker
    accounts: Accounts
    moderation: Moderation
    announcer: Announcer
    lifecycle: Lifecycle
    jobs: Jobs
    positions: Positions

    async def prepare(self, actor: Actor, place: Place, ask: Ask) -> Prepared:
        """Who asks and where, screened (bans, banned words, the channel), with their preferences under the ask's
        options, its language read and its style applied, and the community's limits and the user's tier."""
        user = await self.accounts.user(actor)
        community = await self.accounts.community(place)
        await self.moderation.check_request(user, community, ask.texts(), place.channel_id)
        options = ask.options.over(_preferences_for(ask, user.preferences))
        if options.language is None:
            options = replace(options, language=detect_language(" ".join(_prose(ask))))
        shown_prompt = ask.shown_prompt
        ask = styled(replace(ask, options=options), self.settings, community)
        overrides = self.moderation.limits_for(community)
        tier = _tier(self.settings.tier(tier_of(self.settings, user, actor.roles)), overrides)
        return Prepared(
            user,
            community.id if community is not None else None,
            ask,
            shown_prompt,
            _limits(self.settings.limits, overrides),
            tier,
        )

    async def submit(self, actor: Actor, place: Place, ask: Ask, parent_job_id: str | None = None) -> Receipt:
        prepared = await self.prepare(actor, place, ask)
        user, community_id, ask, shown_prompt, limits, tier = prepared.parts()
        uploads = _uploads(ask)
        request = await asyncio.to_thread(self.build, ask, limits) if uploads else self.build(ask, limits)
        estimate = self.worker.throughput.seconds(request)
        if uploads:  # refused before they are written; `create_job` checks the same limits atomically in any case
            await self._check_quota(user, tier, request.count, estimate)
        try:
            self.worker.queue.check_capacity(user_key(user.id))
        except QueueRefused as error:
            raise user_error(error) from None
        if uploads:
            parameters = await asyncio.to_thread(encode, request, ask, self._keep_input)
        else:
            parameters = encode(request, ask, self._keep_input)
        if uploads:
            await self.files.share(stored_paths(parameters))
        draft = JobDraft(
            owner_id=user.id,
            community_id=community_id,
            platform=place.platform,
            channel_id=place.channel_id,
            operation=str(request.operation),
            parameters={**parameters, "nsfw_channel": place.nsfw},
            prompt=shown_prompt,
            negative_prompt=request.negative_prompt,
            seed=request.seed,
            cost=job_cost(request),
            parent_id=parent_job_id,
            answers=answered(),
        )
        reservation = QuotaReservation(today(), request.count, estimate, tier.images_per_day, tier.gpu_seconds_per_day)
        try:
            job = await self.db.create_job(draft, reservation)
        except QuotaExceeded as error:  # another request of the same user got there first
            raise quota_error(error.resource, tier) from None
        language = user.chosen_language or actor.language or user.language or request.language
        route = Route(place.platform, place.channel_id, actor.user_id, language, job.prompt, place.message_id)
        self.announcer.route(job.id, route)
        try:
            await self.worker.submit(
                WorkItem(job.id, request, user_key(user.id), community_key(community_id), tier.weight)
            )
        except QueueRefused as error:
            await self.lifecycle.close(job.id, JobState.FAILED, error_key="queue.refused")
            raise user_error(error) from None
        receipt = Receipt(job.id, self.worker.position(job.id), self.worker.eta(job.id))
        await self.tell_queued(job, actor, receipt, untranslated(self.settings.translation, request.language))
        if receipt.position is not None:
            self.positions.track(job.id, (place.platform, place.channel_id), receipt.position, receipt.eta_seconds)
        return receipt

    async def tell_queued(self, job: Job, actor: Actor, receipt: Receipt, untold: str | None) -> None:
        """A job just queued (a grid, once its first cell is): its log line, and its queued event to its owner."""
        job_log.queued(job, actor.user_id, receipt.position)
        await self.announcer.emit(
            EventKind.QUEUED, job.id, position=receipt.position, eta_seconds=receipt.eta_seconds, untranslated=untold
        )

    async def reroll(self, actor: Actor, place: Place, job_id: str) -> Receipt:
        """The same request with a new seed, for whoever asks: the new job is theirs, and so is its cost."""
        job = await self.jobs.visible_job(job_id)
        await self.files.fetch(stored_paths(job.parameters))
        ask = await asyncio.to_thread(decode, job.parameters, job.seed, self.files.read)
        ask = replace(ask, options=ask.options.without("seed"), shown=job.prompt)
        return await self.submit(actor, place, ask, job.id)

    async def variations(self, actor: Actor, place: Place, job_id: str, index: int = 0) -> Receipt:
        """An img2img of one of the job's images with its own prompt, at the default strength."""
        job, output, data = await self.jobs.output(job_id, index)
        sized = Options(width=output.width, height=output.height)
        return await self.submit(actor, place, Ask("img2img", job.prompt or "a variation", sized, image=data), job.id)

    async def outpaint(
        self, actor: Actor, place: Place, job_id: str, index: int, options: Options, prompt: str = ""
    ) -> Receipt:
        """Zoom out of one of the job's images, or pan it (`options` names which), after `prompt` or else the
        prompt the job ran (its style's template included, so that the new border is drawn in that style)."""
        job, _output, data = await self.jobs.output(job_id, index)
        ran = str(job.parameters.get("prompt") or job.prompt)
        shown = None if prompt else job.prompt
        ask = Ask("outpaint", prompt or ran or "a wider view", options, image=data, shown=shown)
        return await self.submit(actor, place, ask, job.id)

    async def edit(
        self,
        actor: Actor,
        place: Place,
        job_id: str,
        index: int,
        prompt: str,
        options: Options,
        operation: str = "img2img",
    ) -> Receipt:
        """An img2img (or a remix) of one of the job's images after a new prompt: a reply to a bot image, an Edit
        button, /remix in reply to a bot image."""
        job, output, data = await self.jobs.output(job_id, index)
        sized = options.over(Options(width=output.width, height=output.height))
        return await self.submit(actor, place, Ask(operation, prompt, sized, image=data), job.id)

    async def upload_operation(self, data: bytes) -> str:
        """What an image sent with only a prompt asks for: inpaint when some of its pixels are transparent
        (they mark what to repaint), img2img otherwise."""
        try:
            image = await asyncio.to_thread(decode_image, data, self.settings.limits.max_input_pixels)
        except InvalidImage as error:
            raise user_error(error) from None
        lowest_alpha, _ = image.convert("RGBA").getchannel("A").getextrema()
        transparent = has_alpha(image) and isinstance(lowest_alpha, int) and lowest_alpha < 255
        return Operation.INPAINT.value if transparent else Operation.IMG2IMG.value

    def build(self, ask: Ask, limits: Limits | None = None) -> GenerationRequest:
        """Decode and validate within `limits` (a community's own, or the global ones)."""
        limits = limits or self.settings.limits
        defaults = _defaults_within(self.settings.generation_defaults, limits)
        try:
            return build_request(ask, defaults=defaults, limits=limits)
        except (InvalidRequest, InvalidImage) as error:
            raise user_error(error) from None

    def _keep_input(self, data: bytes) -> str:
        return self.files.put(data, ".bin", kind="inputs").path

    async def _check_quota(self, user: User, tier: TierSettings, images: int, gpu_seconds: float) -> None:
        """Refuse before the uploads are written; `create_job` enforces the same limits atomically."""
        usage = await self.db.quota_usage(user.id, today())
        if usage.images + images > tier.images_per_day:
            raise quota_error("images", tier)
        if usage.gpu_seconds + gpu_seconds > tier.gpu_seconds_per_day:
            raise quota_error("gpu_seconds", tier)


def _uploads(ask: Ask) -> bool:
    """Whether the ask carries images: decoding and keeping them is slow work for a thread, and worth a quota
    check first. A text alone is checked and encoded in microseconds, and needs neither."""
    return ask.image is not None or ask.mask_image is not None or any(isinstance(item, bytes) for item in ask.mix)


def _prose(ask: Ask) -> list[str]:
    """The texts whose language the prompt has: the prompt and mix texts, not the negative prompt."""
    return [ask.prompt, *(item for item in ask.mix if isinstance(item, str))]


def _preferences_for(ask: Ask, preferences: Mapping[str, Any]) -> Options:
    """The user's defaults that apply to this request: an input image, or an aspect ratio, decides its own size."""
    sized_by_image = ask.image is not None or ask.options.aspect is not None
    return Options.of(
        {
            key: value
            for key, value in preferences.items()
            if key in PREFERENCE_KEYS and not (sized_by_image and key in SIZE_KEYS)
        }
    )


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


def quota_error(resource: str, tier: TierSettings) -> UserError:
    if resource == "images":
        return UserError("quota.images", limit=tier.images_per_day)
    return UserError("quota.gpu_seconds", limit=int(tier.gpu_seconds_per_day))


def today() -> date:
    return now().date()
