"""/mod on Discord end to end: the real discord.py client against the fake, the core and the tiny model.

Discord hides /mod from members without Manage Server, but the fake sends whatever a test asks: every refusal
here comes from the core's checks, not from the UI.
"""

from __future__ import annotations

import csv
import io
import threading
from pathlib import Path
from typing import Any

import pytest
import test_discord
from core_stack import Launch
from fake_discord import ALL_PERMISSIONS, CHANNEL_ID, GUILD_ID, MANAGE_GUILD, FakeDiscord, FakeInteraction
from PIL import Image
from test_discord import ALICE, ALICE_ID, BOB, BOB_ID, Bot, StartBot, buttons, gated, member

from bots.config import TierSettings
from bots.core.types import EventKind, JobEvent, Place
from bots.texts import render
from generation.engine import Engine
from generation.models import KandinskyModels
from storage.records import Job

_endpoints_restored = test_discord._endpoints_restored
fake = test_discord.fake
start_bot = test_discord.start_bot
"""The Discord wire tests' fixtures: the adapter connected to the fake, over a core with the tiny model."""

CAROL_ID = 1003
DAVE_ID = 1004
OTHER_GUILD_ID = 900_000_000_000_000_900
MODERATOR_ROLE_ID = 900_000_000_000_000_700
CAROL = member(CAROL_ID, "carol", permissions=ALL_PERMISSIONS)
"""An admin: Manage Server (and everything else)."""
DAVE = member(DAVE_ID, "dave", roles=(MODERATOR_ROLE_ID,))
"""A moderator: no Manage Server, but the configured moderator role."""

NOT_ALLOWED = "Only this community's moderators may do that."


async def ask(bot: Bot, name: str, options: dict[str, Any] | None = None, **where: Any) -> str:
    """A command's ephemeral answer (a lookup, a moderation reply, or a refusal)."""
    return await bot.ephemeral_reply(await bot.fake.command(name, options, **where))


async def jobs_of(bot: Bot, user_id: int) -> list[Job]:
    owner = await bot.core.db.get_or_create_user("discord", str(user_id))
    return await bot.core.db.owner_jobs(owner.id, limit=100)


async def refused(bot: Bot, interaction: FakeInteraction) -> str:
    """The ephemeral refusal of a request that made no image, once its public deferred answer is gone."""
    text = await bot.ephemeral_reply(interaction)
    original = bot.fake.original(interaction)
    assert original is not None and original.deleted
    return text


async def test_the_mod_command_is_hidden_from_non_admins_yet_each_subcommand_is_refused_to_them(
    start_bot: StartBot,
) -> None:
    bot = await start_bot(sync_commands=True)
    mod = next(command for command in bot.fake.commands[None] if command["name"] == "mod")
    assert int(mod["default_member_permissions"]) == MANAGE_GUILD
    assert mod["contexts"] == [0] and mod["dm_permission"] is False, "servers only"
    art = bot.fake.channels[CHANNEL_ID]

    calls: list[tuple[str, dict[str, Any]]] = [
        ("mod banword add", {"pattern": "cat", "regex": False}),
        ("mod banword remove", {"pattern": "cat"}),
        ("mod banword list", {}),
        ("mod ban", {"user": ALICE, "duration": "1h", "reason": "spam"}),
        ("mod ban", {"user": ALICE, "global": True}),
        ("mod unban", {"user": ALICE}),
        ("mod nsfw", {"policy": "spoiler"}),
        ("mod limits", {}),
        ("mod limits", {"max_steps": 10}),
        ("mod channels add", {"channel": art}),
        ("mod channels remove", {"channel": art}),
        ("mod channels list", {}),
        ("mod channels clear", {}),
        ("mod log", {}),
        ("mod export", {}),
        ("mod purge", {"user": ALICE}),
        ("mod style add", {"name": "ink", "prompt": "ink of {prompt}"}),
        ("mod style remove", {"name": "ink"}),
        ("mod negative", {"text": "text"}),
    ]
    for name, options in calls:
        assert await ask(bot, name, options, member=BOB) == NOT_ALLOWED, name

    assert "log of this server is empty" in await ask(bot, "mod log", member=CAROL), "nothing was done"


