"""Community moderation against the database: every request screened, every command carried out and logged.

The rules themselves are `ModerationPolicy`'s (bots.moderation.policy); this class reads what they need
(a community's settings, a ban, the job's community), writes what a command changes, and records every
moderation action and every blocked request in the moderation log.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bots.config import Settings
from bots.core.styles import MAX_COMMUNITY_STYLES, Style, community_styles, style_name
from bots.errors import UserError, user_error
from bots.moderation.matching import BannedPattern, InvalidPattern, validate
from bots.moderation.policy import LogEntry, ModerationPolicy, Moderator, Role, community_words
from bots.moderation.tiers import tier_of
from storage.database import Database
from storage.records import Community, Job, User

LOG_EXPORT_LIMIT = 10_000
MAX_STYLE_TEXT = 500
"""The longest template or negative prompt a style may hold, as in the configuration's `[styles]`."""
_USER_TARGET = re.compile(r"user:\d+")


class Moderation:
    """What the service and the adapters call: the policy's rules with the reads, writes and log around them."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.policy = ModerationPolicy(settings)
        self.db = db

    # --- what every request goes through -----------------------------------------------------

    async def check_request(
        self, user: User, community: Community | None, texts: Iterable[str], channel_id: str | None = None
    ) -> None:
        """Refuse a request in a channel the community closed to the bot, from a user banned here, or whose
        texts hold a banned word; log a blocked text."""
        if community is not None and channel_id is not None and not self.policy.channel_allowed(community, channel_id):
            raise UserError("moderation.channel_closed")
        if community is not None:
            ban = await self.db.community_ban(community.id, user.id)
            if ban is not None and ban.is_active(_now()):
                if ban.permanent:
                    raise UserError("user.banned", reason=ban.reason or "-")
                raise UserError("user.banned_until", until=f"{ban.until:%Y-%m-%d %H:%M}", reason=ban.reason or "-")
        await self.screen(user, community, texts)

    def holds_banned_word(self, community: Community | None, texts: Iterable[str]) -> bool:
        """`screen`'s question without its log: a live preview is judged by it, its result by `screen`."""
        return any(self.policy.banned_word(community, text) is not None for text in texts)

    async def screen(self, user: User, community: Community | None, texts: Iterable[str]) -> None:
        """Raise `moderation.blocked` when a text holds a banned word, global or of this community."""
        for text in texts:
            found = self.policy.banned_word(community, text)
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
        """The community's own limits: the service applies them to every request (see the policy)."""
        return self.policy.limits_for(community)

    def flagged(self, scores: Sequence[float]) -> bool:
        """Whether a result's scores reach the safety threshold (see the policy)."""
        return self.policy.flagged(scores)

    def nsfw_verdict(self, community: Community | None, scores: Sequence[float], nsfw_channel: bool) -> str:
        """The verdict on a result that scored `scores`: whether it shows, hidden or not at all (see the policy)."""
        return self.policy.nsfw_verdict(community, scores, nsfw_channel)

    async def log_nsfw_block(self, job: Job, scores: Sequence[float]) -> None:
        await self.db.log_moderation(
            "blocked",
            f"job:{job.id}",
            community_id=job.community_id,
            reason="nsfw image",
            details={"highest_score": round(max(scores), 3), "owner": f"user:{job.owner_id}"},
        )

    async def may_act_on(self, moderator: Moderator | None, job: Job) -> bool:
        """Whether someone may cancel or delete another user's job (the policy's rule); the job's community
        is read only when there is both someone to judge and a community to read."""
        place: tuple[str, str] | None = None
        if moderator is not None and job.community_id is not None:
            community = await self.db.get_community(job.community_id)
            place = None if community is None else (community.platform, community.platform_id)
        return self.policy.may_act_on(moderator, place)

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
        try:
            validate(banned)
        except InvalidPattern as error:
            raise user_error(error) from None
        words = [word for word in community_words(community) if word != banned] + [banned]
        await self._save_words(community, words)
        await self._log(moderator, community, "banword.add", banned.text, details={"regex": regex})
        return words

    async def remove_word(self, moderator: Moderator, pattern: str) -> list[BannedPattern]:
        community = await self._community(moderator, Role.MODERATOR)
        words = community_words(community)
        kept = [word for word in words if word.text != pattern.strip()]
        if len(kept) == len(words):
            raise UserError("moderation.no_such_word", pattern=pattern.strip())
        await self._save_words(community, kept)
        await self._log(moderator, community, "banword.remove", pattern.strip())
        return kept

    async def words(self, moderator: Moderator) -> list[BannedPattern]:
        return community_words(await self._community(moderator, Role.MODERATOR))

    async def ban(
        self, moderator: Moderator, platform_user_id: str, until: datetime | None, reason: str, *, everywhere: bool
    ) -> None:
        """Ban from this community, or (owners only) from easel everywhere."""
        community = await self._community(moderator, Role.OWNER if everywhere else Role.MODERATOR)
        target = await self.db.get_or_create_user(moderator.platform, platform_user_id)
        if self.policy.role(moderator.platform, platform_user_id) is Role.OWNER:
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
        self.policy.check_nsfw_policy(policy)
        community = await self._community(moderator, Role.ADMIN)
        await self.db.update_community_settings(community.id, {"nsfw": policy})
        await self._log(moderator, community, "nsfw", policy)

    async def set_limits(self, moderator: Moderator, changes: Mapping[str, int | None]) -> Mapping[str, int]:
        """Override the global limits in this community (None removes an override); never above the global."""
        community = await self._community(moderator, Role.ADMIN)
        limits = self.policy.changed_limits(community, changes)
        await self.db.update_community_settings(community.id, {"limits": limits})
        await self._log(moderator, community, "limits", ",".join(sorted(changes)), details=dict(changes))
        return limits

    async def add_style(self, moderator: Moderator, name: str, prompt: str, negative: str = "") -> Style:
        """A style of this community's own (admins), replacing one of the same name; at most
        `MAX_COMMUNITY_STYLES`, so that any list of them fits a message and a Discord choice list. Returns it as
        stored (its name lowercased, its texts trimmed)."""
        community = await self._community(moderator, Role.ADMIN)
        name, prompt, negative = style_name(name), prompt.strip(), negative.strip()
        if not prompt or len(prompt) > MAX_STYLE_TEXT or len(negative) > MAX_STYLE_TEXT:
            raise UserError("moderation.bad_style", limit=MAX_STYLE_TEXT)
        styles = dict(community_styles(community))
        if name not in styles and len(styles) >= MAX_COMMUNITY_STYLES:
            raise UserError("moderation.too_many_styles", limit=MAX_COMMUNITY_STYLES)
        styles[name] = {"prompt": prompt, "negative": negative}
        await self.db.update_community_settings(community.id, {"styles": styles})
        await self._log(moderator, community, "style_add", name, details={"prompt": prompt, "negative": negative})
        return Style(name, prompt, negative, community=True)

    async def remove_style(self, moderator: Moderator, name: str) -> str:
        """Returns the name removed, as stored."""
        community = await self._community(moderator, Role.ADMIN)
        styles, name = dict(community_styles(community)), style_name(name)
        if styles.pop(name, None) is None:
            raise UserError("moderation.no_such_style", name=name)
        await self.db.update_community_settings(community.id, {"styles": styles})
        await self._log(moderator, community, "style_remove", name)
        return name

    async def set_negative(self, moderator: Moderator, text: str) -> str:
        """The negative prompt every request in this community gets (admins); empty clears it."""
        community = await self._community(moderator, Role.ADMIN)
        negative = text.strip()
        if len(negative) > MAX_STYLE_TEXT:
            raise UserError("moderation.bad_style", limit=MAX_STYLE_TEXT)
        await self.db.update_community_settings(community.id, {"negative_prompt": negative})
        await self._log(moderator, community, "negative", negative or "-")
        return negative

    async def set_tier(self, moderator: Moderator, platform_user_id: str, name: str) -> str:
        """Put a user of the moderator's platform in a tier (owners only, from anywhere; `default` takes them out
        of theirs); the change is logged, in the community where it was asked if any. Returns the tier before."""
        if self.policy.role(moderator.platform, moderator.user_id, moderator.role) is not Role.OWNER:
            raise UserError("moderation.owners_only")
        if name not in self.settings.tiers:
            raise UserError("moderation.bad_tier", name=name, allowed=", ".join(sorted(self.settings.tiers)))
        target = await self.db.get_or_create_user(moderator.platform, platform_user_id)
        before = tier_of(self.settings, target)
        await self.db.set_user_tier(target.id, name)
        community = None
        if moderator.community_id is not None:
            community = await self.db.get_or_create_community(moderator.platform, moderator.community_id)
        await self.db.log_moderation(
            "tier",
            f"user:{target.id}",
            community_id=community.id if community is not None else None,
            actor_id=await self._actor_id(moderator),
            details={"from": target.tier, "to": name},
        )
        return before

    async def tier(self, moderator: Moderator, platform_user_id: str) -> str:
        """The tier a user of the moderator's platform is in (owners only), as far as their row and the
        configuration tell (a Discord role counts where the user asks, not here)."""
        if self.policy.role(moderator.platform, moderator.user_id, moderator.role) is not Role.OWNER:
            raise UserError("moderation.owners_only")
        return tier_of(self.settings, await self.db.get_or_create_user(moderator.platform, platform_user_id))

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
        return _as_csv(await self.log(moderator, LOG_EXPORT_LIMIT))

    # --- internals -----------------------------------------------------------------------------

    async def _community(self, moderator: Moderator, needed: Role) -> Community:
        """The community the moderator acts in, read (or created) only once the policy allows the action."""
        return await self.db.get_or_create_community(moderator.platform, self.policy.authorise(moderator, needed))

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


def _as_csv(entries: Sequence[LogEntry]) -> bytes:
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


def _person(user: User) -> str:
    """ "Ann (telegram 1001)": a name for people, the platform id for the record."""
    account = f"{user.platform} {user.platform_user_id}"
    return f"{user.display_name} ({account})" if user.display_name else account


def _now() -> datetime:
    return datetime.now(UTC)
