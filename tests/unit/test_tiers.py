from __future__ import annotations

from datetime import UTC, datetime

from bots.config import Settings, TierSettings
from bots.moderation.tiers import tier_of
from storage.records import User

SETTINGS = Settings(
    tiers={
        "default": TierSettings(),
        "patron": TierSettings(weight=2, discord_roles=["patrons", "555"], telegram_users=[42]),
        "gold": TierSettings(weight=3, discord_roles=["gold"]),
    }
)


def user(platform: str, user_id: str, tier: str = "default") -> User:
    return User(1, platform, user_id, None, None, tier, None, None, {}, datetime.now(UTC))


def test_an_assigned_tier_wins_over_the_roles_and_lists() -> None:
    assert tier_of(SETTINGS, user("discord", "7", "patron"), ["gold"]) == "patron"
    assert tier_of(SETTINGS, user("telegram", "42", "gold")) == "gold"


def test_discord_roles_by_name_or_id_and_the_best_tier_of_several() -> None:
    assert tier_of(SETTINGS, user("discord", "7"), ["patrons"]) == "patron"
    assert tier_of(SETTINGS, user("discord", "7"), ["555"]) == "patron"
    assert tier_of(SETTINGS, user("discord", "7"), ["patrons", "gold"]) == "gold"
    assert tier_of(SETTINGS, user("discord", "7"), ["other"]) == "default"
    assert tier_of(SETTINGS, user("telegram", "7"), ["gold"]) == "default"  # roles are Discord's


def test_telegram_user_ids_and_a_tier_removed_from_the_config() -> None:
    assert tier_of(SETTINGS, user("telegram", "42")) == "patron"
    assert tier_of(SETTINGS, user("discord", "42")) == "default"
    assert tier_of(SETTINGS, user("telegram", "7", "silver")) == "default"  # silver is gone
    assert tier_of(SETTINGS, user("telegram", "42", "silver")) == "patron"