async def test_mod_help_lists_the_moderation_commands_in_the_users_language(start_bot: StartBot) -> None:
    bot = await start_bot()

    shown = await ask(bot, "mod help", member=CAROL)
    russian = await ask(bot, "mod help", member=CAROL, locale="ru")

    assert f"**/mod banword add** — {render('discord.mod.command.banword_add')}" in shown
    assert f"**/mod channels** — {render('discord.mod.command.channels')}" in shown
    assert f"**Delete button** — {render('discord.mod.command.delete')}" in shown
    assert f"**/mod help** — {render('discord.mod.command.help', 'ru')}" in russian
    assert "/imagine" not in shown and len(shown.splitlines()) == 17
    assert f"**/mod tier** — {render('discord.mod.command.tier')}" in shown


async def test_only_the_owner_or_a_moderator_may_cancel_or_delete_a_job(
    start_bot: StartBot, tiny_models: KandinskyModels
) -> None:
    gate = threading.Event()
    bot = await start_bot(generate=gated(Engine(tiny_models), gate), queue={"max_batch_images": 1})
    fake = bot.fake
    running = await fake.command("imagine", {"prompt": "a quiet lake"}, member=ALICE)
    drawing = await fake.wait_for(lambda: (m := fake.original(running)) and "50%" in m.content and m)
    waiting = await fake.command("imagine", {"prompt": "a still pond"}, member=ALICE)
    queued = await fake.wait_for(lambda: (m := fake.original(waiting)) and m.content.startswith("Queued") and m)
    (cancel,) = queued.custom_ids()
    running_id = drawing.custom_ids()[0].split(":")[2]

    assert "someone else" in await bot.ephemeral_reply(await fake.press(queued, cancel, member=BOB))
    assert "removed from the queue" in await bot.ephemeral_reply(await fake.press(queued, cancel, member=CAROL))
    assert "someone else" in await ask(bot, "cancel", {"job": running_id}, member=BOB)
    assert "will stop at its next step" in await ask(bot, "cancel", {"job": running_id}, member=CAROL)
    gate.set()
    await fake.wait_for(lambda: "was cancelled" in drawing.content)

    result = await bot.result_of(await fake.command("imagine", {"prompt": "a loud lake"}, member=ALICE))
    delete = next(custom_id for custom_id in result.custom_ids() if ":delete:" in custom_id)
    assert "someone else" in await bot.ephemeral_reply(await fake.press(result, delete, member=BOB))
    assert not result.deleted
    assert "Deleted job" in await bot.ephemeral_reply(await fake.press(result, delete, member=CAROL))
    assert result.deleted

    log = await ask(bot, "mod log", member=CAROL)
    assert "cancel  job:" in log and "delete  job:" in log


async def test_a_banned_word_blocks_imagine_in_its_guild_only(start_bot: StartBot) -> None:
    bot = await start_bot()
    fake = bot.fake
    elsewhere = fake.add_channel("elsewhere", guild_id=OTHER_GUILD_ID)

    assert "now banned here" in await ask(bot, "mod banword add", {"pattern": "Cat"}, member=CAROL)
    added = await ask(bot, "mod banword add", {"pattern": r"do+g", "regex": True}, member=CAROL)
    assert "2 in all" in added
    assert "cannot be a banned word" in await ask(bot, "mod banword add", {"pattern": "(", "regex": True}, member=CAROL)
    listed = await ask(bot, "mod banword list", member=CAROL)
    assert "Cat" in listed and "do+g  (regular expression)" in listed

    blocked = await refused(bot, await fake.command("imagine", {"prompt": "a red CAT"}, member=ALICE))
    assert "does not allow" in blocked
    assert "does not allow" in await refused(bot, await fake.command("imagine", {"prompt": "a dooog"}, member=ALICE))
    assert await jobs_of(bot, ALICE_ID) == []

    other = await bot.result_of(await fake.command("imagine", {"prompt": "a red cat"}, member=ALICE, channel=elsewhere))
    assert "a red cat" in other.content and other.channel_id == elsewhere.id

    assert "allowed again" in await ask(bot, "mod banword remove", {"pattern": "Cat"}, member=CAROL)
    assert "not on this community's list" in await ask(bot, "mod banword remove", {"pattern": "Cat"}, member=CAROL)
    assert await bot.result_of(await fake.command("imagine", {"prompt": "a red cat"}, member=ALICE))


