"""Named styles and a community's negative prompt through the core, on SQLite and on PostgreSQL: what a request
runs, what it shows, who may change them, and the audit log."""

from __future__ import annotations

from pathlib import Path

import pytest
import test_moderation
from core_stack import core_settings
from test_moderation import ANN, GUILD, OTHER, PRIVATE, Harness, jobs, moderator

from bots.config import StyleSettings
from bots.core.styles import Style, styled
from bots.errors import UserError
from bots.moderation.policy import Role
from generation.asks import Ask, Options

core = test_moderation.core


def test_a_template_puts_the_prompt_where_it_says_or_in_front() -> None:
    assert Style("noir", "{prompt}, film noir").apply("a cat") == "a cat, film noir"
    assert Style("ink", "ink drawing of {prompt}, detailed").apply("a cat") == "ink drawing of a cat, detailed"
    assert Style("soft", "soft light").apply("a cat") == "a cat, soft light"


def test_negatives_are_joined_once_each(tmp_path: Path) -> None:
    settings = core_settings(tmp_path, styles={"noir": StyleSettings(prompt="{prompt}, noir", negative="colour")})
    ask = Ask("txt2img", "a cat", Options(style="noir", negative_prompt="blurry"))
    once = styled(ask, settings, None)
    assert (once.prompt, once.options.negative_prompt, once.options.style) == ("a cat, noir", "blurry, colour", None)
    again = styled(Ask("txt2img", once.prompt, Options(negative_prompt=once.options.negative_prompt)), settings, None)
    assert again.options.negative_prompt == "blurry, colour"


async def test_a_style_from_the_configuration_runs_styled_and_shows_the_users_prompt(core: Harness) -> None:
    receipt = await core.core.submit(ANN, GUILD, Ask("txt2img", "a harbour", Options(style="noir", seed=1)))
    await core.final(receipt.job_id)
    job = await core.db.get_job(receipt.job_id)
    assert job is not None and job.prompt == "a harbour"
    assert job.parameters["prompt"] == "a harbour, film noir, black and white, high contrast, hard shadows"
    assert job.negative_prompt == "colour, bright, cheerful"
    rerolled = await core.core.reroll(ANN, GUILD, receipt.job_id)
    await core.final(rerolled.job_id)
    again = await core.db.get_job(rerolled.job_id)
    assert again is not None and again.parameters["prompt"] == job.parameters["prompt"], "not styled twice"
    assert again.prompt == "a harbour", "shown as its user typed it"
    assert again.negative_prompt == job.negative_prompt
    wider = await core.core.outpaint(ANN, GUILD, receipt.job_id, 0, Options(zoom=1.5))
    await core.final(wider.job_id)
    border = await core.db.get_job(wider.job_id)
    assert border is not None and border.parameters["prompt"] == job.parameters["prompt"], "drawn in the style"
    assert border.prompt == "a harbour"


async def test_an_unknown_style_is_refused_naming_the_styles_there_are(core: Harness) -> None:
    with pytest.raises(UserError) as caught:
        await core.core.submit(ANN, GUILD, Ask("txt2img", "a harbour", Options(style="baroque")))
    assert caught.value.key == "style.unknown" and "noir" in caught.value.values["known"]
    assert await jobs(core) == []


async def test_admins_add_styles_and_a_negative_prompt_for_their_community_only(core: Harness) -> None:
    admin = moderator(Role.ADMIN)
    await core.core.moderation.add_style(admin, "Harbour-Light", "{prompt} at golden hour", "fog")
    await core.core.moderation.add_style(admin, "noir", "{prompt}, our own noir")  # wins over the shipped one here
    assert await core.core.moderation.set_negative(admin, "  text, watermark ") == "text, watermark"
    here = await core.core.styles(GUILD)
    assert {style.name: style.community for style in here.styles}["harbour-light"] is True
    assert next(style.prompt for style in here.styles if style.name == "noir") == "{prompt}, our own noir"
    assert here.negative == "text, watermark"
    receipt = await core.core.submit(ANN, GUILD, Ask("txt2img", "boats", Options(style="harbour-light")))
    await core.final(receipt.job_id)
    job = await core.db.get_job(receipt.job_id)
    assert job is not None and job.parameters["prompt"] == "boats at golden hour"
    assert job.negative_prompt == "fog, text, watermark"
    elsewhere = await core.core.styles(OTHER)
    assert "harbour-light" not in {style.name for style in elsewhere.styles} and elsewhere.negative == ""
    plain = await core.core.submit(ANN, PRIVATE, Ask("txt2img", "boats"))
    await core.final(plain.job_id)
    private = await core.db.get_job(plain.job_id)
    assert private is not None and private.negative_prompt == ""
    await core.core.moderation.remove_style(admin, "harbour-light")
    assert await core.core.moderation.set_negative(admin, "") == ""
    entries = await core.core.moderation.log(admin)
    assert [entry.action for entry in entries][:5] == ["negative", "style_remove", "negative", "style_add", "style_add"]


async def test_styles_are_for_admins_and_bad_ones_are_refused(core: Harness) -> None:
    moderation = core.core.moderation
    for call in (
        moderation.add_style(moderator(Role.MODERATOR), "ink", "ink of {prompt}"),
        moderation.remove_style(moderator(Role.USER), "ink"),
        moderation.set_negative(moderator(Role.MODERATOR), "text"),
    ):
        with pytest.raises(UserError) as caught:
            await call
        assert caught.value.key == "moderation.not_allowed"
    admin = moderator(Role.ADMIN)
    cases = [
        (moderation.add_style(admin, "two words", "x"), "moderation.bad_style_name"),
        (moderation.add_style(admin, "ink", "   "), "moderation.bad_style"),
        (moderation.add_style(admin, "ink", "x" * 501), "moderation.bad_style"),
        (moderation.remove_style(admin, "never-added"), "moderation.no_such_style"),
    ]
    for call, key in cases:
        with pytest.raises(UserError) as caught:
            await call
        assert caught.value.key == key
    for number in range(25):
        await moderation.add_style(admin, f"s{number}", "x {prompt}")
    with pytest.raises(UserError) as caught:
        await moderation.add_style(admin, "one-more", "x {prompt}")
    assert caught.value.key == "moderation.too_many_styles" and caught.value.values["limit"] == 25
    await moderation.add_style(admin, "s3", "replaced {prompt}")  # replacing one is not one more
