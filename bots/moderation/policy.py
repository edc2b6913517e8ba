"""Community moderation, platform-neutral: who may moderate, what is blocked, and the audit trail.

Adapters say what the platform knows of a member (a Discord member with Manage Server, a Telegram chat
administrator, a configured moderator role) as a `Role`; bot owners come from the configuration. Every
command checks the role here, on the server side, whatever the platform's UI shows or hides. Every
moderation action and every blocked request is written to the moderation log.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from functools import lru_cache
from typing import Any

from bots.config import Settings
from bots.errors import UserError
from bots.moderation.matching import BannedPattern, BannedWords, validate
from storage.database import Database
from storage.records import Community, Job, User

NSFW_POLICIES = ("blocked", "nsfw_channels", "spoiler")
LIMIT_KEYS = ("images_per_day", "max_width", "max_height", "max_steps")
LOG_EXPORT_LIMIT = 10_000
_USER_TARGET = re.compile(r"user:\d+")


class Role(IntEnum):
    USER = 0
    MODERATOR = 1
    ADMIN = 2
    OWNER = 3


@dataclass(frozen=True)
class Moderator:
    """Who acts, where, and with which role (as the adapter found it on the platform)."""

    platform: str
    user_id: str
    community_id: str | None
    role: Role
    display_name: str | None = None


@dataclass(frozen=True)
class LogEntry:
    """An audit log entry as moderators read it: people by their platform name and id, not easel's ids."""

    created_at: datetime
    action: str
    target: str
    actor: str | None
    """None when easel itself acted (an automatic filter)."""
    reason: str | None
    details: Mapping[str, Any]


