"""Community moderation rules, platform-neutral and pure: who may moderate, what is blocked, what may change.

Adapters say what the platform knows of a member (a Discord member with Manage Server, a Telegram chat
administrator, a configured moderator role) as a `Role`; bot owners come from the configuration. Every
command checks the role here, on the server side, whatever the platform's UI shows or hides. The rules read
only the settings and the records they are given, so they are tested as tables; `bots.moderation.commands`
does the reads, the writes and the audit log around them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from functools import lru_cache
from typing import Any

from bots.config import Settings
from bots.errors import UserError
from bots.moderation.matching import BannedPattern, BannedWords
from storage.records import Community

NSFW_POLICIES = ("blocked", "nsfw_channels", "spoiler")
LIMIT_KEYS = ("images_per_day", "max_width", "max_height", "max_steps")


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


class ModerationPolicy:
    """The rules, from the settings alone: the same answers whether a command, a request or a test asks."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._global_words = BannedWords(
            [BannedPattern(text) for text in settings.moderation.banned_words]
            + [BannedPattern(text, regex=True) for text in settings.moderation.banned_patterns]
        )

    # --- who may act ---------------------------------------------------------------------------

    def role(self, platform: str, user_id: str, platform_role: Role = Role.USER) -> Role:
        """The platform's role, raised to owner for the bot owners named in the configuration."""
        if f"{platform}:{user_id}" in self.settings.moderation.owners:
            return Role.OWNER
        return platform_role

    def authorise(self, moderator: Moderator, needed: Role) -> str:
        """The platform id of the community the moderator acts in, once their role reaches `needed` there;
        refused otherwise, whatever the platform's UI let them send."""
        if moderator.community_id is None:
            raise UserError("moderation.community_only")
        if self.role(moderator.platform, moderator.user_id, moderator.role) < needed:
            raise UserError("moderation.not_allowed")
        return moderator.community_id

    def may_act_on(self, moderator: Moderator | None, job_community: tuple[str, str] | None) -> bool:
        """Whether someone may cancel or delete another user's job: an owner anywhere, a moderator only in the
        community they moderate. `job_community` is the job's (platform, platform id), None outside any."""
        if moderator is None:
            return False
        role = self.role(moderator.platform, moderator.user_id, moderator.role)
        if role is Role.OWNER:
            return True
        return (
            role >= Role.MODERATOR
            and moderator.community_id is not None
            and job_community == (moderator.platform, moderator.community_id)
        )

    # --- what a request may do -----------------------------------------------------------------

    @staticmethod
    def channel_allowed(community: Community, channel_id: str) -> bool:
        """An empty allowlist (the default) opens every channel."""
        channels = community.settings.get("channels") or []
        return not channels or channel_id in channels

    def banned_word(self, community: Community | None, text: str) -> BannedPattern | None:
        """The first pattern, global then the community's, that `text` holds; the caller logs it."""
        for words in (self._global_words, _compiled(tuple(community_words(community)))):
            found = words.find(text) if words else None
            if found is not None:
                return found
        return None

    def limits_for(self, community: Community | None) -> Mapping[str, int]:
        """The community's own limits (images per day, largest size, most steps), where it set them."""
        if community is None:
            return {}
        return {key: int(value) for key, value in community.settings.get("limits", {}).items() if key in LIMIT_KEYS}

    # --- what a result may show ----------------------------------------------------------------

    def flagged(self, scores: Sequence[float]) -> bool:
        """Whether any score reaches the safety threshold: only then does a community's NSFW policy matter."""
        return bool(scores) and max(scores) >= self.settings.safety.threshold

    def nsfw_policy(self, community: Community | None) -> str:
        """The community's choice, or the configured default where it made none (or outside communities)."""
        if community is None:
            return self.settings.moderation.nsfw_policy
        return str(community.settings.get("nsfw", self.settings.moderation.nsfw_policy))

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

    # --- what a community may change -----------------------------------------------------------

    @staticmethod
    def check_nsfw_policy(policy: str) -> None:
        """Checked before the role, so a mistyped policy is named to whoever sends it."""
        if policy not in NSFW_POLICIES:
            raise UserError("moderation.bad_nsfw", value=policy, allowed=", ".join(NSFW_POLICIES))

    def _ceilings(self) -> dict[str, int]:
        """The global limits: a community may tighten them, never loosen them."""
        limits = self.settings.limits
        return {
            "images_per_day": self.settings.tier("default").images_per_day,
            "max_width": limits.max_width,
            "max_height": limits.max_height,
            "max_steps": limits.max_steps,
        }

    def changed_limits(self, community: Community, changes: Mapping[str, int | None]) -> dict[str, int]:
        """The community's limits once `changes` apply (None removes an override); refused whole when one
        change names no limit or goes past the global ceiling."""
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
        return limits


def community_words(community: Community | None) -> list[BannedPattern]:
    """The community's own banned words, as stored in its settings."""
    if community is None:
        return []
    return [BannedPattern(item["text"], bool(item.get("regex"))) for item in community.settings.get("banned_words", [])]


@lru_cache(maxsize=256)
def _compiled(patterns: tuple[BannedPattern, ...]) -> BannedWords:
    """Communities' lists change rarely and are read on every request: compile each list once."""
    return BannedWords(patterns)