async def test_a_reply_to_an_image_is_screened_by_its_servers_banned_words(start_bot: StartBot) -> None:
    bot = await start_bot()
    fake = bot.fake
    result = await bot.result_of(await fake.command("imagine", {"prompt": "a lake"}, member=ALICE))
    await ask(bot, "mod banword add", {"pattern": "boat"}, member=CAROL)

    asked = await fake.say("with a boat", member=ALICE, reply_to=result)

    await fake.wait_for(
        lambda: next(
            (m for m in fake.messages.values() if m.reference == asked.id and "does not allow" in m.content), None
        )
    )
    assert len(await jobs_of(bot, ALICE_ID)) == 1


async def test_a_banned_user_gets_an_ephemeral_refusal_and_nothing_reaches_the_queue(start_bot: StartBot) -> None:
    bot = await start_bot()
    fake = bot.fake

    assert "is not a duration" in await ask(bot, "mod ban", {"user": BOB, "duration": "soon"}, member=CAROL)
    assert NOT_ALLOWED == await ask(bot, "mod ban", {"user": BOB, "global": True}, member=CAROL), "owners only"
    banned = await ask(bot, "mod ban", {"user": BOB, "duration": "1d2h", "reason": "spam"}, member=CAROL)
    assert f"<@{BOB_ID}> may not make images here until" in banned

    refusal = await refused(bot, await fake.command("imagine", {"prompt": "a boat"}, member=BOB))
    assert "until" in refusal and "spam" in refusal
    assert await jobs_of(bot, BOB_ID) == []

    assert "may make images here again" in await ask(bot, "mod unban", {"user": BOB}, member=CAROL)
    assert "not banned" in await ask(bot, "mod unban", {"user": BOB}, member=CAROL)
    assert await bot.result_of(await fake.command("imagine", {"prompt": "a boat"}, member=BOB))


async def test_the_moderator_role_may_edit_words_and_delete_jobs_but_not_change_the_nsfw_policy(
    start_bot: StartBot,
) -> None:
    bot = await start_bot()
    fake = bot.fake
    assert NOT_ALLOWED == await ask(bot, "mod banword add", {"pattern": "boat"}, member=DAVE), "roles unknown yet"
    await fake.create_guild(GUILD_ID, roles={"easel-moderator": MODERATOR_ROLE_ID, "artists": MODERATOR_ROLE_ID + 1})
    await fake.wait_for(lambda: bot.adapter.client and bot.adapter.client.get_guild(GUILD_ID))
    artist = member(1005, "erin", roles=(MODERATOR_ROLE_ID + 1,))

    assert "now banned here" in await ask(bot, "mod banword add", {"pattern": "boat"}, member=DAVE)
    assert "boat" in await ask(bot, "mod banword list", member=DAVE)
    assert NOT_ALLOWED == await ask(bot, "mod banword add", {"pattern": "ship"}, member=artist)
    assert NOT_ALLOWED == await ask(bot, "mod nsfw", {"policy": "spoiler"}, member=DAVE), "admins only"
    assert NOT_ALLOWED == await ask(bot, "mod channels clear", member=DAVE), "admins only"
    assert NOT_ALLOWED == await ask(bot, "mod limits", {"max_steps": 10}, member=DAVE), "admins only"
    assert "global limits" in await ask(bot, "mod limits", member=DAVE)

    result = await bot.result_of(await fake.command("imagine", {"prompt": "a lake"}, member=ALICE))
    delete = next(custom_id for custom_id in result.custom_ids() if ":delete:" in custom_id)
    assert "Deleted job" in await bot.ephemeral_reply(await fake.press(result, delete, member=DAVE))
    assert result.deleted


