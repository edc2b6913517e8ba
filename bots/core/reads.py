"""What a user can look up and keep: their history, their place in the queue, their quota, their defaults, and
the styles they may name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bots.config import Settings
from bots.core.accounts import Accounts
from bots.core.admission import PREFERENCE_KEYS, today
from bots.core.files import Files
from bots.core.styles import StyleList, community_negative, styles_for
from bots.core.types import Actor, JobSummary, Place, QueueEntry, QuotaStatus
from bots.errors import UserError, user_error
from bots.moderation.tiers import tier_of
from generation.errors import InvalidRequest
from generation.requests import make_request
from generation.worker import Worker
from storage.database import Database


@dataclass(eq=False)
class Reads:
    settings: Settings
    db: Database
    files: Files
    worker: Worker
    accounts: Accounts

    async def styles(self, place: Place) -> StyleList:
        """The styles a request here may name, and the negative prompt this community adds to every request."""
        community = await self.accounts.community(place)
        return StyleList(tuple(styles_for(self.settings, community).values()), community_negative(community))

    async def queue(self, actor: Actor) -> list[QueueEntry]:
        """The actor's jobs still queued or running, with their place in the queue."""
        user = await self.accounts.user(actor)
        return [
            QueueEntry(job.id, job.state.value, job.prompt, self.worker.position(job.id), self.worker.eta(job.id))
            for job in await self.db.active_jobs(user.id)
        ]

    async def history(self, actor: Actor, limit: int = 10) -> list[JobSummary]:
        """The actor's newest jobs with their images: two queries, however many jobs."""
        user = await self.accounts.user(actor)
        jobs = await self.db.owner_jobs(user.id, limit=limit)
        outputs = await self.db.outputs_of_jobs([job.id for job in jobs if job.deleted_at is None])
        await self.files.fetch(output.path for shown in outputs.values() for output in shown)
        return [
            JobSummary(
                job.id,
                job.state.value,
                job.operation,
                job.prompt,
                job.seed,
                job.created_at,
                tuple(self.files.path_of(output.path) for output in outputs.get(job.id, ())),
            )
            for job in jobs
        ]

    async def quota(self, actor: Actor) -> QuotaStatus:
        user = await self.accounts.user(actor)
        tier = self.settings.tier(tier_of(self.settings, user, actor.roles))
        usage = await self.db.quota_usage(user.id, today())
        return QuotaStatus(usage.images, tier.images_per_day, usage.gpu_seconds, tier.gpu_seconds_per_day)

    async def preferences(self, actor: Actor) -> dict[str, Any]:
        return dict((await self.accounts.user(actor)).preferences)

    async def set_preferences(self, actor: Actor, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change the actor's own defaults (a None value removes one); refused when the result would make an
        invalid request, so a bad default can never break later requests."""
        user = await self.accounts.user(actor)
        unknown = sorted(set(changes) - PREFERENCE_KEYS)
        if unknown:
            raise UserError("settings.unknown", option=", ".join(unknown))
        merged = {key: value for key, value in {**user.preferences, **changes}.items() if value is not None}
        try:
            make_request(
                "txt2img", "check", defaults=self.settings.generation_defaults, limits=self.settings.limits, **merged
            )
        except InvalidRequest as error:
            raise user_error(error) from None
        return dict((await self.db.set_user_preferences(user.id, merged)).preferences)

    async def reset_preferences(self, actor: Actor) -> None:
        user = await self.accounts.user(actor)
        await self.db.set_user_preferences(user.id, {})
