"""Who may moderate, and what the NSFW policy does with a result: pure rules, no database."""

from __future__ import annotations

from typing import Any

import pytest

from bots.config import load_settings
from bots.moderation.policy import Moderation, Role
from storage.records import Community

SETTINGS = load_settings(None, {"EASEL_MODERATION__OWNERS": '["telegram:1", "discord:2"]'})
MODERATION = Moderation(SETTINGS, db=None)  # type: ignore[arg-type]  # these rules never reach the database


def community(**settings: Any) -> Community:
    return Community(1, "discord", "guild", None, settings, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("platform", "user_id", "platform_role", "role"),
    [
        ("telegram", "1", Role.USER, Role.OWNER),
        ("discord", "2", Role.MODERATOR, Role.OWNER),
        ("discord", "1", Role.USER, Role.USER),  # an owner's id on another platform is someone else
        ("telegram", "3", Role.ADMIN, Role.ADMIN),
        ("telegram", "3", Role.USER, Role.USER),
    ],
)
def test_owners_come_from_the_config_and_the_rest_from_the_platform(
    platform: str, user_id: str, platform_role: Role, role: Role
) -> None:
    assert MODERATION.role(platform, user_id, platform_role) is role


def test_roles_are_ordered_by_what_they_may_do() -> None:
    assert Role.USER < Role.MODERATOR < Role.ADMIN < Role.OWNER


@pytest.mark.parametrize(
    ("policy", "scores", "nsfw_channel", "verdict"),
    [
        (None, [], False, "allow"),
        (None, [0.1, 0.79], False, "allow"),
        (None, [0.1, 0.8], False, "block"),  # the shipped default policy: blocked
        ("blocked", [0.95], True, "block"),
        ("nsfw_channels", [0.95], True, "allow"),
        ("nsfw_channels", [0.95], False, "block"),
        ("spoiler", [0.95], False, "spoiler"),
        ("spoiler", [0.2], False, "allow"),
    ],
)
def test_the_nsfw_policy_decides_from_the_scores(
    policy: str | None, scores: list[float], nsfw_channel: bool, verdict: str
) -> None:
    place = community(nsfw=policy) if policy else community()
    assert MODERATION.nsfw_verdict(place, scores, nsfw_channel) == verdict


@pytest.mark.parametrize(
    ("channels", "channel", "allowed"),
    [([], "5", True), (None, "5", True), (["5", "6"], "5", True), (["6"], "5", False)],
)
def test_a_channel_allowlist_opens_only_its_channels(channels: list[str] | None, channel: str, allowed: bool) -> None:
    assert Moderation.channel_allowed(community(channels=channels), channel) is allowed


def test_community_limits_keep_only_known_keys() -> None:
    limits = MODERATION.limits_for(community(limits={"max_steps": 30, "colour": 3}))
    assert limits == {"max_steps": 30}
    assert MODERATION.limits_for(None) == {}
