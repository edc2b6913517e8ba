"""Who may moderate, what a request may hold, and what the NSFW policy does with a result: pure rules, built
from the settings alone."""

from __future__ import annotations

from typing import Any

import pytest

from bots.config import load_settings
from bots.errors import UserError
from bots.moderation.policy import ModerationPolicy, Moderator, Role
from storage.records import Community

SETTINGS = load_settings(
    None, {"EASEL_MODERATION__OWNERS": '["telegram:1", "discord:2"]', "EASEL_MODERATION__BANNED_WORDS": '["gore"]'}
)
POLICY = ModerationPolicy(SETTINGS)


def community(**settings: Any) -> Community:
    return Community(1, "discord", "guild", None, settings, None)  # type: ignore[arg-type]


def refusal(call: Any, *args: Any) -> str:
    with pytest.raises(UserError) as caught:
        call(*args)
    return caught.value.key


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
    assert POLICY.role(platform, user_id, platform_role) is role


def test_roles_are_ordered_by_what_they_may_do() -> None:
    assert Role.USER < Role.MODERATOR < Role.ADMIN < Role.OWNER


@pytest.mark.parametrize(
    ("moderator", "needed", "refused"),
    [
        (Moderator("discord", "5", "guild", Role.MODERATOR), Role.MODERATOR, None),
        (Moderator("discord", "5", "guild", Role.MODERATOR), Role.ADMIN, "moderation.not_allowed"),
        (Moderator("discord", "5", "guild", Role.USER), Role.MODERATOR, "moderation.not_allowed"),
        (Moderator("discord", "2", "guild", Role.USER), Role.OWNER, None),  # an owner from the config
        (Moderator("discord", "5", "guild", Role.ADMIN), Role.OWNER, "moderation.not_allowed"),
        (Moderator("discord", "2", None, Role.OWNER), Role.MODERATOR, "moderation.community_only"),
    ],
)
def test_a_command_needs_a_community_and_the_role_it_asks_for(
    moderator: Moderator, needed: Role, refused: str | None
) -> None:
    if refused is None:
        assert POLICY.authorise(moderator, needed) == "guild"
    else:
        assert refusal(POLICY.authorise, moderator, needed) == refused


@pytest.mark.parametrize(
    ("moderator", "job_community", "allowed"),
    [
        (None, ("discord", "guild"), False),
        (Moderator("discord", "5", "guild", Role.MODERATOR), ("discord", "guild"), True),
        (Moderator("discord", "5", "guild", Role.MODERATOR), ("discord", "other"), False),
        (Moderator("telegram", "5", "guild", Role.MODERATOR), ("discord", "guild"), False),  # same id, elsewhere
        (Moderator("discord", "5", "guild", Role.MODERATOR), None, False),  # a private job
        (Moderator("discord", "5", "guild", Role.USER), ("discord", "guild"), False),
        (Moderator("discord", "2", None, Role.USER), ("telegram", "group"), True),  # owners act anywhere
        (Moderator("discord", "2", None, Role.USER), None, True),
    ],
)
def test_moderators_act_on_others_jobs_only_in_their_community(
    moderator: Moderator | None, job_community: tuple[str, str] | None, allowed: bool
) -> None:
    assert POLICY.may_act_on(moderator, job_community) is allowed


@pytest.mark.parametrize(
    ("place", "text", "found"),
    [
        (None, "a cat", None),
        (None, "so much GORE", "gore"),  # the global list holds everywhere
        (community(banned_words=[{"text": "dragon"}]), "a red dragon", "dragon"),
        (community(banned_words=[{"text": r"dr[a4]g[o0]n", "regex": True}]), "a dr4gon", r"dr[a4]g[o0]n"),
        (community(banned_words=[{"text": "dragon"}]), "a cat", None),
        (None, "a red dragon", None),  # a community's list holds only there
    ],
)
def test_the_banned_word_found_is_global_or_the_communitys(
    place: Community | None, text: str, found: str | None
) -> None:
    pattern = POLICY.banned_word(place, text)
    assert (pattern.text if pattern else None) == found


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
    assert POLICY.nsfw_verdict(place, scores, nsfw_channel) == verdict


def test_only_known_nsfw_policies_may_be_set() -> None:
    for policy in ("blocked", "nsfw_channels", "spoiler"):
        POLICY.check_nsfw_policy(policy)
    assert refusal(POLICY.check_nsfw_policy, "sometimes") == "moderation.bad_nsfw"


@pytest.mark.parametrize(
    ("channels", "channel", "allowed"),
    [([], "5", True), (None, "5", True), (["5", "6"], "5", True), (["6"], "5", False)],
)
def test_a_channel_allowlist_opens_only_its_channels(channels: list[str] | None, channel: str, allowed: bool) -> None:
    assert ModerationPolicy.channel_allowed(community(channels=channels), channel) is allowed


def test_community_limits_keep_only_known_keys() -> None:
    limits = POLICY.limits_for(community(limits={"max_steps": 30, "colour": 3}))
    assert limits == {"max_steps": 30}
    assert POLICY.limits_for(None) == {}


@pytest.mark.parametrize(
    ("changes", "result"),
    [
        ({"max_steps": 3, "images_per_day": 2}, {"max_steps": 3, "max_width": 512, "images_per_day": 2}),
        ({"max_steps": None}, {"max_width": 512}),  # None removes an override
        ({"max_steps": SETTINGS.limits.max_steps}, {"max_steps": SETTINGS.limits.max_steps, "max_width": 512}),
        ({"max_steps": SETTINGS.limits.max_steps + 1}, "moderation.limit_range"),  # never above the global
        ({"max_width": -1}, "moderation.limit_range"),
        ({"colour": 1, "max_steps": 3}, "moderation.bad_limit"),
    ],
)
def test_limit_changes_stay_known_and_under_the_global_ceiling(
    changes: dict[str, int | None], result: dict[str, int] | str
) -> None:
    place = community(limits={"max_steps": 30, "max_width": 512})
    if isinstance(result, str):
        assert refusal(POLICY.changed_limits, place, changes) == result
    else:
        assert POLICY.changed_limits(place, changes) == result