async def test_the_channel_allowlist_closes_the_other_channels(start_bot: StartBot) -> None:
    bot = await start_bot()
    fake = bot.fake
    art = fake.channels[CHANNEL_ID]
    gallery = fake.add_channel("gallery")

    assert "every channel" in await ask(bot, "mod channels list", member=CAROL)
    assert f"only in: <#{gallery.id}>" in await ask(bot, "mod channels add", {"channel": gallery}, member=CAROL)
    closed = await refused(bot, await fake.command("imagine", {"prompt": "a hill"}, member=ALICE, channel=art))
    assert "not make images in this channel" in closed
    assert await bot.result_of(await fake.command("imagine", {"prompt": "a hill"}, member=ALICE, channel=gallery))

    both = await ask(bot, "mod channels add", {"channel": art}, member=CAROL)
    assert f"<#{gallery.id}>" in both and f"<#{art.id}>" in both
    assert "only in: <#" in await ask(bot, "mod channels remove", {"channel": art}, member=CAROL)
    assert "not on the list" in await ask(bot, "mod channels remove", {"channel": art}, member=CAROL)
    assert "every channel" in await ask(bot, "mod channels clear", member=CAROL)
    assert await bot.result_of(await fake.command("imagine", {"prompt": "a hill"}, member=ALICE, channel=art))