class Moderation:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self._global_words = BannedWords(
            [BannedPattern(text) for text in settings.moderation.banned_words]
            + [BannedPattern(text, regex=True) for text in settings.moderation.banned_patterns]
        )

    def role(self, platform: str, user_id: str, platform_role: Role = Role.USER) -> Role:
        """The platform's role, raised to owner for the bot owners named in the configuration."""
        if f"{platform}:{user_id}" in self.settings.moderation.owners:
            return Role.OWNER
        return platform_role

    # --- what every request goes through -----------------------------------------------------

    async def check_request(
        self, user: User, community: Community | None, texts: Iterable[str], channel_id: str | None = None
    ) -> None:
        """Refuse a request in a channel the community closed to the bot, from a user banned here, or whose
        texts hold a banned word; log a blocked text."""
        if community is not None and channel_id is not None and not self.channel_allowed(community, channel_id):
            raise UserError("moderation.channel_closed")
        if community is not None:
            ban = await self.db.community_ban(community.id, user.id)
            if ban is not None and ban.is_active(_now()):
                if ban.permanent:
                    raise UserError("user.banned", reason=ban.reason or "-")
                raise UserError("user.banned_until", until=f"{ban.until:%Y-%m-%d %H:%M}", reason=ban.reason or "-")
        await self.screen(user, community, texts)

    async def screen(self, user: User, community: Community | None, texts: Iterable[str]) -> None:
        """Raise `moderation.blocked` when a text holds a banned word, global or of this community."""
        lists = [self._global_words, _community_words(community)]
        for text in texts:
            for words in lists:
                found = words.find(text) if words else None
                if found is not None:
                    await self.db.log_moderation(
                        "blocked",
                        f"user:{user.id}",
                        community_id=community.id if community else None,
                        reason="banned word",
                        details={"pattern": found.text, "regex": found.regex, "text": text[:500]},
                    )
                    raise UserError("moderation.blocked")

    def limits_for(self, community: Community | None) -> Mapping[str, int]:
        """The community's own limits (images per day, largest size, most steps), where it set them."""
        if community is None:
            return {}
        return {key: int(value) for key, value in community.settings.get("limits", {}).items() if key in LIMIT_KEYS}

    def flagged(self, scores: Sequence[float]) -> bool:
        """Whether any score reaches the safety threshold: only then does a community's NSFW policy matter."""
        return bool(scores) and max(scores) >= self.settings.safety.threshold

    def nsfw_verdict(self, community: Community | None, scores: Sequence[float], nsfw_channel: bool) -> str:
        """The verdict ("allow", "spoiler" or "block") on a result whose images and inputs scored `scores`."""
        if not self.flagged(scores):
            return "allow"
        policy = self.nsfw_policy(community)
        if policy == "spoiler":
            return "spoiler"
        if policy == "nsfw_channels" and nsfw_channel:
            return "allow"
        return "block"

    async def log_nsfw_block(self, job: Job, scores: Sequence[float]) -> None:
        await self.db.log_moderation(
            "blocked",
            f"job:{job.id}",
            community_id=job.community_id,
            reason="nsfw image",
            details={"highest_score": round(max(scores), 3), "owner": f"user:{job.owner_id}"},
        )

    @staticmethod
    def channel_allowed(community: Community, channel_id: str) -> bool:
        """An empty allowlist (the default) opens every channel."""
        channels = community.settings.get("channels") or []
        return not channels or channel_id in channels

    def nsfw_policy(self, community: Community | None) -> str:
        if community is None:
            return self.settings.moderation.nsfw_policy
        return str(community.settings.get("nsfw", self.settings.moderation.nsfw_policy))

    async def may_act_on(self, moderator: Moderator | None, job: Job) -> bool:
        """Whether someone may cancel or delete another user's job: a moderator of the job's community, or an
        owner anywhere."""
        if moderator is None:
            return False
        role = self.role(moderator.platform, moderator.user_id, moderator.role)
        if role is Role.OWNER:
            return True
        if role < Role.MODERATOR or job.community_id is None or moderator.community_id is None:
            return False
        community = await self.db.get_community(job.community_id)
        return (
            community is not None
            and community.platform == moderator.platform
            and community.platform_id == moderator.community_id
        )

    async def community_of(self, moderator: Moderator) -> Community:
        """The community a moderator moderates (refused to anyone below moderator)."""
        return await self._community(moderator, Role.MODERATOR)

    async def record(
        self, moderator: Moderator, action: str, target: str, *, community_id: int | None, reason: str | None = None
    ) -> None:
        """Log an action the core carried out for a moderator (a deletion, a cancel, a purge)."""
        await self.db.log_moderation(
            action, target, community_id=community_id, actor_id=await self._actor_id(moderator), reason=reason
        )

    # --- commands ------------------------------------------------------------------------------

    async def add_word(self, moderator: Moderator, pattern: str, *, regex: bool = False) -> list[BannedPattern]:
        community = await self._community(moderator, Role.MODERATOR)
        banned = BannedPattern(pattern.strip(), regex=regex)
        validate(banned)
        words = [word for word in _stored_words(community) if word != banned] + [banned]
        await self._save_words(community, words)
        await self._log(moderator, community, "banword.add", banned.text, details={"regex": regex})
        return words

    async def remove_word(self, moderator: Moderator, pattern: str) -> list[BannedPattern]:
        community = await self._community(moderator, Role.MODERATOR)
        words = _stored_words(community)
        kept = [word for word in words if word.text != pattern.strip()]
        if len(kept) == len(words):
            raise UserError("moderation.no_such_word", pattern=pattern.strip())
        await self._save_words(community, kept)
        await self._log(moderator, community, "banword.remove", pattern.strip())
        return kept

    async def words(self, moderator: Moderator) -> list[BannedPattern]:
        return _stored_words(await self._community(moderator, Role.MODERATOR))

    async def ban(
        self, moderator: Moderator, platform_user_id: str, until: datetime | None, reason: str, *, everywhere: bool
    ) -> None:
        """Ban from this community, or (owners only) from easel everywhere."""
        community = await self._community(moderator, Role.OWNER if everywhere else Role.MODERATOR)
        target = await self.db.get_or_create_user(moderator.platform, platform_user_id)
        if self.role(moderator.platform, platform_user_id) is Role.OWNER:
            raise UserError("moderation.not_allowed")
        if everywhere:
            await self.db.ban_user(target.id, until, reason)
        else:
            await self.db.ban_in_community(
                community.id, target.id, until, reason, actor_id=await self._actor_id(moderator)
            )
        details = {"until": until.isoformat() if until else "permanent", "everywhere": everywhere}
        await self._log(moderator, community, "ban", f"user:{target.id}", reason=reason, details=details)

    async def unban(self, moderator: Moderator, platform_user_id: str, *, everywhere: bool) -> None:
        community = await self._community(moderator, Role.OWNER if everywhere else Role.MODERATOR)
        target = await self.db.get_or_create_user(moderator.platform, platform_user_id)
        if everywhere:
            await self.db.unban_user(target.id)
        elif not await self.db.unban_in_community(community.id, target.id):
            raise UserError("moderation.not_banned")
        await self._log(moderator, community, "unban", f"user:{target.id}", details={"everywhere": everywhere})

    async def channels(self, moderator: Moderator) -> list[str]:
        """The channels this community opened to the bot (empty: all)."""
        community = await self._community(moderator, Role.MODERATOR)
        return [str(channel) for channel in community.settings.get("channels") or []]

    async def set_channels(self, moderator: Moderator, channel_ids: Sequence[str]) -> list[str]:
        """Where the bot answers in this community; an empty list opens every channel again."""
        community = await self._community(moderator, Role.ADMIN)
        channels = sorted(set(channel_ids))
        await self.db.update_community_settings(community.id, {"channels": channels})
        await self._log(moderator, community, "channels", ",".join(channels) or "all")
        return channels

    async def set_nsfw(self, moderator: Moderator, policy: str) -> None:
        if policy not in NSFW_POLICIES:
            raise UserError("moderation.bad_nsfw", value=policy, allowed=", ".join(NSFW_POLICIES))
        community = await self._community(moderator, Role.ADMIN)
        await self.db.update_community_settings(community.id, {"nsfw": policy})
        await self._log(moderator, community, "nsfw", policy)

    async def set_limits(self, moderator: Moderator, changes: Mapping[str, int | None]) -> Mapping[str, int]:
        """Override the global limits in this community (None removes an override); never above the global."""
        community = await self._community(moderator, Role.ADMIN)
        unknown = sorted(set(changes) - set(LIMIT_KEYS))
        if unknown:
            raise UserError("moderation.bad_limit", name=", ".join(unknown), allowed=", ".join(LIMIT_KEYS))
        ceiling = self._ceilings()
        limits = dict(self.limits_for(community))
        for key, value in changes.items():
            if value is None:
                limits.pop(key, None)
            elif not 0 <= value <= ceiling[key]:
                raise UserError("moderation.limit_range", name=key, value=value, maximum=ceiling[key])
            else:
                limits[key] = value
        await self.db.update_community_settings(community.id, {"limits": limits})
        await self._log(moderator, community, "limits", ",".join(sorted(changes)), details=dict(changes))
        return limits

    async def log(self, moderator: Moderator, limit: int = 20) -> list[LogEntry]:
        """The community's newest entries first."""
        community = await self._community(moderator, Role.MODERATOR)
        entries = await self.db.moderation_log(community.id, limit)
        names: dict[int, str] = {}

        async def name(user_id: int) -> str:
            if user_id not in names:
                user = await self.db.get_user(user_id)
                names[user_id] = _person(user) if user is not None else f"user:{user_id}"
            return names[user_id]

        return [
            LogEntry(
                entry.created_at,
                entry.action,
                await name(int(entry.target[5:])) if _USER_TARGET.fullmatch(entry.target) else entry.target,
                None if entry.actor_id is None else await name(entry.actor_id),
                entry.reason,
                entry.details,
            )
            for entry in entries
        ]

    async def log_csv(self, moderator: Moderator) -> bytes:
        """The community's whole audit log as CSV (UTF-8 with a BOM, so spreadsheets read it right)."""
        entries = await self.log(moderator, LOG_EXPORT_LIMIT)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["time", "action", "target", "actor", "reason", "details"])
        for entry in entries:
            writer.writerow(
                [
                    entry.created_at.isoformat(),
                    entry.action,
                    entry.target,
                    entry.actor or "",
                    entry.reason or "",
                    ";".join(f"{key}={value}" for key, value in sorted(entry.details.items())),
                ]
            )
        return buffer.getvalue().encode("utf-8-sig")

    # --- internals -----------------------------------------------------------------------------

    async def _community(self, moderator: Moderator, needed: Role) -> Community:
        """The community the moderator acts in, once their role allows the action there."""
        if moderator.community_id is None:
            raise UserError("moderation.community_only")
        role = self.role(moderator.platform, moderator.user_id, moderator.role)
        if role < needed:
            raise UserError("moderation.not_allowed")
        return await self.db.get_or_create_community(moderator.platform, moderator.community_id)

    async def _actor_id(self, moderator: Moderator) -> int:
        user = await self.db.get_or_create_user(moderator.platform, moderator.user_id, moderator.display_name)
        return user.id

    async def _log(
        self,
        moderator: Moderator,
        community: Community,
        action: str,
        target: str,
        *,
        reason: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        await self.db.log_moderation(
            action,
            target,
            community_id=community.id,
            actor_id=await self._actor_id(moderator),
            reason=reason,
            details=details,
        )

    async def _save_words(self, community: Community, words: Sequence[BannedPattern]) -> None:
        stored = [{"text": word.text, "regex": word.regex} for word in words]
        await self.db.update_community_settings(community.id, {"banned_words": stored})

    def _ceilings(self) -> dict[str, int]:
        limits = self.settings.limits
        tier = self.settings.tier("default")
        return {
            "images_per_day": tier.images_per_day,
            "max_width": limits.max_width,
            "max_height": limits.max_height,
            "max_steps": limits.max_steps,
        }


def _person(user: User) -> str:
    """ "Ann (telegram 1001)": a name for people, the platform id for the record."""
    account = f"{user.platform} {user.platform_user_id}"
    return f"{user.display_name} ({account})" if user.display_name else account


def _stored_words(community: Community | None) -> list[BannedPattern]:
    if community is None:
        return []
    return [BannedPattern(item["text"], bool(item.get("regex"))) for item in community.settings.get("banned_words", [])]


def _community_words(community: Community | None) -> BannedWords:
    return _compiled(tuple(_stored_words(community)))


@lru_cache(maxsize=256)
def _compiled(patterns: tuple[BannedPattern, ...]) -> BannedWords:
    """Communities' lists change rarely and are read on every request: compile each list once."""
    return BannedWords(patterns)


def _now() -> datetime:
    return datetime.now(UTC)
