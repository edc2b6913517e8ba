"""Which tier a user is in: the one an owner put them in (`/tier`, `easel users tier`), else the best one the
configuration gives them (`[tiers.NAME] discord_roles`, `telegram_users`), else `default`."""

from __future__ import annotations

from collections.abc import Collection

from bots.config import Settings
from storage.records import User

DEFAULT = "default"


def tier_of(settings: Settings, user: User, roles: Collection[str] = ()) -> str:
    """`roles`: the user's roles where they ask now; unknown after a restart, when a job's share is set again
    from its owner's row (an assigned tier and the Telegram list still count then)."""
    if user.tier != DEFAULT and user.tier in settings.tiers:
        return user.tier
    given = set(roles)
    matching = [
        name
        for name, tier in settings.tiers.items()
        if name != DEFAULT
        and (
            (user.platform == "discord" and given & set(tier.discord_roles))
            or (user.platform == "telegram" and user.platform_user_id in {str(uid) for uid in tier.telegram_users})
        )
    ]
    return max(matching, key=lambda name: settings.tiers[name].weight, default=DEFAULT)