async def test_nsfw_policy_limits_and_spoilered_results(
    start_bot: StartBot, tiny_models: KandinskyModels, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    gate = threading.Event()
    bot = await start_bot(generate=gated(Engine(tiny_models), gate))
    fake = bot.fake
    adults = fake.add_channel("adults", nsfw=True)
    assert "Only in age-restricted channels" in await ask(bot, "mod nsfw", {"policy": "nsfw_channels"}, member=CAROL)
    assert "does not exist" in await ask(bot, "mod nsfw", {"policy": "anything"}, member=CAROL), "a forged choice"

    assert "max_steps = 30" in await ask(bot, "mod limits", {"max_steps": 30, "max_size": "512x512"}, member=CAROL)
    assert "must be from 0" in await ask(bot, "mod limits", {"images_per_day": 10**6}, member=CAROL)
    cleared = await ask(bot, "mod limits", {"clear": "max_size"}, member=CAROL)
    assert "max_steps = 30" in cleared and "max_width" not in cleared
    assert "global limits" in await ask(bot, "mod limits", {"clear": "all"}, member=CAROL)

    places: list[Place] = []
    submit = bot.core.core.submit

    async def spy(actor: Any, place: Place, *args: Any, **kwargs: Any) -> Any:
        places.append(place)
        return await submit(actor, place, *args, **kwargs)

    monkeypatch.setattr(bot.core.core, "submit", spy)
    held = await fake.command("imagine", {"prompt": "a statue"}, member=ALICE, channel=adults)
    status = await fake.wait_for(lambda: (m := fake.original(held)) and "50%" in m.content and m)
    assert [place.nsfw for place in places] == [True]
    job_id = status.custom_ids()[0].split(":")[2]

    picture = tmp_path / "statue.png"
    Image.new("RGB", (64, 64), "gray").save(picture)
    event = JobEvent(
        EventKind.DONE,
        job_id,
        "discord",
        str(adults.id),
        str(ALICE_ID),
        None,
        "a statue",
        files=(picture,),
        spoiler=True,
    )
    await bot.adapter.delivery.on_event(event)  # as the core announces a result its classifier flagged
    result = await bot.result_of(held)
    assert [item["filename"] for item in result.attachments] == ["SPOILER_statue.png"]
    outpaints = ["zoomout", "zoomout2", "panleft", "panright", "panup", "pandown"]
    assert buttons(result) == ["reroll", "vary:0", "edit", "delete", *outpaints]
    gate.set()

    plain = await bot.result_of(await fake.command("imagine", {"prompt": "a statue"}, member=ALICE))
    assert places[-1].nsfw is False
    assert not any(item["filename"].startswith("SPOILER_") for item in plain.attachments)


async def test_the_log_shows_every_action_export_sends_csv_and_purge_deletes_the_messages(
    start_bot: StartBot,
) -> None:
    bot = await start_bot()
    fake = bot.fake
    first = await bot.result_of(await fake.command("imagine", {"prompt": "a tree"}, member=ALICE))
    second = await bot.result_of(await fake.command("imagine", {"prompt": "a bush"}, member=ALICE))
    bobs = await bot.result_of(await fake.command("imagine", {"prompt": "a rock"}, member=BOB))

    assert "log of this server is empty" in await ask(bot, "mod log", member=CAROL)
    await ask(bot, "mod banword add", {"pattern": "weed"}, member=CAROL)
    await refused(bot, await fake.command("imagine", {"prompt": "weed"}, member=ALICE))
    await ask(bot, "mod ban", {"user": BOB, "reason": "rude"}, member=CAROL)
    await ask(bot, "mod unban", {"user": BOB}, member=CAROL)
    await ask(bot, "mod nsfw", {"policy": "spoiler"}, member=CAROL)
    await ask(bot, "mod limits", {"max_steps": 20}, member=CAROL)
    await ask(bot, "mod channels clear", member=CAROL)
    purged = await ask(bot, "mod purge", {"user": ALICE}, member=CAROL)

    assert f"Deleted <@{ALICE_ID}>'s images in this server; 2 messages removed." == purged
    assert first.deleted and second.deleted and not bobs.deleted
    assert all(job.deleted_at is not None for job in await jobs_of(bot, ALICE_ID) if job.state.value == "done")

    log = await ask(bot, "mod log", member=CAROL)
    actions = ["banword.add", "blocked", "ban", "unban", "nsfw", "limits", "channels", "purge"]
    for action in actions:
        assert f"  {action}  " in log, action
    assert "(rude)" in log and "(banned word)" in log

    export = await fake.command("mod export", member=CAROL)
    reply = await fake.wait_for(
        lambda: next((m for m in fake.replies_to(export) if m.ephemeral and m.attachments), None),
        what="the exported log",
    )
    assert reply.content == "The moderation log of this server."
    (attachment,) = reply.attachments
    assert attachment["filename"] == "moderation-log.csv"
    rows = list(csv.reader(io.StringIO(fake.data_of(attachment).decode("utf-8-sig"))))
    assert rows[0] == ["time", "action", "target", "actor", "reason", "details"]
    assert sorted(row[1] for row in rows[1:]) == sorted(actions)


async def test_an_owner_puts_users_in_tiers_and_a_role_gives_one(
    fake: FakeDiscord, stack: Launch, start_bot: StartBot, tmp_path: Path
) -> None:
    settings = test_discord.settings_for(fake, tmp_path)
    tiers = {
        "default": TierSettings(images_per_day=100),
        "patron": TierSettings(images_per_day=7, discord_roles=["patrons"]),
        "gold": TierSettings(images_per_day=9),
    }
    owners = settings.moderation.model_copy(update={"owners": [f"discord:{CAROL_ID}"]})
    bot = await start_bot(await stack(settings.model_copy(update={"tiers": tiers, "moderation": owners})))
    patrons_role = MODERATOR_ROLE_ID + 2
    await fake.create_guild(GUILD_ID, roles={"patrons": patrons_role})
    await fake.wait_for(lambda: bot.adapter.client and bot.adapter.client.get_guild(GUILD_ID))
    patron = member(1006, "pat", roles=(patrons_role,))

    async def quota(who: dict[str, Any]) -> str:
        return await bot.ephemeral_reply(await fake.command("quota", member=who))

    assert "made 0 of 7 images" in await quota(patron)  # the role's tier
    assert "made 0 of 100 images" in await quota(BOB)
    answer = await ask(bot, "mod tier", {"user": BOB, "name": "gold"}, member=CAROL)
    assert answer == f"<@{BOB_ID}> is in tier gold now (before: default)."
    assert "made 0 of 9 images" in await quota(BOB)
    assert await ask(bot, "mod tier", {"user": BOB}, member=CAROL) == f"<@{BOB_ID}> is in tier gold."
    assert await ask(bot, "mod tier", {"user": BOB, "name": "default"}, member=DAVE) == render("moderation.owners_only")
    assert "made 0 of 9 images" in await quota(BOB)
    assert "tier" in await ask(bot, "mod log", member=CAROL)
